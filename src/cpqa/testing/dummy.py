"""Dummy backends: deterministic, model-free stand-ins for tests and the `dummy` recipe.

They exercise the pipeline (executor, resume, CLI) without loading models. Never use them for
data: their outputs mean nothing.
"""

from __future__ import annotations

import time

import numpy as np
from pydantic import Field

from ..audio.io import SAMPLE_RATE
from ..audio.protocols import ASRResult, SpeechRegion
from ..records import Word
from ..stage import Config


class EnergyVAD:
    """Frames whose RMS exceeds a fixed threshold are speech (a test tool, not a real VAD)."""

    class Config(Config):
        non_semantic = frozenset({"delay_s"})
        threshold_rms: float = Field(0.01, gt=0)
        frame_s: float = Field(0.05, gt=0)
        delay_s: float = Field(0.0, ge=0, description="Sleep per call, to widen windows for kill tests.")

    model_name = "dummy-energy"

    def __init__(self, config: EnergyVAD.Config):
        self.config = config

    def detect(self, audio: np.ndarray) -> list[SpeechRegion]:
        time.sleep(self.config.delay_s)
        frame = max(1, int(self.config.frame_s * SAMPLE_RATE))
        n = len(audio) // frame
        if n == 0:
            return []
        rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1))
        regions: list[SpeechRegion] = []
        start = None
        for i, voiced in enumerate(rms > self.config.threshold_rms):
            if voiced and start is None:
                start = i
            elif not voiced and start is not None:
                regions.append(SpeechRegion(start * frame / SAMPLE_RATE, i * frame / SAMPLE_RATE))
                start = None
        if start is not None:
            regions.append(SpeechRegion(start * frame / SAMPLE_RATE, n * frame / SAMPLE_RATE))
        return regions


class DummyASR:
    """One fake word per `word_s` seconds of audio, named by its index (a test tool)."""

    class Config(Config):
        non_semantic = frozenset({"delay_s"})
        word_s: float = Field(0.5, gt=0)
        language: str = "en"
        delay_s: float = Field(0.0, ge=0, description="Sleep per call, to widen windows for kill tests.")

    model_name = "dummy"

    def __init__(self, config: DummyASR.Config):
        self.config = config

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        return self.config.language, 1.0

    def transcribe(self, audio: np.ndarray, language: str | None = None) -> ASRResult:
        time.sleep(self.config.delay_s)
        duration_s = len(audio) / SAMPLE_RATE
        n = int(duration_s // self.config.word_s)
        words = [
            Word(word=f"w{i}", start=round(i * self.config.word_s, 3),
                 end=round((i + 1) * self.config.word_s, 3), prob=1.0)
            for i in range(n)
        ]
        return ASRResult(text=" ".join(w.word for w in words), words=words)
