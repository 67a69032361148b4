"""The QA an export takes, each item with its audio, recording, speakers and labels.

- a **run directory**: the QAItems its last QA stage (`qa_dataset` when the run has it, else `qa`)
  kept, and with `include_failed` those the filters dropped (`cpqa.qa_source.run_qa_records`);
  audio, recording, speakers and labels from the `clips` stage;
- an **exported QA JSONL** of QAItems (`cpqa review export`, or this package's `jsonl` format): the
  audio is `metadata.audio`; `clips` (a run or a clips JSONL) adds the clip records by `clip_id`.
  Without clip records the recording is `metadata.recording_id`, else the part of the clip id before
  `-clipNNNN` (the clips stage's ids), else the clip id; the speakers are `metadata.speakers`.

An example heard in one window of a longer clip (`in_heard_window`, see `cpqa.evaluate.heard`) has
that window's audio and the labels of the words heard in it.

Speakers are the word-level speaker ids of the clip (`unknown` aside); they are taken as identities
across recordings, as the speaker ids an input manifest gives are.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..audio.decode import MISSING_FILE, DecodeError, probe
from ..errors import CPQAError
from ..evaluate.heard import EVIDENCE_KEY, Placement, words_in
from ..qa_source import dominant_emotion, is_run, load_clips, load_items, qa_stage, run_qa_records
from ..reasons import AUDIO_UNREADABLE
from ..records import Clip, QAItem
from ..vocabulary import NOT_A_LABEL, UNKNOWN

logger = logging.getLogger(__name__)

AUDIO_MISSING = "audio_missing"
FILTERED = "filtered"
_CLIP_SUFFIX = re.compile(r"^(?P<recording>.+)-clip\d{4}$")


@dataclass
class Example:
    qa: QAItem
    audio: Path
    """Absolute path of the clip's audio."""
    duration_s: float
    recording_id: str
    speakers: tuple[str, ...]
    labels: dict[str, Any]
    """emotion (dominant), emotions (all heard, longest first), genders (per speaker, longest
    speaker first), num_speakers (None when unknown)."""
    clip: Clip | None = None


@dataclass
class Loaded:
    examples: list[Example]
    skipped: Counter = field(default_factory=Counter)
    source_kind: str = "run"
    qa_stage: str | None = None


def load_examples(source: str | Path, clips: str | Path | None = None, include_failed: bool = False) -> Loaded:
    """Every exportable QA item of `source` (a run directory or a QA JSONL). Items whose audio is
    missing or unreadable, and (unless `include_failed`) items the QA filters failed, are counted in
    `skipped` by reason, never exported."""
    source = Path(source)
    if is_run(source):
        stage = qa_stage(source)
        clip_index = load_clips(clips if clips is not None else source)
        pairs = [(QAItem.model_validate(obj), None) for obj in run_qa_records(source, include_failed)]
        loaded = Loaded([], source_kind="run", qa_stage=stage)
    elif source.is_file():
        clip_index = load_clips(clips) if clips is not None else {}
        pairs = [(item.qa, item.audio) for item in load_items(source)]
        loaded = Loaded([], source_kind="file")
    else:
        raise CPQAError(f"{source} is neither a cpqa run directory nor a QA JSONL file")
    for qa, audio in pairs:
        if not include_failed and not qa.filters.passed:  # a QA file may hold failed items
            loaded.skipped[FILTERED] += 1
            continue
        example = _example(qa, clip_index.get(qa.clip_id), audio, loaded.skipped)
        if example is not None:
            loaded.examples.append(example)
    if not loaded.examples:
        raise CPQAError(f"{source} holds no QA items to export ({_skips(loaded.skipped)})")
    if loaded.skipped:
        logger.warning("%s: %d item(s) left out: %s", source, sum(loaded.skipped.values()), _skips(loaded.skipped))
    return loaded


def _skips(skipped: Counter) -> str:
    return ", ".join(f"{reason}: {n}" for reason, n in sorted(skipped.items())) or "none left out"


def _example(qa: QAItem, clip: Clip | None, audio: str | None, skipped: Counter) -> Example | None:
    path = audio or (clip.audio if clip is not None else None)
    if not path:
        skipped[AUDIO_MISSING] += 1
        logger.info("%s: no audio (no metadata.audio and no clip record)", qa.id)
        return None
    try:
        info = probe(path)
    except DecodeError as exc:
        skipped[AUDIO_MISSING if exc.reason == MISSING_FILE else AUDIO_UNREADABLE] += 1
        logger.info("%s: %s", qa.id, exc)
        return None
    return Example(qa=qa, audio=Path(path).resolve(), duration_s=round(info.duration_s or 0.0, 3),
                   recording_id=_recording_id(qa, clip), speakers=_speakers(qa, clip), labels=_labels(qa, clip),
                   clip=clip)


def heard_example(example: Example, placement: Placement, audio: Path) -> Example:
    """The example as the model hears it under `placement` (not a dropped one): for a window of a
    longer clip, `audio` is that window's file, the labels are those of the words heard in it and
    `metadata.heard_window` is the window in seconds of the clip. `metadata.evidence_s`, when the
    evidence was placed, is its time in `audio`."""
    metadata = dict(example.qa.metadata)
    offset = placement.window.start if placement.cut == "window" else 0.0
    if placement.evidence is not None:
        metadata[EVIDENCE_KEY] = [round(placement.evidence.start - offset, 3), round(placement.evidence.end - offset, 3)]
    if placement.cut != "window":
        return replace(example, qa=example.qa.model_copy(update={"metadata": metadata}))
    window = placement.window
    metadata["heard_window"] = [round(window.start, 3), round(window.end, 3)]
    qa = example.qa.model_copy(update={"metadata": metadata})
    clip = example.clip
    if clip is not None:
        clip = clip.model_copy(update={"words": words_in(clip, window)})
    return replace(example, qa=qa, audio=audio, duration_s=round(window.duration_s, 3), clip=clip,
                   labels=_labels(qa, clip) if clip is not None else example.labels)


def _recording_id(qa: QAItem, clip: Clip | None) -> str:
    if clip is not None:
        return clip.recording_id
    if qa.metadata.get("recording_id"):
        return str(qa.metadata["recording_id"])
    match = _CLIP_SUFFIX.match(qa.clip_id)
    return match["recording"] if match else qa.clip_id


def _speakers(qa: QAItem, clip: Clip | None) -> tuple[str, ...]:
    if clip is None:
        return tuple(sorted(str(s) for s in qa.metadata.get("speakers") or [] if str(s) not in NOT_A_LABEL))
    return tuple(sorted({w.speaker for w in clip.words if w.speaker and w.speaker not in NOT_A_LABEL}))


def _labels(qa: QAItem, clip: Clip | None) -> dict[str, Any]:
    if clip is None:
        given = qa.metadata.get("labels") or {}
        emotion = qa.metadata.get("emotion") or given.get("emotion") or UNKNOWN
        return {"emotion": emotion, "emotions": list(given.get("emotions") or ([] if emotion in NOT_A_LABEL else [emotion])),
                "genders": list(given.get("genders") or []), "num_speakers": given.get("num_speakers")}
    emotion_s: Counter = Counter()
    speaker_s: Counter = Counter()
    gender_s: dict[str, Counter] = {}
    for w in clip.words:
        seconds = max(w.end - w.start, 0.0)
        if w.emotion and w.emotion not in NOT_A_LABEL:
            emotion_s[w.emotion] += seconds
        if w.speaker and w.speaker not in NOT_A_LABEL:
            speaker_s[w.speaker] += seconds
            if w.gender and w.gender not in NOT_A_LABEL:
                gender_s.setdefault(w.speaker, Counter())[w.gender] += seconds
    speakers = sorted(speaker_s, key=lambda s: (-speaker_s[s], s))
    return {"emotion": qa.metadata.get("emotion") or dominant_emotion(clip),
            "emotions": sorted(emotion_s, key=lambda e: (-emotion_s[e], e)),
            "genders": [max(sorted(gender_s[s]), key=gender_s[s].__getitem__) for s in speakers if s in gender_s],
            "num_speakers": len(speakers) or None}
