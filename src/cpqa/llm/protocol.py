"""The LLM protocol: one request type, one result type, per-backend counters.

Every backend (capability 'llm') takes a list of `LLMRequest` and returns one `LLMResult` per
request, in order. A result that failed carries `skipped=True`, a short `skip_reason` used for
counters (`timeout`, `http_429`, `invalid_output`, ...), a readable `error`, and whatever raw
output the model produced; one bad item never raises.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..errors import CPQAError
from ..outcome import Outcome

ROLES = frozenset({"system", "user", "assistant"})


@dataclass(frozen=True)
class LLMRequest:
    """One chat completion. `json_schema`, when given, asks for a JSON object valid against it:
    constrained decoding where the backend supports it, validated (and repaired) always."""

    messages: list[dict[str, str]]
    json_schema: dict[str, Any] | None = None
    temperature: float = 0.0
    max_tokens: int = 512
    seed: int | None = None
    stop: list[str] | None = None

    def __post_init__(self):
        if not self.messages:
            raise CPQAError("an LLM request needs at least one message")
        for message in self.messages:
            if message.get("role") not in ROLES or not isinstance(message.get("content"), str):
                raise CPQAError(
                    f"LLM messages are {{role: system|user|assistant, content: str}}, got {message!r:.200}"
                )
        if self.max_tokens < 1:
            raise CPQAError(f"max_tokens must be >= 1, got {self.max_tokens}")

    def follow_up(self, reply: str, message: str, max_tokens: int = 32) -> LLMRequest:
        """This conversation continued: the model's `reply`, then a new user `message`."""
        return replace(self, messages=[*self.messages, {"role": "assistant", "content": reply},
                                       {"role": "user", "content": message}], max_tokens=max_tokens)

    def params(self) -> dict[str, Any]:
        """The sampling parameters, as they enter the cache key."""
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "seed": self.seed,
                "stop": self.stop}


@dataclass
class LLMResult(Outcome):
    """What one request gave. `text` is the model's output exactly as produced (kept also when it
    failed validation); `parsed` is the validated JSON when the request had a schema."""

    text: str = ""
    parsed: Any = None
    finish_reason: str | None = None
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_tokens_reused: int = 0
    """Prompt tokens the backend did not evaluate, since a KV cache held them (local backends)."""
    latency_s: float = 0.0
    """Wall time of this request's backend work, retries and backoff included (0 on a cache hit)."""
    attempts: int = 0
    """Backend calls made for this request (transport retries and the validation retry included)."""
    repaired: bool = False
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LLMStats:
    """Counters of one backend instance, for a stage's stats.json (see `as_dict`)."""

    requests: int = 0
    cache_hits: int = 0
    calls: int = 0
    retries: int = 0
    repaired: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_tokens_reused: int = 0
    latency_s: float = 0.0
    """Sum of the fresh results' latencies (request-seconds; overlapping requests add up)."""
    wall_s: float = 0.0
    """Time spent inside `generate_many`."""
    failures: Counter = field(default_factory=Counter)

    def add(self, result: LLMResult) -> None:
        """Account one finished fresh (not cached) result."""
        self.prompt_tokens += result.prompt_tokens
        self.completion_tokens += result.completion_tokens
        self.prompt_tokens_reused += result.prompt_tokens_reused
        self.latency_s += result.latency_s
        self.repaired += int(result.repaired)
        if result.skipped:
            self.failed += 1
            self.failures[result.skip_reason] += 1

    def as_dict(self, prefix: str = "llm_") -> dict[str, int | float]:
        """Flat counters, e.g. `{"llm_calls": 12, "llm_failed_timeout": 1, ...}`."""
        out: dict[str, int | float] = {
            f"{prefix}{name}": getattr(self, name)
            for name in ("requests", "cache_hits", "calls", "retries", "repaired", "failed",
                         "prompt_tokens", "completion_tokens", "prompt_tokens_reused")
        }
        out[f"{prefix}latency_s"] = round(self.latency_s, 3)
        out[f"{prefix}wall_s"] = round(self.wall_s, 3)
        out.update({f"{prefix}failed_{reason}": n for reason, n in sorted(self.failures.items())})
        return out
