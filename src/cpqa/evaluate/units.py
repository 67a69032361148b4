"""The unit an evaluation answers and judges: one turn of one QA item, with what the model hears
of its clip; and the cache keys and batches answering and judging share."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..qa_source import EvalItem
from ..records import Turn
from .heard import Placement


@dataclass(eq=False)
class Unit:
    """One turn of one item: the question asked, with the item's earlier turns as history."""

    item: EvalItem
    turn: int
    placement: Placement
    """What the model hears of the item's clip."""

    @property
    def qa_id(self) -> str:
        return self.item.qa.id

    @property
    def question(self) -> str:
        return self.item.qa.turns[self.turn].question

    @property
    def reference(self) -> str:
        return self.item.qa.turns[self.turn].answer

    @property
    def history(self) -> list[Turn]:
        return self.item.qa.turns[:self.turn]


def cache_key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def chunks(seq: list, size: int) -> Iterator[list]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]
