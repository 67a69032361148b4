"""Backend protocols of the label stage. A backend is a class with a pydantic `Config`, registered
by name in `cpqa.registry.backend_registry(capability)` for capability 'emotion', 'dimensions',
'speaker' or 'events'. Each gets the analysis windows of one recording at a time and returns one
result per window, in order; a window it cannot label is a result with `skipped=True` and a reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..audio.io import read_range

EMOTION2VEC_MAP = {
    "anger": "angry", "angry": "angry", "disgust": "disgusted", "disgusted": "disgusted",
    "fear": "fearful", "fearful": "fearful", "happiness": "happy", "happy": "happy",
    "neutral": "neutral", "calm": "neutral", "sadness": "sad", "sad": "sad",
    "surprise": "surprised", "surprised": "surprised", "<unk>": "unknown",
}
"""The labelled corpora's common label names onto emotion2vec's classes (RAVDESS calm → neutral),
and emotion2vec+'s own ninth label `<unk>` onto `unknown`; probe training, condensation's
calibration and the hub backends read labels through it. Labels it does not name (e.g. boredom)
are left out."""


@dataclass
class AudioWindow:
    """What a model hears: [start, end) seconds of a recording's 16 kHz mono audio."""

    recording_id: str
    audio: str
    start: float
    end: float
    speaker_key: str
    """Recording and speaker (`rec/speaker`): windows sharing it may be normalised together."""

    @property
    def duration(self) -> float:
        return self.end - self.start

    def samples(self) -> np.ndarray:
        return read_range(self.audio, self.start, self.end)


@dataclass
class CategoricalResult:
    label: str | None = None
    score: float | None = None
    probs: dict[str, float] = field(default_factory=dict)
    model: str | None = None
    """Set when one window was labelled by a different model than the backend's default (e.g. a
    fallback head); else the backend's `model_name` applies."""
    skipped: bool = False
    skip_reason: str | None = None
    out_of_distribution: bool = False
    """The model found the window far from its training data: its posteriors are not to be trusted."""
    min_confidence: float | None = None
    """The posterior below which the model's own calibration says to abstain (None: no advice)."""

    @classmethod
    def from_probs(cls, probs: dict[str, float], model: str | None = None, out_of_distribution: bool = False,
                   min_confidence: float | None = None) -> CategoricalResult:
        label = max(probs, key=probs.get)
        return cls(label=label, score=float(probs[label]), probs={k: round(float(v), 4) for k, v in probs.items()},
                   model=model, out_of_distribution=out_of_distribution, min_confidence=min_confidence)


@dataclass
class DimensionResult:
    """Valence, arousal and dominance, each about 0..1 (the audEERING MSP-dim scale)."""

    valence: float | None = None
    arousal: float | None = None
    dominance: float | None = None
    score: float | None = None
    """Confidence in 0..1 where the backend has one."""
    skipped: bool = False
    skip_reason: str | None = None


@dataclass
class SpeakerResult:
    gender: CategoricalResult | None = None
    age_years: float | None = None
    skipped: bool = False
    skip_reason: str | None = None


@dataclass
class SoundEvent:
    """A timed sound event: [start, end) seconds from the recording start, score in 0..1."""

    label: str
    start: float
    end: float
    score: float


@dataclass
class EventResult:
    events: list[SoundEvent] = field(default_factory=list)
    """Every event heard in the window (empty: the tagger heard none)."""
    skipped: bool = False
    skip_reason: str | None = None


class EmotionModel(Protocol):
    """capability 'emotion': categorical emotion in the emotion2vec vocabulary."""

    model_name: str

    def predict(self, windows: list[AudioWindow]) -> list[CategoricalResult]: ...


class DimensionModel(Protocol):
    """capability 'dimensions': valence/arousal/dominance. `emotions` are the emotion backend's
    results for the same windows (a derived backend maps them; an acoustic one ignores them)."""

    model_name: str
    derived: bool

    def predict(self, windows: list[AudioWindow], emotions: list[CategoricalResult]) -> list[DimensionResult]: ...


class SpeakerModel(Protocol):
    """capability 'speaker': gender (female/male) and, where the model has it, age in years."""

    model_name: str

    def predict(self, windows: list[AudioWindow]) -> list[SpeakerResult]: ...


class EventTagger(Protocol):
    """capability 'events': timed sound events (music, singing, laughter, ...) in each window, in the
    cpqa event vocabulary (`cpqa.labels.audioset.AUDIOSET_EVENTS` names it)."""

    model_name: str

    def tag(self, windows: list[AudioWindow]) -> list[EventResult]: ...
