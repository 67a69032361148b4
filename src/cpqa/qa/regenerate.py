"""Verify and regenerate: the state of one clip's generation across attempts.

Attempt 1 asks for every slot of the clip the generator writes in one request (direct slots cpqa
phrases itself, `cpqa.qa.direct`, are taken as attempt 1 without a request). An item that fails a check of the item
alone with action `drop` (schema, leakage, label consistency, unsupported claims, wrong type:
`REGENERABLE`) goes back to the generator: the same conversation continued with the model's reply
and a message naming each failed item and its reasons (`regenerate_*.user.j2`), whose schema asks
for the failed slots only. This repeats until every slot passes, the stage's `max_attempts` is
reached, or the generator writes a refused item again word for word (a small model that repeats
itself once, told why, repeats itself again: the attempt would cost a call and change nothing). Checks over several items (near-duplicates) and the text-only answerability check run on
the final items only.

Every attempt is kept in the final item's `generator.attempts`, oldest first:
`{"attempt": k, "turns": [...], "evidence", "passed", "reasons", "details"}`, or
`{"attempt": k, "error": <skip reason>, "detail"}` when the follow-up request failed (the item of
the last good attempt is kept). `generator.attempt` is the attempt the item comes from and
`generator.raw_output` that attempt's reply. A slot still failing after the last attempt is
written dropped, its reasons saying why the clip has no passing item of that type.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..llm import LLMRequest
from ..reasons import (
    ANSWER_IN_QUESTION,
    LABEL_MISMATCH,
    LABEL_UNVERIFIABLE,
    LEAKAGE,
    SCHEMA,
    UNSUPPORTED_CLAIM,
    WRONG_TYPE,
)
from ..records import Clip, QAItem
from .facts import ClipFacts
from .prompts import regeneration_request, reply_budget
from .types import QATypes, Slot

REGENERABLE = frozenset({SCHEMA, LEAKAGE, LABEL_MISMATCH, LABEL_UNVERIFIABLE, ANSWER_IN_QUESTION,
                         UNSUPPORTED_CLAIM, WRONG_TYPE})


@dataclass
class ClipPlan:
    clip: Clip
    facts: ClipFacts
    slots: list[Slot]
    instructions: list[str]
    """What the generator was told to write for each slot."""
    request: LLMRequest | None
    """The request of the next attempt (None: no slot for the generator)."""
    pending: list[int]
    """Slots the next attempt asks for: at first, those the generator writes."""
    items: dict[int, QAItem] = field(default_factory=dict)
    """Slot number → its latest checked item."""

    def take(self, n: int, item: QAItem, attempt: int) -> None:
        """Keep `item` (already checked) as slot n's latest, with every earlier attempt."""
        previous = self.items[n].generator.attempts if n in self.items else []
        item.generator.attempt = attempt
        item.generator.attempts = [*previous, attempt_record(item, attempt)]
        self.items[n] = item

    def failed_request(self, attempt: int, reason: str, detail: str) -> None:
        """A follow-up request failed: note it on the pending items and stop asking."""
        for n in self.pending:
            if n in self.items:
                self.items[n].generator.attempts.append({"attempt": attempt, "error": reason, "detail": detail})
        self.pending = []

    def next_attempt(self, reply: str, qa_types: QATypes, max_tokens_per_turn: int, temperature: float) -> None:
        """Ask again for the slots whose item failed a regenerable check, in this conversation,
        sampling at `temperature`."""
        self.pending = [n for n in self.pending
                        if n in self.items and needs_another(self.items[n]) and not repeated(self.items[n])]
        if self.pending:
            slots = [self.slots[n] for n in self.pending]
            self.request = regeneration_request(
                self.request, reply, [failure(self.items[n], self.instructions[n]) for n in self.pending], slots,
                qa_types, max_tokens=reply_budget(slots, max_tokens_per_turn), temperature=temperature)

    def stop(self) -> None:
        self.pending = []


def needs_another(item: QAItem) -> bool:
    return bool(REGENERABLE & set(item.filters.reasons))


def repeated(item: QAItem) -> bool:
    """The item's latest attempt wrote the same turns as an earlier one."""
    *earlier, latest = item.generator.attempts or [{}]
    return any(a.get("turns") == latest.get("turns") for a in earlier)


def attempt_record(item: QAItem, attempt: int) -> dict:
    filters = item.filters
    return {"attempt": attempt, "turns": [t.model_dump() for t in item.turns], "evidence": item.evidence,
            "passed": filters.passed, "reasons": list(filters.reasons),
            "details": {r: filters.details[r] for r in filters.reasons}}


def failure(item: QAItem, instruction: str) -> dict[str, str]:
    """What the regeneration prompt says of a failed item (and the instruction it was written to)."""
    first = item.turns[0]
    problems = "; ".join(f"{r}: {item.filters.details[r]}" for r in item.filters.reasons if r in REGENERABLE)
    return {"code": item.type, "question": first.question, "answer": first.answer, "problems": problems,
            "instruction": instruction}


def attempt_counts(items: Iterable[QAItem]) -> Counter:
    """`qa/attempts/T` (attempts made for type T's slots), `qa/regenerated/T` (slots asked again),
    `qa/recovered/T` (of those, passing in the end) and `qa/unrecovered/T` (still failing)."""
    counts: Counter = Counter()
    for item in items:
        made = len(item.generator.attempts or [])
        counts[f"qa/attempts/{item.type}"] += made
        if made > 1:
            counts[f"qa/regenerated/{item.type}"] += 1
            counts[f"qa/{'recovered' if item.filters.passed else 'unrecovered'}/{item.type}"] += 1
    return counts
