"""What the reviews add up to: each item's current text, its verdicts and its outcome, and the
run's review statistics.

- The text of an item is its latest edit by anyone (or the generated text): an edit corrects the
  item for everyone, and later reviewers judge the corrected text.
- A reviewer's verdict is their latest decision; an edit counts as an accept.
- An item is accepted when more reviewers accept than reject it; a tie goes to the latest verdict.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..records import QAItem, Turn
from .data import RunData
from .db import ReviewDB
from .kappa import pairwise_kappa


def verdict(action: str) -> str:
    return "reject" if action == "reject" else "accept"


@dataclass
class ItemState:
    generated: QAItem
    current: QAItem
    edit: dict[str, Any] | None
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)
    """reviewer → their latest decision."""

    @property
    def counts(self) -> Counter:
        return Counter(verdict(d["action"]) for d in self.verdicts.values())

    @property
    def accepted(self) -> bool | None:
        """The outcome, or None while nobody has judged the item."""
        if not self.verdicts:
            return None
        counts = self.counts
        if counts["accept"] != counts["reject"]:
            return counts["accept"] > counts["reject"]
        latest = max(self.verdicts.values(), key=lambda d: d["seq"])
        return verdict(latest["action"]) == "accept"


def item_states(data: RunData, db: ReviewDB) -> dict[str, ItemState]:
    """Every generated item of the run with its edits and verdicts applied, in run order."""
    edits = db.latest_edits()
    states = {}
    for qa_id, item in data.qa.items():
        edit = edits.get(qa_id)
        current = item
        if edit is not None:
            current = item.model_copy(update={"type": edit["type"], "turns": [Turn(**t) for t in edit["turns"]]})
        states[qa_id] = ItemState(item, current, edit)
    for reviewer, decisions in db.latest_verdicts().items():
        for qa_id, decision in decisions.items():
            if qa_id in states:  # decisions on items a rebuilt run no longer has are kept but unused
                states[qa_id].verdicts[reviewer] = decision
    return states


def review_stats(data: RunData, db: ReviewDB) -> dict[str, Any]:
    """Progress, each reviewer's counts and pairwise Cohen's kappa (overall and per generated type)."""
    states = item_states(data, db)
    human = db.human()
    outcomes = Counter("undecided" if s.accepted is None else "accepted" if s.accepted else "rejected"
                       for s in states.values())
    per_reviewer: dict[str, Counter] = {}
    for s in states.values():
        for reviewer, d in s.verdicts.items():
            per_reviewer.setdefault(reviewer, Counter())[d["action"]] += 1
    for h in human:
        per_reviewer.setdefault(h["reviewer"], Counter())["human"] += 1
    verdicts = {r: {q: verdict(s.verdicts[r]["action"]) for q, s in states.items() if r in s.verdicts}
                for r in per_reviewer}
    return {
        "clips": len(data.clips),
        "qa": len(states),
        "qa_decided": len(states) - outcomes["undecided"],
        "qa_accepted": outcomes["accepted"],
        "qa_rejected": outcomes["rejected"],
        "qa_edited": sum(1 for s in states.values() if s.edit is not None and s.accepted),
        "human": len(human),
        "clips_with_human": len({h["clip_id"] for h in human}),
        "reviewers": [{"name": r, "accept": c["accept"], "edit": c["edit"], "reject": c["reject"], "human": c["human"]}
                      for r, c in sorted(per_reviewer.items())],
        "kappa": pairwise_kappa(verdicts, {q: s.generated.type for q, s in states.items()}),
    }
