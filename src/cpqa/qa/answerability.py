"""Text-only answerability: could a model that only reads the plain transcript (no voices, no
tags) answer the question? An answerer LLM answers each checked item from the transcript, a judge
LLM rates that answer against the reference (0–5, 'Rating: N'), and an item rated at or above the
threshold is `text_answerable`: it does not need the audio. Only types whose answer depends on how
things are said (`needs_audio_cues`) are checked; content questions are answerable from text by
design. The answerer's prompt shares no prefix with the generator's, whose transcript carries the
labels this check must not see; the answerer's requests of one clip share theirs (system prompt and
plain transcript), so the KV cache reads the transcript once per clip.

Direct types (DE, DG, DS) answer with a label (an emotion, a voice gender, a number of speakers),
so with the stage's `claim_words` their text-only answer is rated by rule instead (no judge call,
and steadier than a small judge): 5 when it states the label the reference states and no other of
that kind, read with the label-consistency filter's word lists (emotion and affect words,
gender nouns, speaker counts with number words); 0 otherwise, an answer naming none ("cannot tell
from the transcript") included. An item whose reference states no single label the rules read
goes to the judge. Rule-rated items carry `"judge": "rules"` in `filters.text_only` and count
under `text_only/rule_judged`.

What a text-answerable item gets is the recipe's `qa.filters.text_only.action`:

- `flag`: it stays, with `text_answerable` in `filters.flags`;
- `drop`: it fails the filters (`text_answerable` in `filters.reasons`);
- `retype`: it stays as a content item: its type becomes C, `filters.retyped_from` keeps the
  type it was written as, and `text_answerable` is flagged;
- `off`: nothing is checked.

Counters per type, so `cpqa status` and the report read the share a text-only model answers
without re-reading items (`answerability_rows`): `text_only/asked/<T>` items of type T checked,
`text_only/answered/<T>` of those rated at or above the threshold (before the filter, T the type
written); `text_only/kept/<T>` checked items still passing after the filter and
`text_only/kept_answered/<T>` of those text-answerable (after the filter, T the final type: a
re-typed item counts as C).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from ..llm import LLMBackend
from ..reasons import TEXT_ANSWERABLE
from ..records import QAItem
from .claims import ClaimWords
from .facts import ClipFacts
from .filters import named_labels, record, speaker_counts
from .prompts import judge_request, parse_rating, text_only_request
from .types import DIRECT_TYPES, QA_TYPES, QATypes

logger = logging.getLogger(__name__)

TextOnlyAction = Literal["drop", "flag", "retype", "off"]
RETYPED_TO = "C"
ASKED, ANSWERED, KEPT, KEPT_ANSWERED = (f"text_only/{k}/" for k in ("asked", "answered", "kept", "kept_answered"))


def stated_labels(code: str, text: str, cw: ClaimWords) -> set[str | int]:
    """The labels of type `code`'s kind that `text` states (not negated): emotion labels for DE
    (affect words too, each as the labels it maps to), genders for DG (nouns, not pronouns: "her"
    points to someone, it names no voice), speaker counts for DS (a lone number counts)."""
    if code == "DS":
        return set(speaker_counts(text, cw.vocab))
    lexicon = cw.affect if code == "DE" else cw.gender_nouns
    return {label for labels in named_labels(text, lexicon, cw.vocab) for label in labels}


@dataclass
class TextOnlyCheck:
    answerer: LLMBackend
    judge: LLMBackend
    qa_types: QATypes
    action: TextOnlyAction
    threshold: int
    max_tokens: int
    claim_words: ClaimWords | None = None
    """When set, DE/DG/DS answers are rated by rule (`stated_labels`); else all go to the judge."""

    def run(self, targets: list[tuple[QAItem, ClipFacts]]) -> Counter:
        """Check every (item, facts) pair, noting the verdict on the item; returns counters."""
        counts: Counter = Counter()
        if not targets:
            return counts
        answers = self.answerer.generate_many_sync(
            [text_only_request(facts, item.turns, self.qa_types, self.max_tokens) for item, facts in targets])
        answered = []
        for (item, _), answer in zip(targets, answers):
            counts["text_only/checked"] += 1
            counts[ASKED + item.type] += 1
            if answer.ok:
                answered.append((item, answer.text.strip()))
            else:
                item.filters.text_only = {"error": answer.skip_reason}
                counts["text_only/answer_failed"] += 1
        by_rule = [self._rule_rating(item, text) for item, text in answered]
        to_judge = [pair for pair, ruled in zip(answered, by_rule) if ruled is None]
        verdicts = iter(self.judge.generate_many_sync(
            [judge_request(item.turns[-1].question, item.turns[-1].answer, text, self.qa_types)
             for item, text in to_judge]) if to_judge else [])
        for (item, text), ruled in zip(answered, by_rule):
            if ruled is not None:
                rating, label = ruled
                item.filters.text_only = {"answer": text, "rating": rating, "judge": "rules"}
                counts["text_only/rule_judged"] += 1
                how = f"rated {rating}/5 by rule: the reference states {label}"
            else:
                verdict = next(verdicts)
                rating = parse_rating(verdict.text) if verdict.ok else None
                item.filters.text_only = {"answer": text, "rating": rating}
                how = f"rated {rating}/5"
                if rating is None:
                    logger.debug("QA %s: judge gave no rating (%s): %r", item.id, verdict.skip_reason, verdict.text[:200])
            if rating is None:
                counts["text_only/unrated"] += 1
            elif rating >= self.threshold:
                counts["text_only/answerable"] += 1
                counts[ANSWERED + item.type] += 1
                self._apply(item, f"a model reading only the transcript answered it ({how})")
        for item, _ in targets:
            if item.filters.passed:
                counts[KEPT + item.type] += 1
                counts[KEPT_ANSWERED + item.type] += int(TEXT_ANSWERABLE in item.filters.flags)
        return counts

    def _rule_rating(self, item: QAItem, text: str) -> tuple[int, str] | None:
        """(rating, the reference's label) of a direct item's text-only answer: 5 when it states
        the reference's label and no other, else 0; None (the judge rates it) without claim words,
        for other types, or when the reference states no single label the rules read."""
        if self.claim_words is None or item.type not in DIRECT_TYPES:
            return None
        reference = stated_labels(item.type, item.turns[-1].answer, self.claim_words)
        if len(reference) != 1:
            return None
        rating = 5 if stated_labels(item.type, text, self.claim_words) == reference else 0
        label = next(iter(reference))
        return rating, f"{label} speakers" if item.type == "DS" else str(label)

    def _apply(self, item: QAItem, detail: str) -> None:
        if self.action != "retype":
            record(item, TEXT_ANSWERABLE, self.action, detail)
            return
        record(item, TEXT_ANSWERABLE, "flag", f"{detail}; re-typed {item.type} → {RETYPED_TO}")
        item.filters.retyped_from = item.type
        item.type = RETYPED_TO


def answerability_rows(counters: dict[str, float]) -> list[dict[str, Any]]:
    """Per type (in QA_TYPES order), from a qa stage's counters: items checked and the share a
    text-only model answered, before the filter (`asked`, `answered_share`) and among the checked
    items kept after it (`kept`, `kept_answered_share`; None where none). Types never checked are
    left out."""
    rows = []
    for code in QA_TYPES:
        asked, kept = counters.get(ASKED + code, 0), counters.get(KEPT + code, 0)
        if not asked and not kept:
            continue
        answered, kept_answered = counters.get(ANSWERED + code, 0), counters.get(KEPT_ANSWERED + code, 0)
        rows.append({"type": code, "asked": asked, "answered": answered,
                     "answered_share": answered / asked if asked else None, "kept": kept,
                     "kept_answered": kept_answered, "kept_answered_share": kept_answered / kept if kept else None})
    return rows


ANSWERABILITY_HEADERS = ["type", "checked", "answered from text (before the filter)", "kept after the filter",
                         "of those, answered from text"]
ANSWERABILITY_NOTE = ("Items a model reading only the plain transcript answered correctly (judge rating at or above "
                      "the threshold) do not need the audio. C is answerable from text by design and not checked; "
                      "re-typed items count as C after the filter.")


def answerability_table(rows: list[dict[str, Any]]) -> list[list[str]]:
    """`answerability_rows` as text cells under ANSWERABILITY_HEADERS: 'n (share)', '-' where none."""
    def share(n: float, s: float | None) -> str:
        return "-" if s is None else f"{n:g} ({s:.0%})"

    return [[r["type"], f"{r['asked']:g}", share(r["answered"], r["answered_share"]), f"{r['kept']:g}",
             share(r["kept_answered"], r["kept_answered_share"])] for r in rows]
