"""Qwen2-Audio through vLLM's offline engine: the whole batch goes to `LLM.generate` with the audio
as multi-modal data, and vLLM schedules it continuously. The prompt is Qwen2-Audio's chat format
written out (system, then "Audio N: <|audio_bos|><|AUDIO|><|audio_eos|>" per piece in the first
user turn). A batch vLLM rejects is retried one query at a time so only the bad query fails.
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

from pydantic import Field

from ..audio.io import SAMPLE_RATE
from ..llm.vllm_offline import VLLM, VLLMEngine
from ..reasons import BAD_REQUEST
from ..requirements import Requirement
from .protocol import SpeechAnswer, SpeechLLM, SpeechLLMConfig, SpeechQuery
from .qwen2_audio import QWEN2_AUDIO_INSTRUCT, conversation

logger = logging.getLogger(__name__)

DEFAULT_SYSTEM = "You are a helpful assistant."


class Qwen2AudioVLLMConfig(SpeechLLMConfig):
    non_semantic: ClassVar[frozenset[str]] = SpeechLLMConfig.non_semantic | {
        "tensor_parallel_size", "gpu_memory_utilization", "engine_kwargs"}
    model: str = Field(QWEN2_AUDIO_INSTRUCT, description="A Hugging Face id or a local folder.")
    dtype: str = Field("auto", description="Weights dtype (auto, bfloat16, float16).")
    max_model_len: int = Field(4096, ge=512, description="Context length (audio tokens + prompt + answer).")
    max_audio_pieces: int = Field(4, ge=1, description="Audio pieces one prompt may carry (chunked long clips).")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per model replica.")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="Share of GPU memory vLLM may take.")
    engine_kwargs: dict[str, Any] = Field(default_factory=dict, description="Passed to vllm.LLM as they are.")
    batch_size: int = Field(64, ge=1, description="Queries per generate call (vLLM schedules within it).")

    def requirements(self) -> list[Requirement]:
        return [VLLM]


def qwen2_audio_prompt(query: SpeechQuery, system_prompt: str | None) -> str:
    """`conversation()` rendered as Qwen2-Audio's chat template renders it (audio slots numbered
    across the chat), ending with the assistant's turn: vLLM takes the prompt as text."""
    parts, n_audio = [], 0
    for message in conversation(query, system_prompt or DEFAULT_SYSTEM):
        content = message["content"]
        if isinstance(content, list):
            rendered = []
            for part in content:
                if part["type"] == "audio":
                    n_audio += 1
                    rendered.append(f"Audio {n_audio}: <|audio_bos|><|AUDIO|><|audio_eos|>\n")
                else:
                    rendered.append(part["text"])
            content = "".join(rendered)
        parts.append(f"<|im_start|>{message['role']}\n{content}<|im_end|>\n")
    return "".join(parts) + "<|im_start|>assistant\n"


class Qwen2AudioVLLM(SpeechLLM):
    """Qwen2-Audio-7B-Instruct through vLLM's offline engine (GPU)."""

    name: ClassVar[str] = "qwen2-audio-vllm"
    Config: ClassVar[type[Qwen2AudioVLLMConfig]] = Qwen2AudioVLLMConfig
    window_s: ClassVar[float | None] = 30.0
    config: Qwen2AudioVLLMConfig

    def __init__(self, config: Qwen2AudioVLLMConfig):
        super().__init__(config)
        self._engine = VLLMEngine(config, limit_mm_per_prompt={"audio": config.max_audio_pieces})

    def answer_many(self, queries: list[SpeechQuery]) -> list[SpeechAnswer]:
        answers: list[SpeechAnswer] = []
        with self._engine as llm:
            for i in range(0, len(queries), self.config.batch_size):
                answers += self._answer_batch(llm, queries[i:i + self.config.batch_size])
        return answers

    def _answer_batch(self, llm, queries: list[SpeechQuery]) -> list[SpeechAnswer]:
        sampling = self._engine.vllm.SamplingParams(temperature=self.config.temperature, max_tokens=self.config.max_new_tokens)
        inputs = [{"prompt": qwen2_audio_prompt(q, self.config.system_prompt),
                   "multi_modal_data": {"audio": [(piece, SAMPLE_RATE) for piece in q.audio]}} for q in queries]
        started = time.perf_counter()
        try:
            outputs = llm.generate(inputs, sampling_params=sampling, use_tqdm=False)
        except ValueError as exc:
            if len(queries) == 1:
                return [SpeechAnswer.failure(BAD_REQUEST, str(exc), model=self.config.model,
                                             latency_s=time.perf_counter() - started)]
            logger.warning("vLLM rejected a batch of %d (%s); retrying one by one", len(queries), exc)
            return [answer for q in queries for answer in self._answer_batch(llm, [q])]
        latency_s = time.perf_counter() - started
        return [SpeechAnswer(text=o.outputs[0].text.strip(), model=self.config.model, latency_s=latency_s)
                for o in outputs]

    def close(self) -> None:
        self._engine.close()
