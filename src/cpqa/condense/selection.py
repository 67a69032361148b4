"""Global selection over segment summaries: scores, caps, balance and budget.

Everything here is deterministic: segments are ranked by selection score (best first), ties broken
by a seeded hash of the id — never by input order — so a restarted stage decides the same.

Only segments with a reliable emotion take part in the emotion balance; those kept for other
labels (no reliable emotion) pass it untouched, and the budget treats them as one more group
('no clear emotion').
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from itertools import zip_longest

from ..ordering import stable_hash
from ..reasons import BALANCE, BUDGET, NEUTRAL_DROPPED, RECORDING_CAP, SPEAKER_CAP
from ..vocabulary import NO_CLEAR_EMOTION
from .analysis import SegmentSummary
from .config import BalanceConfig, CondenseConfig

Dropped = dict[str, tuple[str, str]]
"""Segment id → (reason, detail)."""


def score_all(summaries: list[SegmentSummary], candidates: list[SegmentSummary], config: CondenseConfig) -> None:
    """Fill `score` and `reasons` of the candidates from the configured scorers."""
    for spec in config.scorers:
        scorer = spec.build()
        scorer.prepare(summaries)
        for s in candidates:
            value, reason = scorer.score(s)
            if value > 0:
                s.score += scorer.config.weight * value
                s.reasons.append(f"{spec.name}: {reason} (+{scorer.config.weight * value:.2f})")
    for s in candidates:
        s.score = round(s.score, 6)


def rank_key(seed: int) -> Callable[[SegmentSummary], tuple[float, int]]:
    def key(s: SegmentSummary) -> tuple[float, int]:
        return (-s.score, stable_hash(f"{seed}:{s.id}"))

    return key


def select(candidates: list[SegmentSummary], config: CondenseConfig) -> tuple[list[SegmentSummary], Dropped]:
    """Apply caps, then balance, then the budget. Returns the kept summaries (ranked) and the
    dropped ids with reasons."""
    dropped: Dropped = {}
    key = rank_key(config.balance.seed)
    ranked = sorted(candidates, key=key)
    if config.max_per_speaker is not None:
        ranked = _cap(ranked, lambda s: s.speaker, config.max_per_speaker, SPEAKER_CAP, "speaker", dropped)
    if config.max_per_recording is not None:
        ranked = _cap(ranked, lambda s: s.recording_id, config.max_per_recording, RECORDING_CAP, "recording", dropped)
    if config.balance.enabled:
        ranked = _balance(ranked, config.balance, dropped)
    if config.budget_hours is not None:
        ranked = _budget(ranked, config.budget_hours, config.balance.by_gender, dropped)
    return ranked, dropped


def _cap(ranked, key_of, cap: int, reason: str, what: str, dropped: Dropped) -> list[SegmentSummary]:
    seen: dict[str, int] = defaultdict(int)
    kept = []
    for s in ranked:
        seen[key_of(s)] += 1
        if seen[key_of(s)] > cap:
            dropped[s.id] = (reason, f"{what} {key_of(s)} already has {cap} better-ranked segments")
        else:
            kept.append(s)
    return kept


def group_of(s: SegmentSummary, by_gender: bool) -> str:
    emotion = s.emotion or NO_CLEAR_EMOTION
    return f"{emotion}/{s.gender}" if by_gender else emotion


def round_robin(ranked: Iterable[SegmentSummary], by_gender: bool) -> list[SegmentSummary]:
    """Interleave the groups (in name order), each in rank order: any prefix of the result is as
    balanced as the groups allow (max-min fair)."""
    groups: dict[str, list[SegmentSummary]] = defaultdict(list)
    for s in ranked:
        groups[group_of(s, by_gender)].append(s)
    rounds = zip_longest(*(groups[g] for g in sorted(groups)))
    return [s for round_ in rounds for s in round_ if s is not None]


def _balance(ranked: list[SegmentSummary], config: BalanceConfig, dropped: Dropped) -> list[SegmentSummary]:
    emotional = [s for s in ranked if s.emotion is not None]
    balanced = [s for s in emotional if s.emotion != "neutral" or config.neutral == "balance"]
    outside = [s for s in ranked if s.emotion is None or (s.emotion == "neutral" and config.neutral == "keep")]
    for s in ranked:
        if s.emotion == "neutral" and config.neutral == "drop":
            dropped[s.id] = (NEUTRAL_DROPPED, "balance.neutral is 'drop'")
    sizes: dict[str, int] = defaultdict(int)
    for s in balanced:
        sizes[group_of(s, config.by_gender)] += 1
    if config.target_size is not None:
        size = config.target_size
        detail = f"target size {size} over {len(sizes)} groups"
    else:
        size = min(sizes.values(), default=0) * len(sizes)
        detail = f"every group cut to the smallest group's {min(sizes.values(), default=0)}"
    order = round_robin(balanced, config.by_gender)
    for s in order[size:]:
        dropped[s.id] = (BALANCE, f"group {group_of(s, config.by_gender)}: {detail}")
    kept_ids = {s.id for s in order[:size]} | {s.id for s in outside}
    return [s for s in ranked if s.id in kept_ids]


def _budget(ranked: list[SegmentSummary], budget_hours: float, by_gender: bool, dropped: Dropped) -> list[SegmentSummary]:
    budget_s = budget_hours * 3600.0
    used_s = 0.0
    kept_ids = set()
    for s in round_robin(ranked, by_gender):
        if used_s + s.duration <= budget_s:
            used_s += s.duration
            kept_ids.add(s.id)
        else:
            dropped[s.id] = (BUDGET, f"budget of {budget_hours} h reached")
    return [s for s in ranked if s.id in kept_ids]
