"""The LLM layer: one protocol (`LLMRequest` → `LLMResult`), backends by registered name in
`backend_registry("llm")`, a SQLite request cache. Backends are registered by dotted path in
`cpqa.catalog`, so listing them imports neither httpx, llama-cpp nor vLLM.

    llm = backend_registry("llm").get("openai")(OpenAIConfig(model="gpt-4o-mini"))
    results = llm.generate_many_sync([LLMRequest(messages=[{"role": "user", "content": "hi"}])])
"""

from .base import LLMBackend, LLMConfig
from .cache import RequestCache, request_key
from .protocol import LLMRequest, LLMResult, LLMStats

__all__ = ["LLMBackend", "LLMConfig", "LLMRequest", "LLMResult", "LLMStats", "RequestCache", "request_key"]
