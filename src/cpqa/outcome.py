"""The failure fields every backend result carries (LLM replies, speech-LLM answers): a failed
request is data with a reason, never an exception that stops a stage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self


@dataclass
class Outcome:
    skipped: bool = False
    skip_reason: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.skipped

    @classmethod
    def failure(cls, reason: str, error: str, **fields: Any) -> Self:
        return cls(skipped=True, skip_reason=reason, error=error, **fields)
