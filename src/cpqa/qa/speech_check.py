"""An independent check by ear: a speech-LLM (any `cpqa evaluate` adapter: `qwen2-audio`,
`openai-audio`, the `cascade` baselines) answers each direct question (DE, DG, DS) from the clip's
audio alone, and its answer's label is compared with the reference answer's.

Off unless the recipe names a model (`qa.filters.speech_llm.model`). Only items still passing the
other filters are asked, and only their first turn. The labels are read with the versioned word
lists of `cpqa.qa.filters` (`named_labels`, `speaker_counts`): an emotion or gender word names its
labels, a speaker count its number. The verdict, in `item.filters.speech_llm` with the model's
answer and what it heard:

- `agreed`: the model names a label and every label word it uses fits one the reference names
  (for DS: it states the reference's number of speakers);
- `disagreed`: it names another; the item gets `speech_llm_disagrees` (the recipe's `action`:
  `flag`, the default, or `drop`), its detail quoting the model's answer;
- `unclear`: it names none ("I cannot tell"); not flagged.

What the model hears follows the shared heard-window rule (`cpqa.evaluate.heard`): the whole clip
when it fits `max_audio_s`, else the window holding the item's evidence (`long_audio`); an item
whose evidence cannot be placed is not asked. Answers are cached in `RUN/cache/speechllm.sqlite`,
keyed by the adapter, its options, the question, the audio and the window heard, so a rerun asks
nothing again.

Counters: `speech_llm/asked/<T>` items of type T answered, `speech_llm/agreed/<T>`,
`speech_llm/disagreed/<T>`, `speech_llm/unclear/<T>` of those; `speech_llm/failed/<reason>`
(the adapter or the audio failed), `speech_llm/not_heard/<reason>` (evidence not placed),
`speech_llm/no_reference/<T>` (the reference names no label: nothing to compare). `agreement_rows`
turns them into the agreement rate per type that `cpqa status` shows.
"""

from __future__ import annotations

import logging
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..audio.decode import DecodeError, load_16k_mono
from ..evaluate.audio import hear
from ..evaluate.heard import LongAudio, Placement, evidence_span, place, words_in
from ..evaluate.protocol import SpeechAnswer, SpeechLLM, SpeechQuery
from ..evaluate.units import cache_key
from ..llm import LLMResult
from ..llm.cache import RequestCache
from ..reasons import BACKEND_FAILED, SPEECH_LLM_DISAGREES, audio_error
from ..records import Clip, QAItem, QAType
from ..registry import backend_registry
from ..rundir import resolve_path
from ..stage import BackendSpec, Config, backend_field
from .filters import Vocabulary, named_labels, record, speaker_counts
from .types import DIRECT_TYPES

logger = logging.getLogger(__name__)

PREFIX = "speech_llm/"
ASKED, AGREED, DISAGREED, UNCLEAR = (f"{PREFIX}{k}/" for k in ("asked", "agreed", "disagreed", "unclear"))


class SpeechCheckConfig(Config):
    """The speech-LLM check (see `cpqa.qa.speech_check`)."""

    model: BackendSpec | None = Field(
        None, description="A cpqa evaluate adapter ({name, **options}) answering DE/DG/DS questions from the audio; "
                          "unset: no check.")
    action: Literal["flag", "drop"] = Field("flag", description="What an item the model disagrees with gets.")
    types: list[QAType] = Field(default_factory=lambda: list(DIRECT_TYPES), description="Direct types checked.")
    long_audio: LongAudio = Field("split", description="What the model hears of a clip longer than max_audio_s "
                                                       "(cpqa.evaluate.heard): split, drop or chunk.")
    max_audio_s: float = Field(30.0, gt=0, description="The longest audio heard in one piece.")

    _model = backend_field("speechllm", "model", optional=True)

    @field_validator("types")
    @classmethod
    def _direct_only(cls, types: list[str]) -> list[str]:
        if other := sorted(set(types) - set(DIRECT_TYPES)):
            raise ValueError(f"only the direct types {', '.join(DIRECT_TYPES)} have one label to compare, "
                             f"not {', '.join(other)}")
        return types

    @model_validator(mode="after")
    def _fits_window(self) -> SpeechCheckConfig:
        window = backend_registry("speechllm").get(self.model.name).window_s if self.model else None
        if window is not None and self.max_audio_s > window:
            raise ValueError(f"{self.model.name} hears at most {window:g} s at once; lower max_audio_s or use "
                             "long_audio: chunk")
        return self


def reference_labels(code: str, text: str, vocab: Vocabulary) -> list[frozenset]:
    """The labels an answer to a direct question of type `code` names, one set per occurrence
    (DS: the largest number of speakers it states)."""
    if code == "DS":
        counts = speaker_counts(text, vocab)
        return [frozenset({max(counts)})] if counts else []
    return named_labels(text, vocab.emotions if code == "DE" else vocab.genders, vocab)


def verdict(reference: list[frozenset], said: list[frozenset]) -> str:
    """agreed, disagreed or unclear (see the module docstring)."""
    if not said:
        return "unclear"
    allowed = frozenset().union(*reference)
    return "agreed" if all(labels & allowed for labels in said) else "disagreed"


class SpeechCheck:
    """Asks the configured speech-LLM; a no-op when none is configured."""

    def __init__(self, config: SpeechCheckConfig, run_dir: Path, vocab: Vocabulary):
        self.config, self.run_dir, self.vocab = config, Path(run_dir), vocab
        self.adapter: SpeechLLM | None = None
        self._cache: RequestCache | None = None
        if config.model is not None:
            spec = config.model
            self.identity = {"adapter": spec.name, "version": backend_registry("speechllm").get(spec.name).version,
                             **spec.semantic_dict(), "long_audio": config.long_audio,
                             "max_audio_s": config.max_audio_s}
        self._audio = lru_cache(maxsize=8)(load_16k_mono)

    def run(self, targets: list[tuple[QAItem, Clip]]) -> Counter:
        """Check the direct items among (item, its clip) pairs, noting verdicts on the items."""
        counts: Counter = Counter()
        if self.config.model is None:
            return counts
        asked: list[tuple[QAItem, Clip, list[frozenset], Placement, str]] = []
        for item, clip in targets:
            if item.type not in self.config.types:
                continue
            reference = reference_labels(item.type, item.turns[0].answer, self.vocab)
            if not reference:
                counts[f"{PREFIX}no_reference/{item.type}"] += 1
                continue
            placement = place(clip.end - clip.start, evidence_span(item, clip), self.config.max_audio_s,
                              self.config.long_audio)
            if placement.dropped:
                item.filters.speech_llm = {"not_heard": placement.dropped}
                counts[f"{PREFIX}not_heard/{placement.dropped}"] += 1
                continue
            asked.append((item, clip, reference, placement, self._key(item, clip, placement)))
        answers = self._answers([(item, clip, placement, key) for item, clip, _, placement, key in asked])
        for item, _, reference, _, key in asked:
            self._judge(item, reference, answers[key], counts)
        return counts

    def _judge(self, item: QAItem, reference: list[frozenset], answer: LLMResult, counts: Counter) -> None:
        if not answer.ok:
            item.filters.speech_llm = {"model": answer.model, "error": answer.skip_reason}
            counts[f"{PREFIX}failed/{answer.skip_reason}"] += 1
            return
        said = reference_labels(item.type, answer.text, self.vocab)
        outcome = verdict(reference, said)
        item.filters.speech_llm = {"model": answer.model, "answer": answer.text, "verdict": outcome,
                                      "labels": sorted({str(label) for labels in said for label in labels}),
                                      "heard": answer.parsed}
        counts[ASKED + item.type] += 1
        counts[f"{PREFIX}{outcome}/{item.type}"] += 1
        if outcome == "disagreed":
            record(item, SPEECH_LLM_DISAGREES, self.config.action,
                   f"{answer.model} heard {', '.join(item.filters.speech_llm['labels'])}: {answer.text!r}")

    def _key(self, item: QAItem, clip: Clip, placement: Placement) -> str:
        window = placement.window
        heard = [placement.cut, window.start, window.end] if window is not None else None
        return cache_key(self.identity, item.turns[0].question, clip.audio, heard)

    def _answers(self, jobs: list[tuple[QAItem, Clip, Placement, str]]) -> dict[str, LLMResult]:
        """Key → the model's answer (`parsed`: what it heard): cached ones, then one call for the rest."""
        if not jobs:
            return {}
        if self._cache is None:
            self._cache = RequestCache(self.run_dir / "cache" / "speechllm.sqlite")
        found = self._cache.get_many([key for *_, key in jobs])
        queries: list[tuple[str, SpeechQuery, dict[str, Any]]] = []
        queued: set[str] = set()
        for item, clip, placement, key in jobs:
            if key in found or key in queued:  # the same question of the same audio once
                continue
            queued.add(key)
            try:
                heard = hear(self._audio(str(resolve_path(clip.audio, self.run_dir))), placement,
                             self.config.max_audio_s)
            except DecodeError as exc:
                found[key] = LLMResult.failure(audio_error(exc.reason), str(exc))
                continue
            words = words_in(clip, placement.window) if placement.cut == "window" else clip.words
            queries.append((key, SpeechQuery(unit_id=item.id, audio=heard.pieces, question=item.turns[0].question,
                                             words=words),
                            {"cut": heard.cut, "heard_s": round(heard.heard_s, 3),
                             "start": placement.window.start, "end": placement.window.end}))
        if queries:
            if self.adapter is None:
                self.adapter = self.config.model.build()
            replies = self.adapter.answer_many([query for _, query, _ in queries])
            fresh = [(key, _result(reply, heard)) for (key, _, heard), reply in zip(queries, replies)]
            self._cache.put_many(fresh)
            found.update(fresh)
        return found

    def close(self) -> None:
        if self.adapter is not None:
            self.adapter.close()
        if self._cache is not None:
            self._cache.close()


def _result(answer: SpeechAnswer, heard: dict[str, Any]) -> LLMResult:
    if not answer.ok:
        return LLMResult.failure(answer.skip_reason or BACKEND_FAILED, answer.error or "", model=answer.model)
    return LLMResult(text=answer.text.strip(), model=answer.model, parsed=heard)


def agreement_rows(counters: dict[str, float]) -> list[dict[str, Any]]:
    """Per direct type checked, from a qa stage's counters: items answered, agreed, disagreed,
    unclear, and the agreement rate (agreed / answered)."""
    rows = []
    for code in DIRECT_TYPES:
        asked = counters.get(ASKED + code, 0)
        if asked:
            agreed = counters.get(AGREED + code, 0)
            rows.append({"type": code, "asked": asked, "agreed": agreed,
                         "disagreed": counters.get(DISAGREED + code, 0), "unclear": counters.get(UNCLEAR + code, 0),
                         "agreement": agreed / asked})
    return rows


AGREEMENT_HEADERS = ["type", "answered by ear", "agreed with the reference", "disagreed", "named no label"]


def agreement_table(rows: list[dict[str, Any]]) -> list[list[str]]:
    """`agreement_rows` as text cells under AGREEMENT_HEADERS."""
    return [[r["type"], f"{r['asked']:g}", f"{r['agreed']:g} ({r['agreement']:.0%})", f"{r['disagreed']:g}",
             f"{r['unclear']:g}"] for r in rows]
