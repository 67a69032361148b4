"""What every LLM backend shares: the request cache, output validation with one repair and one
retry, deduplication of identical requests, and counters. A backend only implements
`_complete_many` (send each request once, transport retries included)."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from pydantic import Field

from ..reasons import INVALID_OUTPUT
from ..stage import Config
from .cache import RequestCache, request_key
from .jsonout import check_output, check_schema
from .protocol import LLMRequest, LLMResult, LLMStats

logger = logging.getLogger(__name__)


class LLMConfig(Config):
    """Options common to every LLM backend."""

    non_semantic: ClassVar[frozenset[str]] = frozenset({"concurrency", "cache_path"})
    model: str = Field(description="The model: a name the backend knows, a path, or `embedded:NAME`.")
    concurrency: int = Field(4, ge=1, description="Requests in flight at once (where the backend overlaps them).")
    cache_path: str | None = Field(
        None, description="SQLite file of the request cache; unset: no cache unless the caller attaches one."
    )


class LLMBackend:
    """Base of LLM backends (capability 'llm'). Construct with the backend's `Config`."""

    name: ClassVar[str]
    """The registered name; it enters the cache key."""
    Config: ClassVar[type[LLMConfig]] = LLMConfig

    def __init__(self, config: LLMConfig):
        self.config = config
        self.stats = LLMStats()
        self.cache: RequestCache | None = RequestCache(config.cache_path) if config.cache_path else None

    @property
    def model_name(self) -> str:
        return self.config.model

    def identity(self) -> dict[str, Any]:
        """What besides the request decides the output: backend name and semantic options."""
        return {"backend": self.name, **self.config.semantic_dict()}

    async def generate_many(self, requests: list[LLMRequest], concurrency: int | None = None) -> list[LLMResult]:
        """One result per request, in order. Cached results come back without a backend call;
        identical requests are sent once (vary `seed` to sample several answers)."""
        started = time.perf_counter()
        for request in requests:
            if request.json_schema is not None:
                check_schema(request.json_schema)
        identity = self.identity()
        keys = [request_key(identity, r) for r in requests]
        done = self.cache.get_many(keys) if self.cache is not None else {}
        self.stats.requests += len(requests)
        self.stats.cache_hits += sum(key in done for key in keys)
        todo = {key: request for key, request in zip(keys, requests) if key not in done}
        if todo:
            fresh = await self._generate_validated(list(todo.values()), concurrency or self.config.concurrency)
            done.update(zip(todo, fresh))
            if self.cache is not None:
                self.cache.put_many(list(zip(todo, fresh)))
        self.stats.wall_s += time.perf_counter() - started
        return [copy.deepcopy(done[key]) for key in keys]  # duplicates must not share a parsed dict

    def generate_many_sync(self, requests: list[LLMRequest], concurrency: int | None = None) -> list[LLMResult]:
        """`generate_many` for synchronous callers (stages)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.generate_many(requests, concurrency))
        # Called from inside an event loop (a notebook, an async caller): use a private loop.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, self.generate_many(requests, concurrency)).result()

    async def _generate_validated(self, requests: list[LLMRequest], concurrency: int) -> list[LLMResult]:
        results = [self._validated(r, res) for r, res in zip(requests, await self._complete_many(requests, concurrency))]
        invalid = [i for i, res in enumerate(results) if res.skip_reason == INVALID_OUTPUT]
        if invalid:
            self.stats.retries += len(invalid)
            second = await self._complete_many([_correction(requests[i], results[i]) for i in invalid], concurrency)
            for i, again in zip(invalid, second):
                results[i] = _merged(results[i], self._validated(requests[i], again))
        for result in results:
            self.stats.add(result)
            if result.skipped:
                logger.warning("LLM request failed (%s): %s", result.skip_reason, result.error)
        return results

    @staticmethod
    def _validated(request: LLMRequest, result: LLMResult) -> LLMResult:
        if result.skipped or request.json_schema is None:
            return result
        checked = check_output(result.text, request.json_schema)
        if checked.error is not None:
            result.skipped, result.skip_reason, result.error = True, INVALID_OUTPUT, checked.error
        else:
            result.parsed, result.repaired = checked.parsed, checked.repaired
        return result

    async def _complete_many(self, requests: list[LLMRequest], concurrency: int) -> list[LLMResult]:
        """Send each request (at most `concurrency` at once where the backend overlaps them) and
        return its raw result: text, tokens, latency, attempts; transport failures recorded."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the model or connections and the cache."""
        if self.cache is not None:
            self.cache.close()


def _correction(request: LLMRequest, bad: LLMResult) -> LLMRequest:
    """The retry of an invalid output: the same conversation plus the bad reply and what is wrong."""
    feedback = (f"That reply is not valid ({bad.error}). Reply again with only the JSON object, "
                "following the schema exactly.")
    return request.follow_up(bad.text, feedback, max_tokens=request.max_tokens)


def _merged(first: LLMResult, second: LLMResult) -> LLMResult:
    """The retry's result, with the cost of both attempts."""
    second.attempts += first.attempts
    second.prompt_tokens += first.prompt_tokens
    second.completion_tokens += first.completion_tokens
    second.prompt_tokens_reused += first.prompt_tokens_reused
    second.latency_s += first.latency_s
    if second.skipped and not second.text:
        second.text = first.text  # keep the raw output we did get
    return second
