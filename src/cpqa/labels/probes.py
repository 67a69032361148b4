"""Offline default backends: probe heads on the embedded Whisper-base encoder (emotion, with the
window's acoustic features; gender), a gender head on GE2E speaker embeddings, valence/arousal/
dominance from a ridge head on GE2E embeddings (independent of the emotion head), and, as an option
only, valence/arousal/dominance projected from the emotion posteriors (circumplex table).

Both Whisper probe backends pool their windows from one shared set of encoder passes per recording,
so emotion and gender together cost one Whisper encoder pass per 30-s chunk.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from ..audio.speaker_embedding import GE2EEncoder, shared_encoder
from ..models import sha256_file
from ..reasons import NO_EMOTION
from ..stage import Config
from .acoustic import acoustic_features
from .encoder import RecordingFeatures, WhisperEncoder
from .heads import ProbeHead, RegressionHead, resolve_head, speaker_normalize
from .protocols import AudioWindow, CategoricalResult, DimensionResult, SpeakerResult
from .regression import GOLD_VAD

_ENCODERS: dict[tuple[str, str, str], WhisperEncoder] = {}
_FEATURES: OrderedDict[tuple, RecordingFeatures] = OrderedDict()
_FEATURES_KEPT = 2


def shared_features(audio: str, encoder: str, device: str, compute_type: str) -> RecordingFeatures:
    """The encoder passes of one recording, shared by every probe backend in this process (the
    last two recordings are kept)."""
    key = (audio, encoder, device, compute_type)
    if key not in _FEATURES:
        enc_key = (encoder, device, compute_type)
        if enc_key not in _ENCODERS:
            _ENCODERS[enc_key] = WhisperEncoder(encoder, device=device, compute_type=compute_type)
        _FEATURES[key] = RecordingFeatures(audio, _ENCODERS[enc_key])
        while len(_FEATURES) > _FEATURES_KEPT:
            _FEATURES.popitem(last=False)
    _FEATURES.move_to_end(key)
    return _FEATURES[key]


class HeadConfig(Config):
    non_semantic: ClassVar[frozenset[str]] = frozenset({"device"})
    HEAD_FIELDS: ClassVar[tuple[str, ...]] = ("head",)

    head: str = Field(..., description="A shipped head ('builtin:emotion') or a path to a .npz head.")
    device: str = "cpu"

    def semantic_dict(self) -> dict[str, Any]:
        """Also the heads' content hashes, so a retrained head reruns the stage."""
        out = super().semantic_dict()
        for key in self.HEAD_FIELDS:
            if out.get(key):
                out[f"{key}_sha256"] = sha256_file(resolve_head(out[key]))
        return out


class ProbeConfig(HeadConfig):
    HEAD_FIELDS: ClassVar[tuple[str, ...]] = ("head", "short_head", "speaker_norm_head")

    short_head: str | None = Field(
        None, description="A head for recordings shorter than one 30-s encoder pass, which the encoder hears "
                          "looped (trained on clips encoded alone); null: `head` for every recording.")
    speaker_norm_head: str | None = Field(
        None, description="A head trained on per-speaker normalised features, used for speakers with at "
                          "least `min_speaker_windows` windows in the batch (others get `head`).")
    min_speaker_windows: int = Field(8, ge=2)
    compute_type: str = "default"


def _load_head(path: str | None) -> ProbeHead | None:
    return ProbeHead.load(resolve_head(path)) if path else None


class _HeadBackend:
    """A backend whose labels come from the probe head(s) its config names."""

    def __init__(self, config: HeadConfig):
        self.config = config

    @cached_property
    def head(self) -> ProbeHead:
        return _load_head(self.config.head)  # type: ignore[return-value]

    @property
    def model_name(self) -> str:
        return self.head.model_id


class _WhisperProbe(_HeadBackend):
    config: ProbeConfig

    @cached_property
    def norm_head(self) -> ProbeHead | None:
        return _load_head(self.config.speaker_norm_head)

    @cached_property
    def short_head(self) -> ProbeHead | None:
        return _load_head(self.config.short_head)

    def _features(self, windows: list[AudioWindow], head: ProbeHead) -> np.ndarray:
        pooled = np.stack([
            shared_features(w.audio, head.encoder, self.config.device, self.config.compute_type)
            .pooled(w.start, w.end, head.pooling) for w in windows
        ])
        if not head.acoustic:
            return pooled
        return np.concatenate([pooled, np.stack([acoustic_features(w.samples()) for w in windows])], axis=1)

    def classify(self, windows: list[AudioWindow]) -> list[CategoricalResult]:
        if not windows:
            return []
        results: list[CategoricalResult | None] = [None] * len(windows)
        plain = list(range(len(windows)))
        if self.norm_head is not None:
            keys = [w.speaker_key for w in windows]
            big = {k for k in set(keys) if keys.count(k) >= self.config.min_speaker_windows}
            normed = [i for i, k in enumerate(keys) if k in big]
            plain = [i for i, k in enumerate(keys) if k not in big]
            if normed:
                x = speaker_normalize(self._features([windows[i] for i in normed], self.norm_head),
                                      [keys[i] for i in normed])
                self._fill(results, normed, self.norm_head, x, self.norm_head.model_id)
        by_head: dict[bool, list[int]] = {}
        for i in plain:
            by_head.setdefault(self._short(windows[i]), []).append(i)
        for short, indices in by_head.items():
            head = self.short_head if short else self.head
            self._fill(results, indices, head, self._features([windows[i] for i in indices], head),
                       head.model_id if short else None)
        return results  # type: ignore[return-value]

    @staticmethod
    def _fill(results: list, indices: list[int], head: ProbeHead, x: np.ndarray, model: str | None) -> None:
        """Results of `head` on features `x` (rows of `indices`), with its out-of-distribution check
        and abstention advice."""
        ood = head.out_of_distribution(x)
        for i, p, far in zip(indices, head.predict_proba(x), ood):
            results[i] = CategoricalResult.from_probs(dict(zip(head.labels, p)), model=model,
                                                      out_of_distribution=bool(far),
                                                      min_confidence=head.min_confidence)

    def _short(self, window: AudioWindow) -> bool:
        """Whether the short-recording head labels this window (its recording is looped to fill a pass)."""
        return self.short_head is not None and shared_features(
            window.audio, self.head.encoder, self.config.device, self.config.compute_type).looped


class WhisperProbeEmotion(_WhisperProbe):
    """Emotion probe head on pooled embedded Whisper-base encoder features (offline default)."""

    class Config(ProbeConfig):
        head: str = "builtin:emotion"
        short_head: str | None = "builtin:emotion-short"

    def predict(self, windows: list[AudioWindow]) -> list[CategoricalResult]:
        return self.classify(windows)


class WhisperProbeSpeaker(_WhisperProbe):
    """Gender probe head on pooled embedded Whisper-base encoder features (the offline default is
    `ge2e-probe`)."""

    class Config(ProbeConfig):
        head: str = "builtin:gender"

    def predict(self, windows: list[AudioWindow]) -> list[SpeakerResult]:
        return [SpeakerResult(gender=r) for r in self.classify(windows)]


class GE2EProbeSpeaker(_HeadBackend):
    """Gender head on GE2E speaker embeddings of each window (offline default)."""

    class Config(HeadConfig):
        head: str = "builtin:gender-ge2e"

    def __init__(self, config: Config):
        super().__init__(config)
        self.encoder = shared_encoder(config.device)

    def predict(self, windows: list[AudioWindow]) -> list[SpeakerResult]:
        if not windows:
            return []
        probs = self.head.predict_proba(shared_embeddings(self.encoder, windows))
        return [SpeakerResult(gender=CategoricalResult.from_probs(dict(zip(self.head.labels, p)))) for p in probs]


_EMBEDDINGS: OrderedDict[tuple[str, float, float], np.ndarray] = OrderedDict()
_EMBEDDINGS_KEPT = 4096


def shared_embeddings(encoder: GE2EEncoder, windows: list[AudioWindow]) -> np.ndarray:
    """GE2E embeddings of the windows, each computed once per process for the backends that read
    them (gender and dimensions); the most recent windows are kept."""
    keys = [(w.audio, round(w.start, 3), round(w.end, 3)) for w in windows]
    todo = [i for i, key in enumerate(keys) if key not in _EMBEDDINGS]
    if todo:
        for i, row in zip(todo, encoder.embed([windows[i].samples() for i in todo])):
            _EMBEDDINGS[keys[i]] = row
    out = np.stack([_EMBEDDINGS[key] for key in keys])
    for key in keys:
        _EMBEDDINGS.move_to_end(key)
    while len(_EMBEDDINGS) > _EMBEDDINGS_KEPT:
        _EMBEDDINGS.popitem(last=False)
    return out


class GE2ERidgeDimensions:
    """Valence, arousal and dominance from a ridge head on the window's GE2E speaker embedding. It
    reads nothing the emotion head reads (pooled Whisper frames and acoustic features), so
    condensation's emotion–valence agreement compares two independent models (offline default)."""

    derived = False

    class Config(HeadConfig):
        head: str = "builtin:dimensions-ge2e"

    def __init__(self, config: Config):
        self.config = config
        self.head = RegressionHead.load(resolve_head(config.head))
        self.model_name = self.head.model_id
        self.encoder = shared_encoder(config.device)

    def predict(self, windows: list[AudioWindow], emotions: list[CategoricalResult]) -> list[DimensionResult]:
        if not windows:
            return []
        index = {name: i for i, name in enumerate(self.head.labels)}
        return [DimensionResult(*(round(float(row[index[d]]), 4) for d in ("valence", "arousal", "dominance")))
                for row in self.head.predict(shared_embeddings(self.encoder, windows))]


CIRCUMPLEX_VAD: dict[str, tuple[float, float, float]] = {**GOLD_VAD, "other": (0.45, 0.45, 0.45),
                                                          "unknown": (0.45, 0.45, 0.45)}
"""Where each emotion sits on valence/arousal/dominance (`labels.regression.GOLD_VAD`); other and
unknown mid-scale. A projection, not a measurement: values are marked `derived`."""


class CircumplexDimensions:
    """Valence/arousal/dominance derived from emotion posteriors (posterior-weighted circumplex table).
    It repeats the emotion model, so it must never be condensation's agreement partner."""

    derived = True

    class Config(Config):
        pass

    def __init__(self, config: Config):
        self.config = config
        self.model_name = "circumplex-v1"

    def predict(self, windows: list[AudioWindow], emotions: list[CategoricalResult]) -> list[DimensionResult]:
        out = []
        for emotion in emotions:
            if emotion.skipped or not emotion.probs:
                out.append(DimensionResult(skipped=True, skip_reason=NO_EMOTION))
                continue
            total = sum(p for label, p in emotion.probs.items() if label in CIRCUMPLEX_VAD) or 1.0
            vad = [sum(p * CIRCUMPLEX_VAD[label][d] for label, p in emotion.probs.items() if label in CIRCUMPLEX_VAD)
                   / total for d in range(3)]
            out.append(DimensionResult(*(round(v, 4) for v in vad), score=emotion.score))
        return out
