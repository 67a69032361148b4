"""Offline batched generation on GPUs with vLLM (`LLM.chat`), with structured JSON output when a
request has a schema. The engine starts on first use; a whole batch goes to vLLM at once, which
schedules it continuously. A batch vLLM rejects (one prompt too long, say) is retried one request
at a time so only the bad request fails.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, ClassVar

from pydantic import Field

from ..errors import require
from ..reasons import BAD_REQUEST
from ..requirements import Package, Requirement
from .base import LLMBackend, LLMConfig
from .protocol import LLMRequest, LLMResult

logger = logging.getLogger(__name__)

VLLM = Package("vllm", "vllm")
"""vLLM, from its own extra: its exact torch and transformers pins keep it out of `gpu` (docs/gpu.md)."""


class VLLMConfig(LLMConfig):
    non_semantic: ClassVar[frozenset[str]] = LLMConfig.non_semantic | {
        "tensor_parallel_size", "gpu_memory_utilization", "engine_kwargs"}
    model: str = Field(description="A Hugging Face id or local folder, e.g. Qwen/Qwen2.5-7B-Instruct.")
    dtype: str = Field("auto", description="Weights dtype (auto, bfloat16, float16).")
    max_model_len: int | None = Field(None, ge=256, description="Context length; unset: the model's.")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per model replica.")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="Share of GPU memory vLLM may take.")
    trust_remote_code: bool = False
    engine_kwargs: dict[str, Any] = Field(default_factory=dict, description="Passed to vllm.LLM as they are.")
    concurrency: int = Field(256, ge=1, description="Ignored: vLLM schedules the whole batch itself.")

    def requirements(self) -> list[Requirement]:
        return [VLLM]


class VLLMEngine:
    """A `vllm.LLM` built from a config (model, dtype, max_model_len, tensor_parallel_size,
    gpu_memory_utilization, engine_kwargs) on first use, since loading takes minutes, and used by one
    caller at a time: `with engine as llm: ...`. Shared by the text and speech-LLM backends."""

    def __init__(self, config, **extra: Any):
        self.vllm = require(VLLM.module, VLLM.extra)
        self._config = config
        self._extra = extra
        self._llm = None
        self._lock = threading.Lock()

    def __enter__(self):
        self._lock.acquire()
        try:
            if self._llm is None:
                c = self._config
                self._llm = self.vllm.LLM(model=c.model, dtype=c.dtype, max_model_len=c.max_model_len,
                                          tensor_parallel_size=c.tensor_parallel_size,
                                          gpu_memory_utilization=c.gpu_memory_utilization,
                                          **self._extra, **c.engine_kwargs)
        except BaseException:
            self._lock.release()
            raise
        return self._llm

    def __exit__(self, *exc) -> None:
        self._lock.release()

    def close(self) -> None:
        self._llm = None


class VLLMBackend(LLMBackend):
    """Offline batched generation on GPUs with vLLM; structured JSON output from a schema."""

    name: ClassVar[str] = "vllm"
    Config: ClassVar[type[VLLMConfig]] = VLLMConfig
    config: VLLMConfig

    def __init__(self, config: VLLMConfig):
        super().__init__(config)
        self._engine = VLLMEngine(config, trust_remote_code=config.trust_remote_code)

    def _sampling(self, request: LLMRequest):
        params = self._engine.vllm.sampling_params
        kwargs: dict[str, Any] = {"temperature": request.temperature, "max_tokens": request.max_tokens,
                                  "seed": request.seed, "stop": request.stop}
        if request.json_schema is not None:
            if hasattr(params, "StructuredOutputsParams"):  # vLLM >= 0.11
                kwargs["structured_outputs"] = params.StructuredOutputsParams(json=request.json_schema)
            else:
                kwargs["guided_decoding"] = params.GuidedDecodingParams(json=request.json_schema)
        return params.SamplingParams(**kwargs)

    async def _complete_many(self, requests: list[LLMRequest], concurrency: int) -> list[LLMResult]:
        return await asyncio.to_thread(self._complete_all, requests)

    def _complete_all(self, requests: list[LLMRequest]) -> list[LLMResult]:
        with self._engine as llm:
            started = time.perf_counter()
            self.stats.calls += len(requests)
            try:
                outputs = llm.chat([r.messages for r in requests],
                                   sampling_params=[self._sampling(r) for r in requests], use_tqdm=False)
            except ValueError as exc:
                if len(requests) == 1:
                    return [LLMResult.failure(BAD_REQUEST, str(exc), model=self.config.model, attempts=1,
                                              latency_s=time.perf_counter() - started)]
                logger.warning("vLLM rejected a batch of %d (%s); retrying one by one", len(requests), exc)
            else:
                latency_s = time.perf_counter() - started  # the batch finishes together
                return [self._result(output, latency_s) for output in outputs]
        return [result for request in requests for result in self._complete_all([request])]

    def _result(self, output, latency_s: float) -> LLMResult:
        completion = output.outputs[0]
        return LLMResult(
            text=completion.text, finish_reason=completion.finish_reason, model=self.config.model,
            prompt_tokens=len(output.prompt_token_ids or []), completion_tokens=len(completion.token_ids or []),
            latency_s=latency_s, attempts=1,
        )
