"""Backend protocols for the audio stages. A backend is a class with a pydantic `Config`,
constructed from it, registered by name in `cpqa.registry.backend_registry(capability)`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..records import Word


@dataclass
class SpeechRegion:
    start: float
    end: float


class VAD(Protocol):
    """capability 'vad'. `audio` is 16 kHz mono float32; times are seconds from its first sample."""

    model_name: str

    def detect(self, audio: np.ndarray) -> list[SpeechRegion]: ...


@dataclass
class ASRResult:
    text: str = ""
    words: list[Word] = field(default_factory=list)


class ASR(Protocol):
    """capability 'asr'. Word times are seconds from the first sample of `audio`; an empty word
    list means nothing was recognised (the transcribe stage records it as a skip)."""

    model_name: str

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        """The language of the speech in `audio` and its probability; silence is ignored."""

    def transcribe(self, audio: np.ndarray, language: str | None = None) -> ASRResult: ...
