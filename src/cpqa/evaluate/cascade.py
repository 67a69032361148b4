"""Cascade baselines: speech → text → a text LLM, to isolate what hearing the audio adds.

`cascade` gives the text LLM the transcript only; `cascade-labels` gives it the transcript tagged
with speaker, gender and emotion (`[S1|female|happy] ...`), i.e. the pseudo-labels the QA were
written from. The transcript is the clip's words within the audio the model may hear (same
long-clip policy as the speech-LLMs), or, when the source has no clip records or `transcript:
asr`, an ASR backend's transcript of that audio. Any `cpqa.llm` backend answers.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from ..condense.tagging import speaker_aliases, tagged_transcript
from ..llm.protocol import LLMRequest
from ..reasons import BACKEND_FAILED, NO_LABELS
from ..records import ClipWord
from ..stage import BackendSpec, backend_field
from .judge import template_module
from .protocol import SpeechAnswer, SpeechLLM, SpeechLLMConfig, SpeechQuery

PROMPT = "cascade-v1.j2"


class CascadeConfig(SpeechLLMConfig):
    llm: BackendSpec = Field({"name": "llamacpp"}, description="The text LLM ({name, **options}).")
    asr: BackendSpec = Field({"name": "faster-whisper", "model": "embedded:base", "device": "cpu"},
                             description="ASR for audio without clip words ({name, **options}).")
    transcript: Literal["clip", "asr"] = Field(
        "clip", description="clip: the clip's words where the source has clips, else ASR; asr: always ASR.")
    labels: bool = Field(False, description="Tag the transcript with speaker, gender and emotion.")

    _llm = backend_field("llm", "llm")
    _asr = backend_field("asr", "asr")


class Cascade(SpeechLLM):
    """ASR transcript → text LLM (transcript only): what a model gets without hearing the voice."""

    name: ClassVar[str] = "cascade"
    version: ClassVar[str] = PROMPT
    Config: ClassVar[type[CascadeConfig]] = CascadeConfig
    config: CascadeConfig

    def __init__(self, config: CascadeConfig):
        super().__init__(config)
        self._llm_backend = None
        self._asr_backend = None
        self._asr_text: dict[str, str] = {}

    @property
    def model_name(self) -> str:
        what = "transcript+labels" if self.config.labels else "transcript"
        return f"cascade({what} → {self.config.llm.name}:{self.config.llm.options.model})"

    def answer_many(self, queries: list[SpeechQuery]) -> list[SpeechAnswer]:
        answers: dict[int, SpeechAnswer] = {}
        requests: dict[int, LLMRequest] = {}
        for i, query in enumerate(queries):
            text = self._transcript(query)
            if text is None:
                answers[i] = SpeechAnswer.failure(
                    NO_LABELS, "cascade-labels needs clip records (evaluate a run, or pass clips=RUN)",
                    model=self.model_name)
            else:
                requests[i] = self._request(query, text)
        if requests:
            if self._llm_backend is None:
                self._llm_backend = self.config.llm.build()
            results = self._llm_backend.generate_many_sync(list(requests.values()))
            for i, result in zip(requests, results):
                answers[i] = (SpeechAnswer(text=result.text.strip(), model=self.model_name, latency_s=result.latency_s)
                              if result.ok else SpeechAnswer.failure(result.skip_reason or BACKEND_FAILED,
                                                                     result.error or "", model=self.model_name))
        return [answers[i] for i in range(len(queries))]

    def _transcript(self, query: SpeechQuery) -> str | None:
        """The text the LLM reads; None when labels are asked for and there are no clip words."""
        if query.words is not None and self.config.transcript == "clip":
            words = [w for w in query.words if w.word.strip()]
            return _tagged(words) if self.config.labels else " ".join(w.word.strip() for w in words)
        if self.config.labels:
            return None
        return self._asr(np.concatenate(query.audio) if query.audio else np.zeros(0, dtype=np.float32))

    def _asr(self, audio: np.ndarray) -> str:
        key = hashlib.sha1(audio.tobytes()).hexdigest()
        if key not in self._asr_text:
            if self._asr_backend is None:
                self._asr_backend = self.config.asr.build()
            self._asr_text[key] = self._asr_backend.transcribe(audio).text.strip() if audio.size else ""
        return self._asr_text[key]

    def _request(self, query: SpeechQuery, text: str) -> LLMRequest:
        prompt = template_module(PROMPT)
        labels = self.config.labels
        messages: list[dict[str, Any]] = [{"role": "system", "content": str(prompt.system(labels)).strip()}]
        preamble = str(prompt.transcript(text, labels)).strip() + "\n\n"
        for turn in query.history:
            messages += [{"role": "user", "content": preamble + turn.question},
                         {"role": "assistant", "content": turn.answer}]
            preamble = ""
        messages.append({"role": "user", "content": preamble + query.question})
        return LLMRequest(messages=messages, temperature=self.config.temperature, max_tokens=self.config.max_new_tokens)

    def close(self) -> None:
        if self._llm_backend is not None:
            self._llm_backend.close()


class CascadeLabels(Cascade):
    """ASR transcript tagged with speaker, gender and emotion → text LLM."""

    name: ClassVar[str] = "cascade-labels"

    class Config(CascadeConfig):
        labels: bool = Field(True, description="Tag the transcript with speaker, gender and emotion.")


def _tagged(words: list[ClipWord]) -> str:
    words = [w.model_copy(update={"speaker": w.speaker or "unknown", "gender": w.gender or "unknown",
                                  "emotion": w.emotion or "unknown"}) for w in words]
    return tagged_transcript(words, speaker_aliases(words))
