"""Silero voice activity detection with the ONNX model bundled in faster-whisper (no torch, no
download). Registered as the `silero` VAD backend."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from ..stage import Config as BackendConfig
from .io import SAMPLE_RATE
from .protocols import SpeechRegion


class SileroVAD:
    """Silero VAD v6 (ONNX, bundled with faster-whisper): speech regions of 16 kHz mono audio."""

    model_name = "silero-vad-v6"

    class Config(BackendConfig):
        threshold: float = Field(
            0.35, gt=0, lt=1, description="Frame speech probability that starts speech. At Silero's usual 0.5 a "
                                          "shouted RAVDESS sentence gave 0.2 s of speech; 0.35 was chosen on acted "
                                          "and natural speech by benchmarks/vad_recall.py.")
        neg_threshold: float | None = Field(
            None, gt=0, lt=1, description="Probability below which speech ends (None: threshold - 0.15).")
        min_speech_s: float = Field(
            0.0, ge=0, description="Regions shorter than this are dropped. 0 reports every region: the fragments "
                                   "of halting, sobbing or whispered speech are joined by the caller before any "
                                   "length filter (the segment stage requires 0).")
        min_silence_s: float = Field(
            0.1, ge=0, description="Silence that must pass before a region ends; shorter pauses stay inside.")
        speech_pad_s: float = Field(
            0.1, ge=0, description="Padding added to each side of a region (neighbours closer than twice "
                                   "this share the pause between them).")

    def __init__(self, config: Config | None = None):
        from faster_whisper.vad import VadOptions, get_vad_model

        self.config = config or self.Config()
        self._options = VadOptions(
            threshold=self.config.threshold,
            neg_threshold=self.config.neg_threshold,
            min_speech_duration_ms=round(self.config.min_speech_s * 1000),
            min_silence_duration_ms=round(self.config.min_silence_s * 1000),
            speech_pad_ms=round(self.config.speech_pad_s * 1000),
        )
        get_vad_model()  # load the ONNX session now (cached per process), not on the first detect

    def detect(self, audio: np.ndarray) -> list[SpeechRegion]:
        from faster_whisper.vad import get_speech_timestamps

        if audio.size == 0:
            return []
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        stamps = get_speech_timestamps(audio, self._options, sampling_rate=SAMPLE_RATE)
        return [SpeechRegion(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]
