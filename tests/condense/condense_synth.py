"""Synthetic annotated segments shaped like the annotate stage's output, and test stages that feed
them (with real audio) through the local executor."""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

import soundfile as sf
import soxr
from pydantic import BaseModel

from cpqa.condense.condense import CondenseStage
from cpqa.condense.config import CondenseConfig
from cpqa.recipe import Recipe, StageSpec
from cpqa.records import Drop, Recording, Segment, Word
from cpqa.stage import SourceStage, Stage, StageConfig, StageContext
from cpqa.vocabulary import ABSTAIN_LOW_CONFIDENCE, NO_CLEAR_EMOTION

WINDOW_S = 2.0
VOCAB = ("angry", "disgusted", "fearful", "happy", "neutral", "other", "sad", "surprised", "unknown")
SENTIMENT = {"happy": "positive", "neutral": "neutral", "surprised": "ambiguous", "angry": "negative",
             "disgusted": "negative", "fearful": "negative", "sad": "negative"}
RAVDESS_TO_VOCAB = {"neutral": "neutral", "calm": "neutral", "happiness": "happy", "sadness": "sad",
                    "anger": "angry", "fear": "fearful", "disgust": "disgusted", "surprise": "surprised"}
ABSTAINED = "<abstained>"
"""A window spec's label for a window whose emotion model abstained."""
SKEW = {"neutral": 50, "happy": 14, "sad": 8, "angry": 6, "surprised": 5, "fearful": 3, "disgusted": 2,
        "other": 6, "unknown": 6}


def abstention(score: float = 0.3, reason: str = ABSTAIN_LOW_CONFIDENCE) -> dict:
    """An abstained emotion prediction, shaped as the labels stage writes it."""
    probs = {e: round((1 - score) / 8, 4) for e in VOCAB}
    probs["sad"] = score  # the class it would have guessed
    return {"label": None, "abstained": True, "reason": reason, "score": score, "probs": probs, "model": "synthetic"}


def window(start: float, label: str | None, valence: float | None, score: float = 0.8, members=None) -> dict:
    emotion = None
    if label == ABSTAINED:
        emotion = abstention(score)
    elif label is not None:
        probs = {label: score, **{e: round((1 - score) / 8, 4) for e in VOCAB if e != label}}
        emotion = {"label": label, "score": score, "probs": probs, "model": "synthetic"}
        if members:
            emotion["members"] = [{"label": m, "score": score, "model": f"m{i}"} for i, m in enumerate(members)]
    return {"start": start, "end": start + WINDOW_S, "context_start": start - 1, "context_end": start + 3,
            "emotion": emotion, "valence": valence, "arousal": 0.5, "dominance": 0.5}


def segment(recording_id: str, n: int, start: float, specs: list[tuple], *, end: float | None = None,
            speaker: str | None = "spk0", gender: str | None = "female", words: bool = True, text: str | None = None,
            **labels) -> Segment:
    """A segment with one window per spec `(label, valence[, score])`, 2 s each from `start`; label
    `ABSTAINED` makes a window whose model abstained (its words say 'no clear emotion', and when
    every window abstained so does the segment's emotion label); `gender=None`
    makes the speaker-pooled gender abstain."""
    wins = [window(start + i * WINDOW_S, *spec) for i, spec in enumerate(specs)]
    end = end if end is not None else start + max(1, len(specs)) * WINDOW_S
    word_list = []
    if words:
        t = start
        while t + 0.4 <= end:
            label = next((w["emotion"]["label"] or NO_CLEAR_EMOTION for w in wins
                          if w["emotion"] and w["start"] <= t + 0.2 < w["end"]), None)
            word_list.append(Word(word=f"w{len(word_list)}", start=round(t, 3), end=round(t + 0.4, 3), prob=0.9,
                                  emotion=label, gender=gender, speaker=speaker))
            t += 0.5
    main = max((s[0] for s in specs if s[0] and s[0] != ABSTAINED), key=[s[0] for s in specs].count, default=None)
    emotion = (abstention() if specs and all(s[0] == ABSTAINED for s in specs)
               else {"label": main or "neutral", "score": 0.7, "probs": {main or "neutral": 0.7}, "model": "synthetic"})
    all_labels = {"emotion": emotion,
                  "valence": {"value": 0.5, "model": "synthetic"},
                  "gender": ({"label": gender, "score": 0.95, "model": "synthetic", "pooled_over": "speaker"} if gender
                             else {"label": None, "abstained": True, "score": 0.55, "model": "synthetic",
                                   "pooled_over": "speaker"}), **{k: _as_label(k, v) for k, v in labels.items()}}
    return Segment(id=Segment.make_id(recording_id, n), recording_id=recording_id, start=start, end=end,
                   text=text if text is not None else " ".join(w.word for w in word_list), speaker=speaker,
                   words=word_list, windows=wins, labels=all_labels)


def _as_label(name: str, value):
    """A label given as a plain number in the shape annotate writes it."""
    if not isinstance(value, (int, float)):
        return value
    return {"compound": value, "model": "vader"} if name == "text_sentiment" else {"value": value, "model": "synthetic"}


def consistent_valence(rng: random.Random, label: str) -> float:
    sentiment = SENTIMENT.get(label)
    if sentiment == "positive":
        return rng.uniform(0.55, 0.95)
    if sentiment == "negative":
        return rng.uniform(0.05, 0.35)
    if sentiment == "neutral":
        return rng.uniform(0.41, 0.49)
    return rng.uniform(0, 1)


def window_specs(rng: random.Random, truth: str, n: int, agree: float = 0.8, noise: float = 0.25) -> list[tuple]:
    specs = []
    for _ in range(n):
        label = truth if rng.random() < agree else rng.choice(VOCAB)
        valence = rng.uniform(0, 1) if rng.random() < noise else consistent_valence(rng, label)
        specs.append((label, round(valence, 3), round(rng.uniform(0.35, 0.95), 3)))
    return specs


def skewed_emotion(rng: random.Random) -> str:
    return rng.choices(list(SKEW), weights=list(SKEW.values()))[0]


def ravdess_segments(rec: Recording, rng: random.Random, agree: float = 0.9) -> list[Segment]:
    truth = RAVDESS_TO_VOCAB.get(rec.metadata["label"], "neutral")
    start, end = 0.2, rec.duration - 0.2
    n = max(1, math.ceil((end - start) / WINDOW_S))
    return [segment(rec.id, 0, start, window_specs(rng, truth, n, agree=agree), end=end,
                    speaker=rec.metadata["speaker"], gender=rec.metadata["gender"],
                    text="Kids are talking by the door", words=False)]


def turn_segments(rec: Recording, rng: random.Random, agree: float = 0.8) -> list[Segment]:
    out = []
    for start, end, speaker, gender in rec.metadata["turns"]:
        n = max(1, math.ceil((end - start) / WINDOW_S))
        out.append(segment(rec.id, len(out), start, window_specs(rng, skewed_emotion(rng), n, agree), end=end,
                           speaker=speaker, gender=gender, text_sentiment=round(rng.uniform(-1, 1), 2),
                           pitch_mean_hz={"value": rng.uniform(90, 260), "model": "synthetic"},
                           snr_db=rng.uniform(5, 30)))
    return out


def calm_segments(rec: Recording, rng: random.Random, agree: float = 0.8) -> list[Segment]:
    """A calm meeting: the emotion model abstains on every window; a turn's gender "" abstains too."""
    out = []
    for start, end, speaker, gender in rec.metadata["turns"]:
        n = max(1, math.ceil((end - start) / WINDOW_S))
        seg = segment(rec.id, len(out), start, [(ABSTAINED, round(rng.uniform(0.3, 0.6), 3))] * n, end=end,
                      speaker=speaker, gender=gender or None)
        words = [w.model_copy(update={"word": CALM_WORDS[i % len(CALM_WORDS)]}) for i, w in enumerate(seg.words)]
        out.append(seg.model_copy(update={"words": words, "text": " ".join(w.word for w in words)}))
    return out


CALM_WORDS = "we could make the buttons on the remote bigger and easier to find".split()
"""What the calm meeting is about (QA type checks look for the clip's content words)."""


def condense(*segments: Segment, **config) -> tuple[list[Segment], list[Drop], dict[str, float]]:
    """The condense stage run in memory: its kept segments, its drops and its counters."""
    stage = CondenseStage(CondenseConfig(**config), StageContext(run_dir=Path("."), stage_dir=Path("."), name="condense"))
    stage.fit(iter(segments))
    out = list(stage.process_batch(list(segments)))
    return ([s for s in out if isinstance(s, Segment)], [s for s in out if isinstance(s, Drop)],
            dict(stage.context.counters))


# ---------------------------------------------------------------- stages for the executor


class Entry(BaseModel):
    id: str
    audio: str
    duration: float
    metadata: dict


class CorpusSource(SourceStage[Entry, Recording]):
    """Reads a JSON list of recordings (already 16 kHz mono)."""

    name = "ingest"
    input_type = Entry
    output_type = Recording

    def discover(self, input_path: Path):
        for obj in json.loads(input_path.read_text()):
            yield Entry(**obj)

    def process_batch(self, items):
        for e in items:
            yield Recording(id=e.id, audio=e.audio, duration=e.duration, sample_rate=16000, channels=1,
                            source=e.metadata.get("source", e.audio), metadata=e.metadata)


class SyntheticAnnotate(Stage[Recording, Segment]):
    """Deterministic fake annotation: RAVDESS clips get their acted emotion, meetings get turns
    with a neutral-heavy emotion mix, calm meetings turns on which the emotion model abstains."""

    name = "annotate"
    input_type = Recording
    output_type = Segment

    class Config(StageConfig):
        seed: int = 0
        agree: float = 0.9
        """How often a window's predicted emotion is the true one."""

    def process_batch(self, items):
        for rec in items:
            rng = random.Random(f"{self.config.seed}:{rec.id}")
            make = {"ravdess": ravdess_segments, "calm": calm_segments}.get(rec.metadata["kind"], turn_segments)
            yield from make(rec, rng, self.config.agree)


def make_recipe(*stages: StageSpec, agree: float = 0.9) -> Recipe:
    return Recipe(name="test", documentation="", source="test", stages=[
        StageSpec("ingest", "ingest", CorpusSource, StageConfig(batch_size=8)),
        StageSpec("annotate", "annotate", SyntheticAnnotate, SyntheticAnnotate.Config(batch_size=8, agree=agree)),
        *stages,
    ])


def build_real_corpus(real: Path, out: Path, n_ravdess: int = 16) -> Path:
    """RAVDESS clips resampled to 16 kHz FLAC, the AMI 60 s mixture and the ten 30 s AMI clips, with
    their human labels / speaker turns; returns the JSON input for `CorpusSource`."""
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    with open(real / "ravdess" / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    rows.sort(key=lambda r: r["file"])
    by_label: dict[str, list[dict]] = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    picked = [r for i in range(n_ravdess) for r in [by_label[sorted(by_label)[i % len(by_label)]][i // len(by_label)]]]
    for row in picked:
        data, sr = sf.read(real / "ravdess" / row["file"], dtype="float32")
        data = soxr.resample(data, sr, 16000)
        path = out / (Path(row["file"]).stem + ".flac")
        sf.write(path, data, 16000, format="FLAC", subtype="PCM_16")
        # ids made from paths hold folders, as ingest's do
        entries.append({"id": f"ravdess/{Path(row['file']).stem}", "audio": str(path), "duration": len(data) / 16000,
                        "metadata": {"kind": "ravdess", "label": row["label"], "speaker": row["speaker"],
                                     "gender": row["gender"], "source": str((real / "ravdess" / row["file"]).resolve())}})
    turns: dict[str, list] = {}
    with open(real / "ami_meetings" / "segments.csv", newline="") as f:
        for row in csv.DictReader(f):
            if float(row["duration_s"]) >= 0.5:
                turns.setdefault(row["file"], []).append(
                    [float(row["start_s"]), float(row["end_s"]), row["speaker"], row["gender"]])
    for name in sorted(turns):
        path = real / "ami_meetings" / name
        entries.append({"id": "ami-" + Path(name).stem, "audio": str(path), "duration": sf.info(path).duration,
                        "metadata": {"kind": "ami", "turns": sorted(turns[name])}})
    manifest = out / "corpus.json"
    manifest.write_text(json.dumps(entries))
    return manifest
