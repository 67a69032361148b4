"""Agreement between reviewers: Cohen's kappa on accept/reject, overall and per QA type.

Each pair of reviewers is compared on the items both of them judged. An edit counts as an accept.
Kappa is undefined (None) when chance agreement is 1, i.e. both reviewers gave one and the same
label to every shared item; the raw agreement is reported beside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import combinations
from typing import Any


def cohen_kappa(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """`pairs` holds one (label of rater A, label of rater B) per item.
    Returns {n, agreement, kappa}; agreement and kappa are None for no items."""
    pairs = list(pairs)
    n = len(pairs)
    if n == 0:
        return {"n": 0, "agreement": None, "kappa": None}
    observed = sum(a == b for a, b in pairs) / n
    labels = {x for pair in pairs for x in pair}
    expected = sum((sum(a == lab for a, _ in pairs) / n) * (sum(b == lab for _, b in pairs) / n) for lab in labels)
    kappa = None if expected == 1 else (observed - expected) / (1 - expected)
    return {"n": n, "agreement": observed, "kappa": kappa}


def pairwise_kappa(verdicts: Mapping[str, Mapping[str, str]], types: Mapping[str, str]) -> list[dict[str, Any]]:
    """`verdicts[reviewer][qa_id]` is "accept" or "reject"; `types[qa_id]` the item's QA type.
    One entry per pair of reviewers who share at least one item, with overall and per-type kappa."""
    out = []
    for a, b in combinations(sorted(verdicts), 2):
        shared = sorted(set(verdicts[a]) & set(verdicts[b]))
        if not shared:
            continue
        by_type: dict[str, list[tuple[str, str]]] = {}
        for qa_id in shared:
            by_type.setdefault(types.get(qa_id, "?"), []).append((verdicts[a][qa_id], verdicts[b][qa_id]))
        entry = {"a": a, "b": b, **cohen_kappa((verdicts[a][q], verdicts[b][q]) for q in shared)}
        entry["per_type"] = {t: cohen_kappa(p) for t, p in sorted(by_type.items())}
        out.append(entry)
    return out
