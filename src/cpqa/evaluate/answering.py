"""Answering: the speech-LLM hears each unit's audio and answers its question; answers are cached
by (model identity, item, turn, question, history, audio heard), so a rerun asks nothing again."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..audio.decode import DecodeError, load_16k_mono
from ..llm.cache import RequestCache
from ..llm.protocol import LLMResult
from ..reasons import MISSING_FILE, audio_error
from ..records import ClipWord
from ..stage import BackendSpec, ProgressHook
from .audio import Heard, hear
from .heard import words_in
from .protocol import SpeechAnswer, SpeechQuery
from .units import Unit, cache_key, chunks


@dataclass
class Outcome:
    """What answering one unit gave: a cached or fresh answer, or a failure."""

    answer: SpeechAnswer
    audio: dict[str, Any] | None
    key: str


class Answering:
    def __init__(self, spec: BackendSpec, identity: dict[str, Any], max_audio_s: float,
                 cache: RequestCache):
        self.spec, self.identity, self.cache = spec, identity, cache
        self.max_audio_s = max_audio_s
        self.adapter = None
        self.queries = 0
        self.model_name = spec.name
        self._audio = lru_cache(maxsize=1)(load_16k_mono)  # units are answered in audio order (run)

    def key(self, unit: Unit) -> str:
        history = [t.model_dump() for t in unit.history]
        window = unit.placement.window
        heard = [unit.placement.cut, window.start, window.end] if window is not None else None
        return cache_key(self.identity, unit.qa_id, unit.turn, unit.question, history, unit.item.audio, heard)

    def run(self, units: list[Unit], progress: ProgressHook) -> dict[Unit, Outcome]:
        keys = {u: self.key(u) for u in units}
        cached = self.cache.get_many(list(keys.values()))
        outcomes: dict[Unit, Outcome] = {}
        for u in units:
            if (hit := cached.get(keys[u])) is not None:
                outcomes[u] = Outcome(SpeechAnswer(text=hit.text, model=hit.model), hit.parsed, keys[u])
                self.model_name = hit.model
        # a clip's units together, in whatever order the source lists items: each clip decoded once
        todo = sorted((u for u in units if u not in outcomes), key=lambda u: u.item.audio or "")
        progress.stage_started("answer", len(units), len(units) - len(todo))
        batch_size = getattr(self.spec.options, "batch_size", 8)
        try:
            for batch in chunks(todo, batch_size):
                fresh = self._answer(batch, keys)
                self.cache.put_many([(o.key, LLMResult(text=o.answer.text, model=o.answer.model, parsed=o.audio))
                                     for o in fresh.values() if o.answer.ok])
                outcomes.update(fresh)
                progress.advance("answer", len(batch))
        finally:
            if self.adapter is not None:
                self.adapter.close()
            self.cache.close()
        progress.stage_finished("answer", {"items_in": len(units), "queries": self.queries}, not todo)
        return outcomes

    def _answer(self, batch: list[Unit], keys: dict[Unit, str]) -> dict[Unit, Outcome]:
        outcomes: dict[Unit, Outcome] = {}
        queries: list[tuple[Unit, SpeechQuery, dict[str, Any]]] = []
        for unit in batch:
            try:
                heard = self._heard(unit)
            except DecodeError as exc:
                outcomes[unit] = Outcome(SpeechAnswer.failure(audio_error(exc.reason), str(exc), model=self.model_name), None, keys[unit])
                continue
            audio = {"duration_s": round(heard.duration_s, 3), "heard_s": round(heard.heard_s, 3), "cut": heard.cut,
                     "pieces": len(heard.pieces)}
            query = SpeechQuery(unit_id=f"{unit.qa_id}#{unit.turn}", audio=heard.pieces, question=unit.question,
                                history=unit.history, words=_heard_words(unit))
            queries.append((unit, query, audio))
        if queries:
            if self.adapter is None:
                self.adapter = self.spec.build()
                self.model_name = self.adapter.model_name
            answers = self.adapter.answer_many([q for _, q, _ in queries])
            self.queries += len(queries)
            for (unit, _, audio), answer in zip(queries, answers):
                outcomes[unit] = Outcome(answer, audio, keys[unit])
        return outcomes

    def _heard(self, unit: Unit) -> Heard:
        if unit.item.audio is None:
            raise DecodeError(MISSING_FILE, "(none)", "the QA item names no audio")
        return hear(self._audio(unit.item.audio), unit.placement, self.max_audio_s)


def _heard_words(unit: Unit) -> list[ClipWord] | None:
    """The clip's words in the audio heard; None without a clip record."""
    clip = unit.item.clip
    if clip is None:
        return None
    return words_in(clip, unit.placement.window) if unit.placement.cut == "window" else clip.words
