"""Scores from judge ratings, at every level the results report.

- a unit (one turn of one item): the mean of its successful ratings × 20 (0–100); no rating, no score;
- an item: the mean of its turns' scores;
- a group (a question type, an emotion): the mean of its items' scores;
- the overall score: the mean over items; UAS: the mean over question types of their scores, each
  type weighted equally (CP-Bench);
- success rate: judge runs that gave a rating / judge runs made, beside every score.
Units whose answer failed (audio unreadable, endpoint down) are counted apart and never scored.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

SCALE = 20.0
"""A 0–5 rating × 20 = a 0–100 score."""


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def unit_score(ratings: list[int]) -> float | None:
    m = mean([float(r) for r in ratings])
    return None if m is None else m * SCALE


def item_results(units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per item (in first-seen order) from its units (the `predictions.jsonl` rows)."""
    by_item: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for unit in units:
        by_item[unit["qa_id"]].append(unit)
    rows = []
    for qa_id, turns in by_item.items():
        turns.sort(key=lambda u: u["turn"])
        judged = [u["judge"] for u in turns if u.get("judge")]
        scores = [j["score"] for j in judged if j["score"] is not None]
        first = turns[0]
        rows.append({
            "qa_id": qa_id, "clip_id": first["clip_id"], "type": first["type"], "emotion": first["emotion"],
            "score": mean(scores), "turn_scores": [u["judge"]["score"] if u.get("judge") else None for u in turns],
            "judge_runs": sum(j["runs"] for j in judged), "ratings": sum(len(j["ratings"]) for j in judged),
            "answered": all(not u["skipped"] for u in turns),
        })
    return rows


def _group(items: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        groups[item[key]].append(item)
    return {name: _block(members) for name, members in sorted(groups.items())}


def _block(items: list[dict[str, Any]]) -> dict[str, Any]:
    runs = sum(i["judge_runs"] for i in items)
    return {"score": mean([i["score"] for i in items if i["score"] is not None]), "n_items": len(items),
            "n_scored": sum(i["score"] is not None for i in items),
            "success_rate": sum(i["ratings"] for i in items) / runs if runs else None}


def summarise(units: list[dict[str, Any]]) -> dict[str, Any]:
    """Overall score and success rate, per type, per emotion and UAS, with counts."""
    items = item_results(units)
    per_type = _group(items, "type")
    type_scores = [b["score"] for b in per_type.values() if b["score"] is not None]
    failures = Counter(u["skip_reason"] for u in units if u["skipped"])
    judge_failures = Counter(f for u in units if u.get("judge") for f in u["judge"]["failures"])
    return {
        **_block(items),
        "uas": mean(type_scores),
        "n_units": len(units),
        "answer_failures": dict(sorted(failures.items())),
        "judge_failures": dict(sorted(judge_failures.items())),
        "per_type": per_type,
        "per_emotion": _group(items, "emotion"),
    }
