"""The LLM side of the type check, where a recipe configures it (`filters.type_judge`): the stage's
judge backend rates how well an item's first turn tests what its type says (0–5, 'Rating: N',
read by `prompts.parse_rating`), for the types the rules cannot settle (by default EMP: does the
reply fit how the speaker sounds). It runs on the items the rule-based checks passed, within each
generation attempt, so a low rating goes back to the generator like any other `wrong_type`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..llm import LLMBackend
from ..reasons import WRONG_TYPE
from ..records import QAItem
from .facts import ClipFacts
from .filters import FilterAction, record
from .prompts import parse_rating, type_judge_request
from .types import QATypes


@dataclass
class TypeJudge:
    judge: LLMBackend
    qa_types: QATypes
    types: frozenset[str]
    threshold: int
    action: FilterAction

    def run(self, targets: list[tuple[QAItem, ClipFacts, str]]) -> Counter:
        """Rate the passing items of the judged types, each (item, its clip's facts, the
        instruction its generator had), noting each verdict on the item."""
        counts: Counter = Counter()
        targets = [t for t in targets if t[0].type in self.types and t[0].filters.passed]
        if self.action == "off" or not targets:
            return counts
        verdicts = self.judge.generate_many_sync([
            type_judge_request(facts, self.qa_types.types[item.type], item.turns[0], instruction, self.qa_types)
            for item, facts, instruction in targets])
        for (item, _, _), verdict in zip(targets, verdicts):
            rating = parse_rating(verdict.text) if verdict.ok else None
            item.filters.type_judge = {"rating": rating}
            counts[f"type_judge/{'unrated' if rating is None else 'rated'}"] += 1
            if rating is not None and rating < self.threshold:
                counts["type_judge/below_threshold"] += 1
                record(item, WRONG_TYPE, self.action, f"the judge rated it {rating}/5 as {self.qa_types.types[item.type].name}")
        return counts
