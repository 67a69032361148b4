"""Generation throughput of the OpenAI-compatible client against a local endpoint with fixed
latency, as a fraction of the bound `concurrency / latency` (the best any client can do)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from .openai_compatible import OpenAIBackend, OpenAIConfig
from .protocol import LLMRequest
from .testserver import server_process


@dataclass
class Throughput:
    requests: int
    failed: int
    concurrency: int
    latency_s: float
    seconds: float

    @property
    def rate(self) -> float:
        """Completed requests per second."""
        return (self.requests - self.failed) / self.seconds

    @property
    def bound(self) -> float:
        return self.concurrency / self.latency_s

    @property
    def ratio(self) -> float:
        return self.rate / self.bound

    def as_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "rate": round(self.rate, 2), "bound": round(self.bound, 2),
                "ratio": round(self.ratio, 3)}


def measure_throughput(concurrency: int = 16, latency_s: float = 0.5, rounds: int = 8) -> Throughput:
    """Send `rounds * concurrency` distinct requests (no cache) through `OpenAIBackend` to a local
    test server (in its own process) that takes `latency_s` per reply, and time them."""
    n = rounds * concurrency
    requests = [LLMRequest(messages=[{"role": "user", "content": f"request {i}"}], max_tokens=16) for i in range(n)]
    with server_process(latency_s) as url:
        backend = OpenAIBackend(OpenAIConfig(model="bench", base_url=url, api_key_env=None,
                                             concurrency=concurrency, max_retries=0))
        backend.generate_many_sync([LLMRequest(messages=[{"role": "user", "content": "warm-up"}], max_tokens=1)])
        started = time.perf_counter()  # steady state: imports and the TLS context are loaded
        results = backend.generate_many_sync(requests)
        seconds = time.perf_counter() - started
    return Throughput(requests=n, failed=sum(r.skipped for r in results), concurrency=concurrency,
                      latency_s=latency_s, seconds=seconds)
