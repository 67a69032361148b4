"""Train/dev/test splits with no recording and no speaker in two splits.

Recordings that share a speaker are joined into one group (union-find over recordings and speaker
ids), so a speaker heard in several recordings stays on one side. Groups are ordered by a salted
hash of their smallest recording id and laid end to end, each weighted by its number of QA items; a
group goes to the split whose share of the line holds the group's middle. The result depends on the
data and the salt only (never on input order), meets the target ratios as closely as whole groups
allow, and a group that grows or shrinks moves only the groups near a boundary.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable

SPLIT_NAMES = ("train", "dev", "test")


class _UnionFind:
    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:  # path compression
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def recording_groups(pairs: Iterable[tuple[str, Iterable[str]]], by_speaker: bool = True) -> dict[str, str]:
    """recording id → its group's key (the smallest recording id of the group), from
    (recording id, speaker ids) pairs."""
    uf = _UnionFind()
    recordings = set()
    for recording, speakers in pairs:
        recordings.add(recording)
        uf.find(f"r:{recording}")
        if by_speaker:
            for speaker in speakers:
                uf.union(f"r:{recording}", f"s:{speaker}")
    members: dict[str, list[str]] = {}
    for recording in recordings:
        members.setdefault(uf.find(f"r:{recording}"), []).append(recording)
    return {r: min(group) for group in members.values() for r in group}


def assign_splits(weights: Counter, groups: dict[str, str], ratios: dict[str, float], seed: str = "cpqa") -> dict[str, str]:
    """recording id → split name. `weights` counts the items of each recording; `ratios` maps split
    names (in line order) to non-negative shares that sum to more than 0."""
    total_ratio = sum(ratios.values())
    group_weight: Counter = Counter()
    for recording, n in weights.items():
        group_weight[groups[recording]] += n
    order = sorted(group_weight, key=lambda g: (hashlib.sha256(f"{seed}\n{g}".encode()).hexdigest(), g))
    total = sum(group_weight.values())
    bounds = []
    cumulative = 0.0
    for name, ratio in ratios.items():
        cumulative += ratio / total_ratio
        bounds.append((cumulative, name))
    split_of_group: dict[str, str] = {}
    before = 0
    for g in order:
        middle = (before + group_weight[g] / 2) / total
        split_of_group[g] = next((name for bound, name in bounds if middle < bound), bounds[-1][1])
        before += group_weight[g]
    return {recording: split_of_group[groups[recording]] for recording in weights}
