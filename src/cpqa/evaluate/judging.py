"""Judging: an LLM rates each answer against the reference on a versioned rubric, in batches,
with one follow-up for a reply whose rating is not on its final line; replies are cached."""

from __future__ import annotations

from typing import Any

from ..llm.cache import RequestCache
from ..stage import BackendSpec, ProgressHook
from .answering import Outcome
from .judge import RATING_REMINDER, REPAIRABLE, JudgeSettings, Rating, parse_rating
from .units import Unit, cache_key, chunks

JUDGE_BATCH = 64
"""Judge requests per LLM call (and per durable cache write)."""


class Judging:
    def __init__(self, spec: BackendSpec, settings: JudgeSettings, cache: RequestCache):
        self.spec, self.settings, self.cache = spec, settings, cache
        settings_identity = {k: v for k, v in settings.describe().items() if k != "n_runs"}
        self.identity = {"llm": spec.semantic_dict(), **settings_identity}
        self.requests = 0

    def run(self, units: list[Unit], answers: dict[Unit, Outcome], progress: ProgressHook
            ) -> dict[tuple[str, int], list[tuple[Rating, str]]]:
        """(qa_id, turn) → one (rating, raw reply) per run, for every answered unit."""
        jobs = []  # (unit, run, key, request)
        for unit in units:
            outcome = answers[unit]
            if not outcome.answer.ok:
                continue
            requests = self.settings.requests(unit.question, unit.reference, outcome.answer.text, unit.item.qa.type)
            for run, request in enumerate(requests):
                key = cache_key(self.identity, outcome.key, outcome.answer.text, unit.reference, run)
                jobs.append((unit, run, key, request))
        try:
            return self._rate(jobs, progress)
        finally:
            self.cache.close()

    def _rate(self, jobs: list, progress: ProgressHook) -> dict[tuple[str, int], list[tuple[Rating, str]]]:
        replies = self._generate(jobs, progress, "judge")
        # A reply whose rating is not on its final line gets one follow-up asking for that line
        # (small judges often state the rating first); a second miss stays a failure.
        repairs = [(unit, run, cache_key(key, "repair"), request.follow_up(replies[key].text, RATING_REMINDER))
                   for unit, run, key, request in jobs
                   if replies[key].ok and parse_rating(replies[key].text).failure in REPAIRABLE]
        repaired = self._generate(repairs, progress, "judge-repair") if repairs else {}
        repair_of = {(unit.qa_id, unit.turn, run): key for unit, run, key, _ in repairs}
        ratings: dict[tuple[str, int], list[tuple[Rating, str]]] = {}
        for unit, run, key, _ in jobs:
            reply = replies[key]
            rating = parse_rating(reply.text) if reply.ok else Rating(None, f"llm_{reply.skip_reason}")
            text = reply.text
            repair_key = repair_of.get((unit.qa_id, unit.turn, run))
            if repair_key is not None:
                second = repaired[repair_key]
                text = f"{reply.text}\n[asked for the final rating line]\n{second.text}"
                if second.ok and parse_rating(second.text).value is not None:
                    rating = parse_rating(second.text)
            ratings.setdefault((unit.qa_id, unit.turn), []).append((rating, text))
        return ratings

    def _generate(self, jobs: list, progress: ProgressHook, name: str) -> dict[str, Any]:
        """Replies for (unit, run, key, request) jobs: cached ones, then the rest in batches."""
        replies = self.cache.get_many([key for _, _, key, _ in jobs])
        todo = [job for job in jobs if job[2] not in replies]
        progress.stage_started(name, len(jobs), len(jobs) - len(todo))
        backend = None
        try:
            for batch in chunks(todo, JUDGE_BATCH):
                backend = backend or self.spec.build()
                results = backend.generate_many_sync([request for *_, request in batch])
                self.requests += len(batch)
                self.cache.put_many([(key, result) for (_, _, key, _), result in zip(batch, results)])
                replies.update({key: result for (_, _, key, _), result in zip(batch, results)})
                progress.advance(name, len(batch))
        finally:
            if backend is not None:
                backend.close()
        progress.stage_finished(name, {"items_in": len(jobs), "requests": self.requests}, not todo)
        return replies
