"""In-process generation with llama-cpp-python: the embedded offline default.

The model loads on first use (once per backend). Requests run one after another in a worker
thread, since a llama.cpp context decodes one sequence at a time; the cores go to `n_threads`.
A request's schema becomes a grammar through llama-cpp's `response_format`, so the output is
valid JSON by construction (and still validated).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from typing import ClassVar

from pydantic import Field

from ..errors import require
from ..requirements import Package, Requirement
from .base import LLMBackend, LLMConfig
from .embedded import resolve_gguf
from .protocol import LLMRequest, LLMResult

logger = logging.getLogger(__name__)

LLAMA_CPP = Package("llama_cpp", "llm", "llama-cpp-python")


class LlamaCppConfig(LLMConfig):
    non_semantic: ClassVar[frozenset[str]] = LLMConfig.non_semantic | {"n_threads", "n_gpu_layers"}
    model: str = Field("embedded:qwen2.5-coder-1.5b",
                       description="`embedded:qwen2.5-coder-1.5b`, `embedded:qwen2.5-coder-0.5b`, or a .gguf path.")
    n_ctx: int = Field(4096, ge=256, description="Context window in tokens (prompt + reply).")
    n_threads: int | None = Field(None, ge=1, description="CPU threads; unset: all cores.")
    n_gpu_layers: int = Field(0, description="Layers offloaded to a GPU build of llama.cpp (-1: all).")
    chat_format: str | None = Field(None, description="llama-cpp chat format; unset: the GGUF's own template.")
    concurrency: int = Field(1, ge=1, description="Ignored: llama.cpp decodes one request at a time.")

    def requirements(self) -> list[Requirement]:
        return [LLAMA_CPP]


class LlamaCppBackend(LLMBackend):
    """In-process llama-cpp-python with an embedded Qwen2.5-Coder GGUF (offline default)."""

    name: ClassVar[str] = "llamacpp"
    Config: ClassVar[type[LlamaCppConfig]] = LlamaCppConfig
    config: LlamaCppConfig

    def __init__(self, config: LlamaCppConfig):
        super().__init__(config)
        self._llama = None
        self._lock = threading.Lock()  # one llama.cpp context: one request at a time, whatever the caller
        self.load_s: float | None = None

    def _model(self):
        if self._llama is None:
            # llama.cpp's OpenMP workers spin while they wait; on a busy 2-core machine that made 30
            # tokens take 57 s instead of 5.7 s. Read once, when the OpenMP runtime loads.
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            llama_cpp = require(LLAMA_CPP.module, LLAMA_CPP.extra, LLAMA_CPP.package)
            path = resolve_gguf(self.config.model)
            started = time.perf_counter()
            self._llama = llama_cpp.Llama(
                model_path=str(path), n_ctx=self.config.n_ctx, n_threads=self.config.n_threads or os.cpu_count(),
                n_gpu_layers=self.config.n_gpu_layers, chat_format=self.config.chat_format, verbose=False,
            )
            self.load_s = time.perf_counter() - started
            logger.info("loaded %s in %.1f s", path.name, self.load_s)
        return self._llama

    async def _complete_many(self, requests: list[LLMRequest], concurrency: int) -> list[LLMResult]:
        return await asyncio.to_thread(self._complete_all, requests)

    def _complete_all(self, requests: list[LLMRequest]) -> list[LLMResult]:
        with self._lock:
            llama = self._model()
            return [self._complete(llama, request) for request in requests]

    def _complete(self, llama, request: LLMRequest) -> LLMResult:
        kwargs = {"messages": request.messages, "temperature": request.temperature,
                  "max_tokens": request.max_tokens, "stop": request.stop or None, "seed": request.seed}
        if request.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
        started = time.perf_counter()
        self.stats.calls += 1
        try:
            out = llama.create_chat_completion(**kwargs)
        except ValueError as exc:  # llama-cpp's error for a prompt longer than the context
            reason = "context_length" if "context" in str(exc) else "bad_request"
            return LLMResult.failure(reason, str(exc), model=self.config.model, attempts=1,
                                     latency_s=time.perf_counter() - started)
        choice, usage = out["choices"][0], out.get("usage") or {}
        return LLMResult(
            text=choice["message"].get("content") or "", finish_reason=choice.get("finish_reason"),
            model=self.config.model, prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0), latency_s=time.perf_counter() - started,
            attempts=1,
        )

    def close(self) -> None:
        with self._lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None
        super().close()
