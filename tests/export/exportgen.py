"""A synthetic run for export tests: RAVDESS utterances resampled to 16 kHz FLAC clips in a temp
folder (the real data never enters the repository), laid out as `cpqa build` lays out a run with a
`clips` and a `qa` stage.

Recordings and speakers (RAVDESS actors) are arranged so that the split must group them:

    rec-a: actor 09        rec-b: actor 09            (a speaker in two recordings)
    rec-c: actors 10 + 11  rec-d: actor 11            (a two-speaker recording linking rec-d)
    rec-e … rec-i: actors 12 … 16, one each           rec-j, rec-k: speaker unknown

Each clip gets a C, a DE and a multi-turn DG item; rec-e's DE item failed the QA filters.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from cpqa.manifest import write_jsonl
from cpqa.records import Clip, ClipWord, QAItem, Turn

EMOTIONS = {"happiness": "happy", "anger": "angry", "sadness": "sad", "neutral": "neutral", "fear": "fearful",
            "disgust": "disgusted", "surprise": "surprised", "calm": "neutral"}
RECORDINGS = {  # recording → actors heard in turn (None: speaker unknown); two clips for rec-a
    "rec-a": [["09"], ["09"]], "rec-b": [["09"]], "rec-c": [["10", "11"]], "rec-d": [["11"]], "rec-e": [["12"]],
    "rec-f": [["13"]], "rec-g": [["14"]], "rec-h": [["15"]], "rec-i": [["16"]], "rec-j": [[None]], "rec-k": [[None]],
}
UNKNOWN_ACTORS = ("13", "14")
"""Whose speech rec-j and rec-k hold; their clips name no speaker, as an unlabelled input would."""


def manifest_rows(real: Path) -> dict[str, list[dict[str, str]]]:
    with open(real / "ravdess" / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    by_actor: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_actor.setdefault(row["speaker"].rsplit("_", 1)[-1], []).append(row)
    return by_actor


def load_16k(path: Path) -> np.ndarray:
    samples, rate = sf.read(path, dtype="float32", always_2d=True)
    return soxr.resample(samples.mean(axis=1), rate, 16000)


def build_run(real: Path, root: Path) -> Path:
    """Write the run under `root / "run"` and the clip audio under `root / "audio"`; return the run."""
    by_actor = manifest_rows(real)
    used: dict[str, int] = {}
    clips: list[Clip] = []
    items: list[QAItem] = []
    for rec, clip_actors in RECORDINGS.items():
        for index, actors in enumerate(clip_actors):
            pieces, words = [], []
            offset = 0.0
            for actor in actors:
                source_actor = actor or UNKNOWN_ACTORS[int(rec == "rec-k")]
                row = by_actor[source_actor][used.get(source_actor, 0)]
                used[source_actor] = used.get(source_actor, 0) + 1
                samples = load_16k(real / "ravdess" / row["file"])
                pieces.append(samples)
                tokens = row["transcript"].split()
                step = len(samples) / 16000 / len(tokens)
                words += [ClipWord(word=t, start=round(offset + i * step, 3), end=round(offset + (i + 1) * step, 3),
                                   emotion=EMOTIONS[row["label"]], gender=row["gender"],
                                   speaker=row["speaker"] if actor else "unknown") for i, t in enumerate(tokens)]
                offset += len(samples) / 16000
            cid = f"{rec}-clip{index:04d}"
            audio = root / "audio" / f"{cid}.flac"
            audio.parent.mkdir(parents=True, exist_ok=True)
            sf.write(audio, np.concatenate(pieces), 16000, format="FLAC", subtype="PCM_16")
            clip = Clip(id=cid, recording_id=rec, start=0.0, end=round(offset, 3), audio=str(audio), words=words,
                        tagged_transcript=" ".join(w.word for w in words))
            clips.append(clip)
            items += qa_items(clip)
    return write_run(root / "run", clips, items)


def qa_items(clip: Clip) -> list[QAItem]:
    text = " ".join(w.word for w in clip.words)
    emotion, gender = clip.words[0].emotion, clip.words[0].gender
    passed = {"passed": True, "reasons": [], "flags": [], "details": {}}
    failed = {"passed": False, "reasons": ["leakage"], "flags": [], "details": {"leakage": "says 'transcript'"}}
    return [
        QAItem(id=f"{clip.id}-c", clip_id=clip.id, type="C", filters=passed,
               turns=[Turn(question="What does the speaker talk about?", answer=f"They say: {text}.")]),
        QAItem(id=f"{clip.id}-de", clip_id=clip.id, type="DE", filters=failed if clip.recording_id == "rec-e" else passed,
               turns=[Turn(question="How does the speaker feel?", answer=f"The speaker sounds {emotion}.")]),
        QAItem(id=f"{clip.id}-dg", clip_id=clip.id, type="DG", filters=passed,
               turns=[Turn(question="Is the first speaker male or female?", answer=f"The first speaker is {gender}."),
                      Turn(question="Does their voice sound calm?", answer="Not entirely.")]),
    ]


def write_run(run: Path, clips: list[Clip], items: list[QAItem]) -> Path:
    stages = [("clips", "05-clips-a", clips), ("qa", "06-qa-b", items)]
    for _, folder, records in stages:
        write_jsonl(run / folder / "records.jsonl", records)
        (run / folder / "_SUCCESS").touch()
    (run / "run.json").write_text(json.dumps({
        "input": str(run), "recipe": "test", "recipe_source": "test", "overrides": [], "until": None,
        "cpqa_version": "0", "stages": [{"name": name, "dir": folder} for name, folder, _ in stages]}))
    return run


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
