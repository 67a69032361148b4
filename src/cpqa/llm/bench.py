"""Throughput references for `make bench`: the OpenAI-compatible client against a local endpoint
with fixed latency, as a fraction of the bound `concurrency / latency` (the best any client can
do); and llama.cpp's own prompt and generation tokens/s for a model, against which the QA stage's
tokens/s are set (`benchmarks/qa_speed.py`)."""

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


@dataclass
class EngineRates:
    """llama.cpp's own throughput for one model and context size, measured the way llama-bench
    does: one batch of `n_prompt` tokens (prompt processing), then `n_gen` single-token decodes
    (generation); no sampling, no grammar, no Python beyond the calls."""

    model: str
    n_ctx: int
    n_prompt: int
    n_gen: int
    prompt_tokens_per_s: float
    gen_tokens_per_s: float

    def seconds(self, prompt_tokens: int, completion_tokens: int) -> float:
        """What llama.cpp itself needs to read `prompt_tokens` and write `completion_tokens`."""
        return prompt_tokens / self.prompt_tokens_per_s + completion_tokens / self.gen_tokens_per_s

    def as_dict(self) -> dict[str, float | int | str]:
        return {**asdict(self), "prompt_tokens_per_s": round(self.prompt_tokens_per_s, 2),
                "gen_tokens_per_s": round(self.gen_tokens_per_s, 2)}


def engine_rates(model: str, n_ctx: int, n_threads: int | None = None, n_prompt: int = 256,
                 n_gen: int = 32) -> EngineRates:
    """llama.cpp's prompt and generation tokens/s for `model` (as `LlamaCppConfig.model` names it)."""
    from .llamacpp import LlamaCppBackend, LlamaCppConfig

    backend = LlamaCppBackend(LlamaCppConfig(model=model, n_ctx=n_ctx, n_threads=n_threads, prefix_cache_mb=0))
    try:
        llama = backend._model()
        tokens = llama.tokenize(("The speakers discuss the remote control design and its budget. " * 64).encode())
        prompt = tokens[:n_prompt]
        llama.reset()
        started = time.perf_counter()
        llama.eval(prompt)
        prompt_s = time.perf_counter() - started
        started = time.perf_counter()
        for token in tokens[n_prompt:n_prompt + n_gen]:
            llama.eval([token])
        gen_s = time.perf_counter() - started
    finally:
        backend.close()
    return EngineRates(model=model, n_ctx=n_ctx, n_prompt=len(prompt), n_gen=n_gen,
                       prompt_tokens_per_s=len(prompt) / prompt_s, gen_tokens_per_s=n_gen / gen_s)
