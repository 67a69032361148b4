"""Qwen2-Audio (default `Qwen/Qwen2-Audio-7B-Instruct`) through transformers: batched generation
on a GPU in bfloat16 (float16 where the GPU lacks bf16), float32 on CPU.

Each query becomes a chat whose first user turn opens with its audio pieces ("Audio 1: ...") and
the processor's own chat template renders it; prompts are padded on the left so a batch generates
together. A batch that fails (out of memory, say) is retried one query at a time, so only a query
that fails alone is skipped.
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar, Literal

from pydantic import Field

from ..audio.io import SAMPLE_RATE
from ..errors import CPQAError, require
from ..reasons import GENERATION_ERROR
from ..requirements import Package, Requirement
from .protocol import SpeechAnswer, SpeechLLM, SpeechLLMConfig, SpeechQuery

logger = logging.getLogger(__name__)

QWEN2_AUDIO_INSTRUCT = "Qwen/Qwen2-Audio-7B-Instruct"


class Qwen2AudioConfig(SpeechLLMConfig):
    non_semantic: ClassVar[frozenset[str]] = SpeechLLMConfig.non_semantic | {
        "device", "attn_implementation", "local_files_only"}
    model: str = Field(QWEN2_AUDIO_INSTRUCT, description="A Hugging Face id or a local folder.")
    revision: str | None = Field(None, description="A hub revision (branch, tag or commit).")
    device: str = Field("auto", description="auto (cuda when available), cpu, cuda or cuda:N.")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="auto: bfloat16 on GPUs that support it, else float16; float32 on CPU.")
    attn_implementation: str | None = Field(None, description="e.g. sdpa or flash_attention_2; unset: default.")
    local_files_only: bool = Field(False, description="Never download (offline use of a cached model).")

    def requirements(self) -> list[Requirement]:
        return [Package("torch", "gpu"), Package("transformers", "gpu")]


def torch_device(torch, wanted: str, who: str) -> str:
    """`auto` → cuda when torch sees one, else cpu; a cuda device torch cannot see is a CPQAError."""
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        raise CPQAError(f"{who}: device '{wanted}' asked for but torch sees no CUDA device")
    return wanted


def torch_dtype(torch, wanted: str, device: str):
    """`auto` → float32 on CPU, bfloat16 on GPUs that support it, else float16."""
    if wanted != "auto":
        return getattr(torch, wanted)
    if device == "cpu":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def audio_part(index: int) -> dict[str, str]:
    """A placeholder the chat template turns into one audio slot; the samples go to the processor."""
    return {"type": "audio", "audio_url": f"audio-{index + 1}"}


def conversation(query: SpeechQuery, system_prompt: str | None) -> list[dict[str, Any]]:
    """Chat messages with content parts: the audio pieces open the first user turn; earlier turns
    follow as question / reference-answer pairs; the question closes it."""
    messages: list[dict[str, Any]] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    audio = [audio_part(i) for i in range(len(query.audio))]
    for turn in query.history:
        messages.append({"role": "user", "content": [*audio, {"type": "text", "text": turn.question}]})
        messages.append({"role": "assistant", "content": turn.answer})
        audio = []
    messages.append({"role": "user", "content": [*audio, {"type": "text", "text": query.question}]})
    return messages


class Qwen2AudioTransformers(SpeechLLM):
    """Qwen2-Audio-7B-Instruct through transformers (batched; bf16/fp16 on GPU)."""

    name: ClassVar[str] = "qwen2-audio"
    Config: ClassVar[type[Qwen2AudioConfig]] = Qwen2AudioConfig
    window_s: ClassVar[float | None] = 30.0
    config: Qwen2AudioConfig

    def __init__(self, config: Qwen2AudioConfig):
        super().__init__(config)
        self._torch = require("torch", extra="gpu")
        self._transformers = require("transformers", extra="gpu")
        self._model = None
        self._processor = None
        self.device = torch_device(self._torch, config.device, self.name)
        self.dtype = torch_dtype(self._torch, config.dtype, self.device)

    def _load(self):
        if self._model is None:
            tf, c = self._transformers, self.config
            started = time.perf_counter()
            hub = {"revision": c.revision, "local_files_only": c.local_files_only}
            try:
                self._processor = tf.AutoProcessor.from_pretrained(c.model, **hub)
                extra = {"attn_implementation": c.attn_implementation} if c.attn_implementation else {}
                model = tf.Qwen2AudioForConditionalGeneration.from_pretrained(c.model, dtype=self.dtype, **hub, **extra)
            except OSError as exc:
                raise CPQAError(f"cannot load Qwen2-Audio '{c.model}': {exc}") from exc
            self._model = model.to(self.device).eval()
            self._processor.tokenizer.padding_side = "left"
            logger.info("loaded %s on %s (%s) in %.1f s", c.model, self.device, self.dtype, time.perf_counter() - started)
        return self._model, self._processor

    def answer_many(self, queries: list[SpeechQuery]) -> list[SpeechAnswer]:
        self._load()
        answers: list[SpeechAnswer] = []
        for i in range(0, len(queries), self.config.batch_size):
            answers += self._answer_batch(queries[i:i + self.config.batch_size])
        return answers

    def _answer_batch(self, queries: list[SpeechQuery]) -> list[SpeechAnswer]:
        started = time.perf_counter()
        try:
            texts = self._generate(queries)
        except (RuntimeError, ValueError) as exc:  # CUDA OOM is a RuntimeError; processor errors ValueErrors
            if len(queries) > 1:
                logger.warning("qwen2-audio: a batch of %d failed (%s); retrying one by one", len(queries), exc)
                if self.device.startswith("cuda"):
                    self._torch.cuda.empty_cache()
                return [answer for q in queries for answer in self._answer_batch([q])]
            return [SpeechAnswer.failure(GENERATION_ERROR, f"{type(exc).__name__}: {exc}", model=self.config.model,
                                         latency_s=time.perf_counter() - started)]
        latency_s = time.perf_counter() - started  # the batch finishes together
        return [SpeechAnswer(text=t.strip(), model=self.config.model, latency_s=latency_s) for t in texts]

    def _generate(self, queries: list[SpeechQuery]) -> list[str]:
        model, processor = self._model, self._processor
        prompts = [processor.apply_chat_template(conversation(q, self.config.system_prompt),
                                                 add_generation_prompt=True, tokenize=False) for q in queries]
        audio = [piece for q in queries for piece in q.audio]
        inputs = processor(text=prompts, audio=audio, sampling_rate=SAMPLE_RATE, return_tensors="pt", padding=True)
        inputs = inputs.to(self.device)
        inputs["input_features"] = inputs["input_features"].to(self.dtype)
        sampling = ({"do_sample": True, "temperature": self.config.temperature} if self.config.temperature > 0
                    else {"do_sample": False})
        with self._torch.inference_mode():
            output = model.generate(**inputs, max_new_tokens=self.config.max_new_tokens, **sampling)
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        return processor.batch_decode(new_tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def close(self) -> None:
        self._model = self._processor = None
        if self.device.startswith("cuda"):
            self._torch.cuda.empty_cache()
