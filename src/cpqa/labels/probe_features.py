"""Probe-head features made the way the annotate stage makes them (the module docstring of
`cpqa.labels.probe` says how): examples placed into 16 kHz audio (trimmed to speech, packed per
speaker), then Whisper-encoder or GE2E features of their analysis windows."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.decode import load_16k_mono
from ..audio.io import SAMPLE_RATE, read_range, write_flac_16k
from ..audio.speaker_embedding import GE2EEncoder
from ..errors import CPQAError
from .encoder import FeatureCache, RecordingFeatures, WhisperEncoder
from .probe_manifest import Example
from .windows import WindowSpan, layout

logger = logging.getLogger(__name__)

PACK_MODES = ("speaker", "none", "both")
PACK_MAX_S = 300.0


@dataclass
class FeatureSet:
    """Window features with, per window, its example's index and label and its speaker."""

    features: np.ndarray
    example: np.ndarray
    weight: np.ndarray
    """Central duration of each window (seconds): its weight when windows are aggregated."""
    labels: list[str]
    speakers: list[str]
    examples: list[Example] = field(default_factory=list)

    def window_labels(self) -> np.ndarray:
        return np.asarray([self.labels[i] for i in self.example])

    def window_speakers(self) -> np.ndarray:
        return np.asarray([self.speakers[i] for i in self.example])


def _speech_span(samples: np.ndarray) -> tuple[float, float]:
    """First speech start to last speech end (Silero VAD as bundled with faster-whisper); the whole
    clip when no speech is found."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    stamps = get_speech_timestamps(samples, VadOptions(min_silence_duration_ms=500, speech_pad_ms=200))
    if not stamps:
        return 0.0, len(samples) / SAMPLE_RATE
    return stamps[0]["start"] / SAMPLE_RATE, stamps[-1]["end"] / SAMPLE_RATE


@dataclass
class _Placed:
    """Where an example's span lies in the 16 kHz mono audio the encoder reads."""

    audio: str
    start: float
    end: float


def _digest(*parts: Any) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:16]


def place_examples(examples: list[Example], work_dir: Path, pack: str = "speaker") -> list[_Placed]:
    """Put every example into 16 kHz mono audio: spans of real recordings stay where they are
    (resampled once when needed); whole files are trimmed to speech and, with pack='speaker',
    concatenated per speaker into pseudo-recordings of at most PACK_MAX_S seconds."""
    if pack not in ("speaker", "none"):
        raise CPQAError(f"pack '{pack}': choose speaker or none")
    placed: list[_Placed | None] = [None] * len(examples)
    converted: dict[str, str] = {}

    def as_16k(path: str) -> str:
        import soundfile as sf

        if path not in converted:
            info = sf.info(path)
            if info.samplerate == SAMPLE_RATE and info.channels == 1:
                converted[path] = path
            else:
                out = work_dir / "audio" / f"{_digest(path, info.frames)}.flac"
                if not out.exists():
                    write_flac_16k(out, load_16k_mono(path))
                converted[path] = str(out)
        return converted[path]

    by_speaker: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        if ex.start is not None and ex.end is not None:
            placed[i] = _Placed(as_16k(ex.audio), ex.start, ex.end)
        else:
            by_speaker.setdefault(ex.speaker if pack == "speaker" else f"{ex.speaker}#{i}", []).append(i)

    for key, indices in by_speaker.items():
        blocks: list[list[int]] = [[]]
        total = 0.0
        clips = {}
        for i in indices:
            samples = load_16k_mono(examples[i].audio)
            clips[i] = samples
            if blocks[-1] and total + len(samples) / SAMPLE_RATE > PACK_MAX_S:
                blocks.append([])
                total = 0.0
            blocks[-1].append(i)
            total += len(samples) / SAMPLE_RATE
        for block in blocks:
            if len(block) == 1 and pack == "none":
                audio = as_16k(examples[block[0]].audio)
            else:
                audio = str(work_dir / "packed" / f"{_digest(key, *(examples[i].audio for i in block))}.flac")
                if not Path(audio).exists():
                    write_flac_16k(audio, np.concatenate([clips[i] for i in block]))
            offset = 0.0
            for i in block:
                lo, hi = _speech_span(clips[i])
                placed[i] = _Placed(audio, offset + lo, offset + hi)
                offset += len(clips[i]) / SAMPLE_RATE
    return placed  # type: ignore[return-value]


def extract_features(examples: list[Example], work_dir: str | Path, encoder: WhisperEncoder | None = None,
                     pooling: str = "mean", pack: str = "speaker", center_s: float = 2.0,
                     context_s: float = 1.0) -> FeatureSet:
    """Window features of every example; encoder passes are cached on disk under `work_dir`.
    With pack='both' every whole-file example appears twice, heard in context (among its speaker's
    clips; spans of long recordings in their recording) and alone; the copies' `source` says which
    ('[context]' / '[alone]'), so scores come per condition."""
    if pack == "both":
        packed = [replace(e, source=f"{e.source} [context]") for e in examples]
        alone = [replace(e, source=f"{e.source} [alone]") for e in examples if e.start is None or e.end is None]
        a = extract_features(packed, work_dir, encoder, pooling, "speaker", center_s, context_s)
        b = extract_features(alone, work_dir, encoder, pooling, "none", center_s, context_s)
        return FeatureSet(np.concatenate([a.features, b.features]), np.concatenate([a.example, b.example + len(packed)]),
                          np.concatenate([a.weight, b.weight]), a.labels + b.labels, a.speakers + b.speakers,
                          a.examples + b.examples)
    work_dir = Path(work_dir)
    encoder = encoder or WhisperEncoder()
    placed = place_examples(examples, work_dir, pack)
    cache = FeatureCache(lambda audio: RecordingFeatures(audio, encoder, cache_dir=work_dir / "frames"), size=4)
    rows, owner, weight = [], [], []
    for i, where in enumerate(placed):
        features = cache.get(where.audio)
        for span in layout(where.start, where.end, center_s, context_s):
            rows.append(features.pooled(span.context_start, span.context_end, pooling))
            owner.append(i)
            weight.append(span.duration)
        if (i + 1) % 50 == 0:
            logger.info("features: %d/%d examples", i + 1, len(examples))
    return FeatureSet(np.asarray(rows, dtype=np.float32), np.asarray(owner), np.asarray(weight),
                      [e.label for e in examples], [e.speaker for e in examples], examples)


def extract_ge2e_features(examples: list[Example], work_dir: str | Path, encoder: GE2EEncoder | None = None,
                          center_s: float = 2.0, context_s: float = 1.0) -> FeatureSet:
    """GE2E speaker embeddings of every example's analysis windows (the `ge2e-probe` backend's
    features). A window's embedding depends on its own audio only, so clips are never packed."""

    encoder = encoder or GE2EEncoder()
    clips, owner, weight = [], [], []
    for i, span, clip in window_clips(examples, work_dir, center_s, context_s):
        clips.append(clip)
        owner.append(i)
        weight.append(span.duration)
    return FeatureSet(encoder.embed(clips), np.asarray(owner), np.asarray(weight),
                      [e.label for e in examples], [e.speaker for e in examples], examples)


def window_clips(examples: list[Example], work_dir: str | Path, center_s: float = 2.0,
                 context_s: float = 1.0) -> Iterator[tuple[int, WindowSpan, np.ndarray]]:
    """(example index, window, its audio) of every analysis window of every example heard alone
    (never packed), in order: the windows of `extract_features(pack="none")` and of
    `extract_ge2e_features`, row for row."""
    for i, where in enumerate(place_examples(examples, Path(work_dir), pack="none")):
        for span in layout(where.start, where.end, center_s, context_s):
            yield i, span, read_range(where.audio, span.context_start, span.context_end)

