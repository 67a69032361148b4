"""The LLM layer: one protocol (`LLMRequest` → `LLMResult`), backends by registered name in
`backend_registry("llm")`, a SQLite request cache. Backends are registered by dotted path so
listing them imports neither httpx, llama-cpp nor vLLM.

    llm = backend_registry("llm").get("openai")(OpenAIConfig(model="gpt-4o-mini"))
    results = llm.generate_many_sync([LLMRequest(messages=[{"role": "user", "content": "hi"}])])
"""

from ..registry import backend_registry
from .base import LLMBackend, LLMConfig
from .cache import RequestCache, request_key
from .protocol import LLMRequest, LLMResult, LLMStats

_llm = backend_registry("llm")
_llm.add("openai", "cpqa.llm.openai_compatible:OpenAIBackend", extra="llm",
         description="Any OpenAI-compatible endpoint (OpenAI, Azure, vLLM/SGLang/llama.cpp servers, Ollama)")
_llm.add("llamacpp", "cpqa.llm.llamacpp:LlamaCppBackend", extra="llm",
         description="In-process llama-cpp-python; embedded Qwen2.5-Coder GGUF, offline default")
_llm.add("vllm", "cpqa.llm.vllm_offline:VLLMBackend", extra="vllm",
         description="Offline batched generation on GPUs with vLLM")

__all__ = ["LLMBackend", "LLMConfig", "LLMRequest", "LLMResult", "LLMStats", "RequestCache", "request_key"]
