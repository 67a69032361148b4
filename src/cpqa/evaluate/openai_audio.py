"""Any OpenAI-compatible chat-completions endpoint that takes audio as `input_audio` content parts
(base64 WAV): gpt-4o-audio models, vLLM or SGLang serving Qwen2-Audio, and the like.

The transport is the LLM layer's OpenAI client (bounded concurrency, retries with backoff on 429,
5xx, timeouts and dropped connections, the API key from the environment and redacted); this module
only puts the audio parts into the first user message of each request.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field

from ..llm.openai_compatible import OpenAIBackend, OpenAIConfig
from ..llm.protocol import LLMRequest
from ..reasons import BACKEND_FAILED
from .audio import wav_bytes
from .protocol import SpeechAnswer, SpeechLLM, SpeechLLMConfig, SpeechQuery


class OpenAIAudioConfig(SpeechLLMConfig, OpenAIConfig):
    non_semantic: ClassVar[frozenset[str]] = SpeechLLMConfig.non_semantic | OpenAIConfig.non_semantic
    model: str = Field("gpt-4o-audio-preview", description="The model name the endpoint serves.")
    batch_size: int = Field(64, ge=1, description="Queries handed over at once (`concurrency` of them in flight).")


@dataclass(frozen=True)
class AudioChatRequest(LLMRequest):
    """A chat request whose first user message also carries audio (base64 WAV strings)."""

    audio: tuple[str, ...] = ()

    def params(self) -> dict[str, Any]:
        """The audio enters the request's identity, so two clips with the same question differ."""
        return {**super().params(), "audio_sha256": [hashlib.sha256(a.encode()).hexdigest() for a in self.audio]}


class _AudioChatBackend(OpenAIBackend):
    def _body(self, request: LLMRequest) -> dict[str, Any]:
        body = super()._body(request)
        if isinstance(request, AudioChatRequest) and request.audio:
            messages = [dict(m) for m in body["messages"]]
            first = next(i for i, m in enumerate(messages) if m["role"] == "user")
            parts = [{"type": "input_audio", "input_audio": {"data": a, "format": "wav"}} for a in request.audio]
            messages[first]["content"] = [*parts, {"type": "text", "text": messages[first]["content"]}]
            body["messages"] = messages
        return body


class OpenAIAudio(SpeechLLM):
    """Any OpenAI-compatible endpoint accepting `input_audio` parts (gpt-4o-audio, vLLM/SGLang servers)."""

    name: ClassVar[str] = "openai-audio"
    Config: ClassVar[type[OpenAIAudioConfig]] = OpenAIAudioConfig
    config: OpenAIAudioConfig

    def __init__(self, config: OpenAIAudioConfig):
        super().__init__(config)
        endpoint = {name: getattr(config, name) for name in OpenAIConfig.model_fields}
        self._client = _AudioChatBackend(OpenAIConfig(**{**endpoint, "json_mode": "none", "cache_path": None}))

    def answer_many(self, queries: list[SpeechQuery]) -> list[SpeechAnswer]:
        requests = [self._request(q) for q in queries]
        results = self._client.generate_many_sync(requests)
        return [SpeechAnswer(text=r.text.strip(), model=r.model or self.config.model, latency_s=r.latency_s) if r.ok
                else SpeechAnswer.failure(r.skip_reason or BACKEND_FAILED, r.error or "", model=self.config.model,
                                          latency_s=r.latency_s)
                for r in results]

    def _request(self, query: SpeechQuery) -> AudioChatRequest:
        messages = [{"role": "system", "content": self.config.system_prompt}] if self.config.system_prompt else []
        for turn in query.history:
            messages += [{"role": "user", "content": turn.question}, {"role": "assistant", "content": turn.answer}]
        messages.append({"role": "user", "content": query.question})
        audio = tuple(base64.b64encode(wav_bytes(piece)).decode() for piece in query.audio)
        return AudioChatRequest(messages=messages, temperature=self.config.temperature,
                                max_tokens=self.config.max_new_tokens, audio=audio)

    def close(self) -> None:
        self._client.close()
