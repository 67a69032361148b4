"""In-process generation with llama-cpp-python: the embedded offline default.

The model loads on first use (once per backend). Requests run one after another in a worker
thread, since a llama.cpp context decodes one sequence at a time; the cores go to `n_threads`.
A request's schema becomes a grammar through llama-cpp's `response_format`, so the output is
valid JSON by construction (and still validated).

Prompt tokens cost most on a CPU (a clip's transcript and instructions are read by every request
about it), so the backend reuses KV caches: requests of one call run in the order that puts
common prefixes next to each other, and the KV states of recent prompts are kept
(`prefix_cache_mb`, see `prefix_states`), so a request evaluates only the tokens after the longest
prefix it shares with any of them. `LLMResult.prompt_tokens_reused` counts what was skipped.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import threading
import time
from collections import OrderedDict
from functools import lru_cache
from typing import ClassVar

from pydantic import Field

from ..errors import require
from ..reasons import BAD_REQUEST, CONTEXT_LENGTH
from ..requirements import Package, Requirement
from .base import LLMBackend, LLMConfig
from .embedded import resolve_gguf
from .grammar_sampler import GrammarCheckSampler
from .prefix_states import PrefixStates, SavedPrefix
from .protocol import LLMRequest, LLMResult

logger = logging.getLogger(__name__)

LLAMA_CPP = Package("llama_cpp", "llm", "llama-cpp-python")


class LlamaCppConfig(LLMConfig):
    non_semantic: ClassVar[frozenset[str]] = LLMConfig.non_semantic | {"n_threads", "n_gpu_layers", "prefix_cache_mb",
                                                                    "grammar_check_first"}
    model: str = Field("embedded:qwen2.5-coder-1.5b",
                       description="`embedded:qwen2.5-coder-1.5b`, `embedded:qwen2.5-coder-0.5b`, or a .gguf path.")
    n_ctx: int = Field(4096, ge=256, description="Context window in tokens (prompt + reply).")
    n_threads: int | None = Field(None, ge=1, description="CPU threads; unset: all cores.")
    n_gpu_layers: int = Field(0, description="Layers offloaded to a GPU build of llama.cpp (-1: all).")
    chat_format: str | None = Field(None, description="llama-cpp chat format; unset: the GGUF's own template.")
    concurrency: int = Field(1, ge=1, description="Ignored: llama.cpp decodes one request at a time.")
    prefix_cache_mb: int = Field(
        256, ge=0, description="RAM for the KV states of recent prompts, so requests sharing a prefix (one clip's "
        "generation and checks) evaluate it once; requests are also ordered by prefix, and a follow-up quoting a "
        "reply reuses the reply's tokens. 0: off (only the last prompt's KV cache is reused, in the caller's order).")
    grammar_check_first: bool = Field(
        True, description="Under a JSON schema, check the grammar against the chosen token only and the whole "
        "vocabulary only when it rejects it (greedy: the same tokens); false: llama-cpp-python's stock sampler chain.")

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
        self._lib = None
        """The `llama_cpp` module, imported with the model."""
        self._lock = threading.Lock()  # one llama.cpp context: one request at a time, whatever the caller
        self.load_s: float | None = None
        self.prefix_states: PrefixStates | None = None

    def _model(self):
        if self._llama is None:
            # llama.cpp's OpenMP workers spin while they wait; on a busy 2-core machine that made 30
            # tokens take 57 s instead of 5.7 s. Read once, when the OpenMP runtime loads.
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            self._lib = require(LLAMA_CPP.module, LLAMA_CPP.extra, LLAMA_CPP.package)
            path = resolve_gguf(self.config.model)
            started = time.perf_counter()
            self._llama = _llama_class(self._lib)(
                model_path=str(path), n_ctx=self.config.n_ctx, n_threads=self.config.n_threads or os.cpu_count(),
                n_gpu_layers=self.config.n_gpu_layers, chat_format=self.config.chat_format, verbose=False,
            )
            self.load_s = time.perf_counter() - started
            self._llama.grammar_check_first = self.config.grammar_check_first
            if self.config.prefix_cache_mb:
                self.prefix_states = PrefixStates(self.config.prefix_cache_mb << 20)
                self._llama.set_cache(self.prefix_states)
            logger.info("loaded %s in %.1f s", path.name, self.load_s)
        return self._llama

    async def _complete_many(self, requests: list[LLMRequest], concurrency: int) -> list[LLMResult]:
        return await asyncio.to_thread(self._complete_all, requests)

    def _complete_all(self, requests: list[LLMRequest]) -> list[LLMResult]:
        with self._lock:
            llama = self._model()
            order = range(len(requests))
            if self.config.prefix_cache_mb:
                order = sorted(order, key=lambda i: prefix_order_key(requests[i]))
            results: dict[int, LLMResult] = {i: self._complete(llama, requests[i]) for i in order}
            return [results[i] for i in range(len(requests))]

    def _complete(self, llama, request: LLMRequest) -> LLMResult:
        kwargs = {"messages": request.messages, "temperature": request.temperature,
                  "max_tokens": request.max_tokens, "stop": request.stop or None, "seed": request.seed}
        if request.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
        started = time.perf_counter()
        self.stats.calls += 1
        self._lib.llama_perf_context_reset(llama._ctx.ctx)
        try:
            out = llama.create_chat_completion(**kwargs)
        except ValueError as exc:  # llama-cpp's error for a prompt longer than the context
            reason = CONTEXT_LENGTH if "context" in str(exc) else BAD_REQUEST
            return LLMResult.failure(reason, str(exc), model=self.config.model, attempts=1,
                                     latency_s=time.perf_counter() - started)
        choice, usage = out["choices"][0], out.get("usage") or {}
        prompt_tokens = usage.get("prompt_tokens", 0)
        text = choice["message"].get("content") or ""
        if self.config.prefix_cache_mb and choice.get("finish_reason") == "stop" and llama.n_tokens > prompt_tokens:
            llama.remember_reply(text.encode("utf-8"), llama.input_ids[prompt_tokens:llama.n_tokens].tolist())
        perf = self._lib.llama_perf_context(llama._ctx.ctx)  # llama.cpp's own counts and times
        evaluated = perf.n_p_eval
        logger.debug("llama.cpp: %d prompt tokens (%d evaluated in %.1f s), %d completion tokens (%d decoded in "
                     "%.1f s), %.1f s in all", prompt_tokens, evaluated, perf.t_p_eval_ms / 1000,
                     usage.get("completion_tokens", 0), perf.n_eval, perf.t_eval_ms / 1000, time.perf_counter() - started)
        return LLMResult(
            text=text, finish_reason=choice.get("finish_reason"),
            model=self.config.model, prompt_tokens=prompt_tokens,
            prompt_tokens_reused=max(0, prompt_tokens - evaluated),
            completion_tokens=usage.get("completion_tokens", 0), latency_s=time.perf_counter() - started,
            attempts=1,
        )

    def close(self) -> None:
        with self._lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None
        super().close()


def prefix_order_key(request: LLMRequest) -> str:
    """Sorting requests by their messages puts those with a common prefix next to each other."""
    return "\x00".join(f"{m['role']}\x01{m['content']}" for m in request.messages)


@lru_cache(maxsize=1)
def _llama_class(llama_cpp):
    """`llama_cpp.Llama` with three changes. Its saved states (`Llama.cache`) hold only the KV cells
    of its sequence: the stock `save_state` also copies the logits buffer (n_batch × vocabulary
    floats, 300 MB for Qwen2.5), which sampling no longer reads; restoring the KV cells and the
    token history is enough, since `generate` re-evaluates at least the prompt's last token. And
    requests with a grammar (JSON schema) check the chosen token first instead of the whole
    vocabulary (`GrammarCheckSampler`; greedy: with the same result). Third, `tokenize` gives a
    recent reply quoted in a prompt its generated tokens back (`remember_reply`)."""

    class FastLlama(llama_cpp.Llama):
        grammar_check_first = True

        def __init__(self, *args, **kwargs):
            self.replies: OrderedDict[bytes, list[int]] = OrderedDict()
            """Recent replies (text → the tokens generated for it): a follow-up that quotes one gets
            those tokens back from `tokenize`, so its prompt continues the KV cache of the reply
            instead of diverging where a re-tokenisation of the reply would (grammar-constrained
            output is rarely tokenised the canonical way)."""
            super().__init__(*args, **kwargs)

        def remember_reply(self, text: bytes, tokens: list[int]) -> None:
            if len(text) < 16 or self.detokenize(tokens) != text:
                return
            self.replies[text] = tokens
            self.replies.move_to_end(text)
            while len(self.replies) > 32:
                self.replies.popitem(last=False)

        def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
            quoted = [reply for reply in self.replies if reply in text]
            if not quoted:
                return super().tokenize(text, add_bos, special)
            reply = max(quoted, key=len)
            at = text.index(reply)
            return (super().tokenize(text[:at], add_bos, special) + self.replies[reply]
                    + self.tokenize(text[at + len(reply):], False, special))

        def save_state(self) -> SavedPrefix:
            ctx = self._ctx.ctx
            size = llama_cpp.llama_state_seq_get_size(ctx, 0)
            buffer = (ctypes.c_uint8 * size)()
            written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
            return SavedPrefix(input_ids=self.input_ids[:self.n_tokens].copy(), kv=buffer, size=int(written))

        def load_state(self, state) -> None:
            if not isinstance(state, SavedPrefix):
                return super().load_state(state)
            self._ctx.kv_cache_seq_rm(-1, 0, -1)
            if llama_cpp.llama_state_seq_set_data(self._ctx.ctx, state.kv, state.size, 0) == 0:
                self.n_tokens = 0
                raise RuntimeError("llama.cpp could not load a saved KV state")
            n = len(state.input_ids)
            self.input_ids[:n] = state.input_ids
            self.n_tokens = n
            self._requires_eval = True  # no seed restored: the next seed never depends on which state loaded

        def _init_sampler(self, **kwargs):
            grammar = kwargs.pop("grammar", None)
            if grammar is None or not self.grammar_check_first or kwargs.get("logits_processor") is not None:
                return super()._init_sampler(grammar=grammar, **kwargs)
            chain = None if kwargs.get("temp", 0.8) == 0.0 else super()._init_sampler(grammar=None, **kwargs)
            return GrammarCheckSampler(llama_cpp, self._model.vocab, grammar, self._n_vocab, chain)

    return FastLlama
