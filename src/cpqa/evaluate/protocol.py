"""The speech-LLM protocol (capability 'speechllm'): a batch of `SpeechQuery` in, one
`SpeechAnswer` per query out, in order. A query that failed comes back with `skipped=True`, a
short `skip_reason` and a readable `error`; one bad item never raises.

A query carries the audio the model may hear (already cut by the evaluation's long-clip policy:
one piece, or several ≤ window pieces under `chunk`), the question, the earlier turns of a
multi-turn item (with their reference answers, so every turn is judged on its own), and the clip's
tagged words within the audio heard (`None` when the QA source has no clip records), which only
the cascade baselines read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from pydantic import Field

from ..outcome import Outcome
from ..records import ClipWord, Turn
from ..stage import Config


@dataclass
class SpeechQuery:
    unit_id: str
    audio: list[np.ndarray]
    """16 kHz mono float32 pieces, in time order."""
    question: str
    history: list[Turn] = field(default_factory=list)
    words: list[ClipWord] | None = None


@dataclass
class SpeechAnswer(Outcome):
    text: str = ""
    model: str = ""
    latency_s: float = 0.0


class SpeechLLMConfig(Config):
    """Options common to every speech-LLM adapter."""

    non_semantic: ClassVar[frozenset[str]] = frozenset({"batch_size"})
    batch_size: int = Field(8, ge=1, description="Queries per model call.")
    system_prompt: str | None = Field(None, description="A system message; unset: the model's default.")
    max_new_tokens: int = Field(256, ge=1, description="Longest answer, in tokens.")
    temperature: float = Field(0.0, ge=0, description="0: greedy decoding.")


class SpeechLLM:
    """Base of speech-LLM adapters. Construct with the adapter's `Config`; load models lazily."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    """Change it when the adapter's answers for the same config change (it enters the cache key)."""
    Config: ClassVar[type[SpeechLLMConfig]] = SpeechLLMConfig
    window_s: ClassVar[float | None] = None
    """The longest audio the model takes in one piece; None: no limit of its own."""

    def __init__(self, config: SpeechLLMConfig):
        self.config = config

    @property
    def model_name(self) -> str:
        return str(getattr(self.config, "model", self.name))

    def answer_many(self, queries: list[SpeechQuery]) -> list[SpeechAnswer]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the model."""

