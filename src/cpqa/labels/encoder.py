"""Pooled Whisper encoder features for probe heads: encode each 30-s chunk of a recording once,
then pool the frames (50 per second) of any time range from those passes.

The features are made the way faster-whisper makes them for ASR (log-mel of the chunk, padded to
3000 frames), so a pass could be shared with transcription where the chunks line up. A window that
crosses a chunk border pools the frames of both passes. Heads are trained on features made by this
same code (see `cpqa.labels.probe`), never on whole clips padded alone.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections import OrderedDict
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import numpy as np

from ..audio.io import SAMPLE_RATE, read_range
from ..io_atomic import atomic_path

logger = logging.getLogger(__name__)

CHUNK_S = 30.0
FRAMES_PER_S = 50
CHUNK_FRAMES = int(CHUNK_S * FRAMES_PER_S)
POOLINGS = ("mean", "mean+std")


class WhisperEncoder:
    """The Whisper encoder of a CTranslate2 model folder (default: the embedded Whisper base).

    `encode_chunk(samples)` returns the last-layer frames `[1500, d_model]` of up to 30 s of 16 kHz
    audio. The model loads on first use.
    """

    def __init__(self, model: str = "embedded:base", device: str = "cpu", compute_type: str = "default",
                 cpu_threads: int = 0):
        self.model_name = model
        self.device = device
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self._model = None
        self._features = None

    def _load(self):
        import ctranslate2
        from faster_whisper.feature_extractor import FeatureExtractor

        from ..models import resolve_whisper_model

        path = resolve_whisper_model(self.model_name)
        self._model = ctranslate2.models.Whisper(path, device=self.device, compute_type=self.compute_type,
                                                 intra_threads=self.cpu_threads)
        self._features = FeatureExtractor(feature_size=self._model.n_mels)
        logger.info("loaded Whisper encoder %s (%s) on %s", self.model_name, path, self.device)

    def encode_chunk(self, samples: np.ndarray) -> np.ndarray:
        if self._model is None:
            self._load()
        import ctranslate2
        from faster_whisper.audio import pad_or_trim

        mel = pad_or_trim(self._features(np.asarray(samples, dtype=np.float32)), CHUNK_FRAMES * 2)
        storage = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None], dtype=np.float32))
        out = self._model.encode(storage, to_cpu=True)
        return np.asarray(out, dtype=np.float32)[0]


def pool(frames: np.ndarray, pooling: str) -> np.ndarray:
    """One vector from `[n, d]` frames: their mean, or mean and standard deviation side by side."""
    if pooling == "mean":
        return frames.mean(axis=0)
    if pooling == "mean+std":
        return np.concatenate([frames.mean(axis=0), frames.std(axis=0)])
    raise ValueError(f"unknown pooling '{pooling}'; known: {', '.join(POOLINGS)}")


class RecordingFeatures:
    """Encoder frames of one recording, computed chunk by chunk on demand; the last `max_chunks`
    passes stay in memory (and every pass on disk when `cache_dir` is given).

    `frames(start, end)` returns the frames whose centres lie in [start, end) (at least one), taken
    from the passes over the 30-s chunks [k*30, (k+1)*30) that the range touches. Every pass hears
    30 s of the recording, never padding: the last chunk of a recording longer than 30 s is moved
    back to end at the recording's end, and a recording shorter than 30 s is looped to fill the
    chunk. (Whisper's encoder attends over the whole chunk: a 3-s clip padded alone gives frames
    unlike those of the same speech inside 30 s of speech, and heads trained on one fail on the other.)
    """

    FILL = "shift-last+loop-short"

    def __init__(self, audio_path: str | Path, encoder: WhisperEncoder, cache_dir: str | Path | None = None,
                 max_chunks: int = 4):
        self.audio_path = str(audio_path)
        self.encoder = encoder
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.max_chunks = max_chunks
        self._chunks: OrderedDict[int, np.ndarray] = OrderedDict()
        self.passes = 0

    @cached_property
    def _frames_total(self) -> int:
        import soundfile as sf

        return int(sf.info(self.audio_path).frames)

    @property
    def looped(self) -> bool:
        """True for a recording shorter than one pass: the encoder hears it looped."""
        return self._frames_total < int(CHUNK_S * SAMPLE_RATE)

    def chunk_start(self, k: int) -> int:
        """First sample of the audio the k-th pass hears."""
        chunk = int(CHUNK_S * SAMPLE_RATE)
        return max(0, min(k * chunk, self._frames_total - chunk))

    def _cache_path(self, k: int) -> Path:
        stat = os.stat(self.audio_path)
        key = (f"{self.encoder.model_name}|{os.path.abspath(self.audio_path)}|{stat.st_size}|{stat.st_mtime_ns}|{k}"
               f"|{self.FILL}")
        return self.cache_dir / (hashlib.sha1(key.encode()).hexdigest() + ".npy")

    def _chunk(self, k: int) -> np.ndarray:
        if k in self._chunks:
            self._chunks.move_to_end(k)
            return self._chunks[k]
        path = self._cache_path(k) if self.cache_dir else None
        if path is not None and path.exists():
            frames = np.load(path)
        else:
            first = self.chunk_start(k)
            samples = read_range(self.audio_path, first / SAMPLE_RATE, first / SAMPLE_RATE + CHUNK_S)
            heard = len(samples)
            if 0 < heard < int(CHUNK_S * SAMPLE_RATE):
                samples = np.resize(samples, int(CHUNK_S * SAMPLE_RATE))  # loop a short recording
            frames = self.encoder.encode_chunk(samples)
            self.passes += 1
            if path is not None:  # only frames of real audio: windows never reach the loop
                with atomic_path(path, unique=True) as tmp:  # processes may share the cache
                    np.save(tmp, frames[: math.ceil(heard / SAMPLE_RATE * FRAMES_PER_S)])
        self._chunks[k] = frames
        while len(self._chunks) > self.max_chunks:  # segments come in time order: old chunks are done
            self._chunks.popitem(last=False)
        return frames

    def frames(self, start: float, end: float) -> np.ndarray:
        first = max(0, math.floor(start * FRAMES_PER_S))
        last = max(first + 1, math.ceil(end * FRAMES_PER_S))
        parts = []
        for k in range(first // CHUNK_FRAMES, (last - 1) // CHUNK_FRAMES + 1):
            offset = round(self.chunk_start(k) / SAMPLE_RATE * FRAMES_PER_S)
            lo = max(first, k * CHUNK_FRAMES) - offset
            hi = min(last, (k + 1) * CHUNK_FRAMES) - offset
            parts.append(self._chunk(k)[lo:hi])
        out = np.concatenate(parts, axis=0)
        if len(out) == 0:  # a range at the very end: its last frame
            out = self._chunk((last - 1) // CHUNK_FRAMES)[-1:]
        return out

    def pooled(self, start: float, end: float, pooling: str = "mean") -> np.ndarray:
        return pool(self.frames(start, end), pooling)


class FeatureCache:
    """The `RecordingFeatures` of the last few recordings a stage touched (segments of a recording
    arrive together, so a small LRU keeps each chunk encoded once)."""

    def __init__(self, factory: Callable[[str], RecordingFeatures], size: int = 2):
        self.factory = factory
        self.size = size
        self._items: OrderedDict[str, RecordingFeatures] = OrderedDict()

    def get(self, recording_id: str) -> RecordingFeatures:
        if recording_id in self._items:
            self._items.move_to_end(recording_id)
        else:
            self._items[recording_id] = self.factory(recording_id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return self._items[recording_id]
