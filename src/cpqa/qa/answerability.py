"""Text-only answerability: could a model that only reads the plain transcript (no voices, no
tags) answer the question? An answerer LLM answers each checked item from the transcript, a judge
LLM rates that answer against the reference (0–5, 'Rating: N'), and an item rated at or above the
threshold is `text_answerable`: it does not need the audio. Only types whose answer depends on how
things are said (`needs_audio_cues`) are checked; content questions are answerable from text by
design.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from ..llm import LLMBackend
from ..records import QAItem
from .facts import ClipFacts
from .filters import TEXT_ANSWERABLE, FilterAction, record
from .prompts import judge_request, parse_rating, text_only_request

logger = logging.getLogger(__name__)


@dataclass
class TextOnlyCheck:
    answerer: LLMBackend
    judge: LLMBackend
    prompt_version: str
    action: FilterAction
    threshold: int
    max_tokens: int

    def run(self, targets: list[tuple[QAItem, ClipFacts]]) -> Counter:
        """Check every (item, facts) pair, noting the verdict on the item; returns counters."""
        counts: Counter = Counter()
        if not targets:
            return counts
        answers = self.answerer.generate_many_sync(
            [text_only_request(facts, item.turns, self.prompt_version, self.max_tokens) for item, facts in targets])
        answered = []
        for (item, _), answer in zip(targets, answers):
            counts["text_only/checked"] += 1
            if answer.ok:
                answered.append((item, answer.text.strip()))
            else:
                item.filters["text_only"] = {"error": answer.skip_reason}
                counts["text_only/answer_failed"] += 1
        verdicts = self.judge.generate_many_sync(
            [judge_request(item.turns[-1].question, item.turns[-1].answer, text, self.prompt_version)
             for item, text in answered])
        for (item, text), verdict in zip(answered, verdicts):
            rating = parse_rating(verdict.text) if verdict.ok else None
            item.filters["text_only"] = {"answer": text, "rating": rating}
            if rating is None:
                counts["text_only/unrated"] += 1
                logger.debug("QA %s: judge gave no rating (%s): %r", item.id, verdict.skip_reason, verdict.text[:200])
            elif rating >= self.threshold:
                counts["text_only/answerable"] += 1
                record(item, TEXT_ANSWERABLE, self.action,
                       f"a model reading only the transcript answered it (rated {rating}/5)")
        return counts
