"""Any OpenAI-compatible chat-completions endpoint: OpenAI, Azure OpenAI, vLLM / SGLang / llama.cpp
servers, Ollama. Async over httpx with bounded concurrency; 429, 5xx, timeouts, dropped
connections and malformed bodies are retried with exponential backoff and jitter (Retry-After
respected). The API key comes from an environment variable and is redacted from every message.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import os
import random
import time
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field

from ..errors import CPQAError, require
from ..reasons import BAD_RESPONSE, CONNECTION, EMPTY_REPLY, REFUSED, TIMEOUT, http_error
from ..requirements import EnvVar, Package, Requirement
from .base import LLMBackend, LLMConfig
from .protocol import LLMRequest, LLMResult

logger = logging.getLogger(__name__)

OPENAI_HOST = "api.openai.com"

CONNECTIONS_PER_CLIENT = 8
RETRYABLE_STATUS = frozenset({408, 409, 425, 429})  # and every 5xx


class OpenAIConfig(LLMConfig):
    non_semantic: ClassVar[frozenset[str]] = LLMConfig.non_semantic | {
        "base_url", "api_key_env", "api_key_header", "query_params", "timeout_s", "max_retries",
        "backoff_base_s", "backoff_max_s",
    }
    base_url: str = Field("https://api.openai.com/v1", description="Endpoint root; `/chat/completions` is appended.")
    api_key_env: str | None = Field(
        "OPENAI_API_KEY", description="Environment variable holding the API key; unset or empty: no key sent."
    )
    api_key_header: str = Field(
        "Authorization", description="`Authorization` sends `Bearer KEY`; any other header (Azure: `api-key`) sends KEY."
    )
    query_params: dict[str, str] = Field(default_factory=dict, description="Added to the URL (Azure: api-version).")
    json_mode: Literal["json_schema", "json_object", "none"] = Field(
        "json_schema", description="How a request's schema is sent: `response_format` json_schema, json_object, or "
        "not at all (for servers that reject it; the output is still validated)."
    )
    strict_schema: bool = Field(False, description="OpenAI strict structured outputs (needs a strict-compatible schema).")
    max_tokens_field: str = Field("max_tokens", description="`max_completion_tokens` for OpenAI reasoning models.")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="Merged into every request body (top_p, ...).")
    concurrency: int = Field(8, ge=1, description="Requests in flight at once.")
    timeout_s: float = Field(60.0, gt=0, description="Per-attempt timeout.")
    max_retries: int = Field(5, ge=0, description="Retries per request after the first attempt.")
    backoff_base_s: float = Field(1.0, ge=0, description="First retry waits about this long; doubles each retry.")
    backoff_max_s: float = Field(60.0, ge=0, description="Longest wait between attempts, Retry-After included.")

    def requirements(self) -> list[Requirement]:
        needs: list[Requirement] = [Package("httpx", "llm")]
        if self.api_key_env and urlsplit(self.base_url).hostname == OPENAI_HOST:  # other servers may take no key
            needs.append(EnvVar(self.api_key_env, f"the OpenAI API ({self.base_url}) needs a key"))
        return needs


class OpenAIBackend(LLMBackend):
    """Any OpenAI-compatible chat-completions endpoint (async, retries, API key from the environment)."""

    name: ClassVar[str] = "openai"
    Config: ClassVar[type[OpenAIConfig]] = OpenAIConfig
    config: OpenAIConfig

    def __init__(self, config: OpenAIConfig):
        super().__init__(config)
        self._httpx = require("httpx", extra="llm")
        self._api_key = os.environ.get(config.api_key_env, "") if config.api_key_env else ""
        self._url = config.base_url.rstrip("/") + "/chat/completions"
        self._ssl_context = None

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    def _headers(self) -> dict[str, str]:
        if not self._api_key:
            return {}
        value = f"Bearer {self._api_key}" if self.config.api_key_header.lower() == "authorization" else self._api_key
        return {self.config.api_key_header: value}

    async def _complete_many(self, requests: list[LLMRequest], concurrency: int) -> list[LLMResult]:
        if not requests:
            return []
        httpx = self._httpx
        workers = min(concurrency, len(requests))
        # httpcore's pool does work quadratic in its size on every event (measured: 64 connections in
        # one pool capped a local client at ~40 requests/s), so the workers share small pools.
        n_clients = -(-workers // CONNECTIONS_PER_CLIENT)
        per_client = -(-workers // n_clients)
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()  # once: loading CA certificates is slow
        results: list[LLMResult | None] = [None] * len(requests)
        pending = iter(enumerate(requests))  # shared: a worker takes the next request when it is free

        async def worker(client) -> None:
            for i, request in pending:
                results[i] = await self._post(client, request)

        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(httpx.AsyncClient(
                    headers=self._headers(), params=self.config.query_params, verify=self._ssl_context,
                    timeout=httpx.Timeout(self.config.timeout_s),
                    limits=httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)))
                for _ in range(n_clients)
            ]
            try:
                async with asyncio.TaskGroup() as group:
                    for w in range(workers):
                        group.create_task(worker(clients[w % n_clients]))
            except ExceptionGroup as errors:  # only a rejected key or a bug gets here; the rest are cancelled
                raise errors.exceptions[0] from None
        return results

    def _body(self, request: LLMRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": request.messages,
            "temperature": request.temperature,
            self.config.max_tokens_field: request.max_tokens,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if request.stop:
            body["stop"] = request.stop
        if request.json_schema is not None and self.config.json_mode == "json_schema":
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "response", "schema": request.json_schema, "strict": self.config.strict_schema}}
        elif request.json_schema is not None and self.config.json_mode == "json_object":
            body["response_format"] = {"type": "json_object"}
        body.update(self.config.extra_body)
        return body

    async def _post(self, client, request: LLMRequest) -> LLMResult:
        httpx = self._httpx
        body = self._body(request)
        started = time.perf_counter()
        attempt = 0
        while True:
            attempt += 1
            self.stats.calls += 1
            retry_after = None
            try:
                response = await client.post(self._url, json=body)
            except httpx.TimeoutException as exc:
                reason, error = TIMEOUT, f"no response within {self.config.timeout_s:g} s ({type(exc).__name__})"
            except httpx.TransportError as exc:
                reason, error = CONNECTION, f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status == 200:
                    try:
                        result = self._parse(response.json())
                    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
                        reason, error = BAD_RESPONSE, f"malformed response body ({exc!r:.120}): {response.text[:200]!r}"
                    else:
                        result.attempts, result.latency_s = attempt, time.perf_counter() - started
                        return result
                elif status in (401, 403):
                    raise CPQAError(self._redact(
                        f"{self._url} rejected the request with HTTP {status}: {response.text[:300]!r}. Check the API "
                        f"key in ${self.config.api_key_env} (config `api_key_env`) and its access to "
                        f"'{self.config.model}'."))
                else:
                    reason, error = http_error(status), f"HTTP {status}: {response.text[:300]!r}"
                    if status < 500 and status not in RETRYABLE_STATUS:  # a request the server will always refuse
                        return self._failure(reason, error, attempt, started)
                    retry_after = _retry_after_s(response.headers)
            if attempt > self.config.max_retries:
                return self._failure(reason, f"{error} (gave up after {attempt} attempts)", attempt, started)
            self.stats.retries += 1
            delay = self._backoff_s(attempt, retry_after)
            logger.debug("LLM request attempt %d failed (%s); retrying in %.2f s", attempt, reason, delay)
            await asyncio.sleep(delay)

    def _parse(self, data: dict[str, Any]) -> LLMResult:
        choice = data["choices"][0]
        message = choice["message"]
        usage = data.get("usage") or {}
        result = LLMResult(
            text=message.get("content") or "",
            finish_reason=choice.get("finish_reason"),
            model=data.get("model") or self.config.model,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )
        if message.get("content") is None:
            result.skipped, result.skip_reason = True, REFUSED if message.get("refusal") else EMPTY_REPLY
            result.error = self._redact(str(message.get("refusal") or "the reply has no content"))
        return result

    def _failure(self, reason: str, error: str, attempts: int, started: float) -> LLMResult:
        return LLMResult.failure(reason, self._redact(error), model=self.config.model, attempts=attempts,
                                 latency_s=time.perf_counter() - started)

    def _backoff_s(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:  # the server said when; a little jitter spreads the herd
            return min(self.config.backoff_max_s, retry_after * random.uniform(1.0, 1.1))
        ceiling = min(self.config.backoff_max_s, self.config.backoff_base_s * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


def _retry_after_s(headers) -> float | None:
    """Seconds from `retry-after-ms`, `Retry-After: <seconds>` or `Retry-After: <HTTP date>`."""
    if value := headers.get("retry-after-ms"):
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if email.utils.parsedate_tz(value) else None
        return None if when is None else max(0.0, when.timestamp() - time.time())
