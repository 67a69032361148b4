"""Distributions before and after condensation, as stage counters (they land in stats.json).

Counter keys: `<dimension>_<before|after>/<value>` for the dimensions emotion, sentiment, gender and
duration (buckets), plus `speakers_<when>` (distinct recording/speaker pairs), `hours_<when>`
(speech hours) and `entropy_bits/<dimension>_<when>` (Shannon entropy). The emotion entropy is taken
over the mapped emotions only (other/unknown excluded), so that before and after are comparable.
Emotion 'none' counts segments without one (before: the annotate label abstained or is absent;
after: kept for other labels, with no reliable emotion).

What the segments are reliable for (`reliability_counters`): `reliable_<when>/<label>` counts the
segments reliable for content, emotion, gender, speakers; `recordings_<when>/with_reliable_emotion`
and `recordings_<when>/without_reliable_emotion` count the recordings holding at least one
emotion-reliable segment, or none (before: in the input; after: among those with a kept segment).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

from .analysis import SegmentSummary
from .reliability import RELIABLE_LABELS

When = Literal["before", "after"]
DIMENSIONS = ("emotion", "sentiment", "gender", "duration")
SEGMENT_DURATION_EDGES_S = (2.0, 5.0, 10.0, 30.0)


def entropy_bits(counts: Mapping[str, float]) -> float:
    total = sum(counts.values())
    if total <= 0:
        return 0.0
    return -sum(n / total * math.log2(n / total) for n in counts.values() if n > 0)


def duration_bucket(duration_s: float, edges_s: tuple[float, ...] = SEGMENT_DURATION_EDGES_S) -> str:
    """The name of the bucket holding `duration_s`, e.g. '2-5s' (more than 2, at most 5) or '>30s'."""
    lower = 0.0
    for edge in edges_s:
        if duration_s <= edge:
            return f"{lower:g}-{edge:g}s"
        lower = edge
    return f">{lower:g}s"


def distribution_counters(summaries: Iterable[SegmentSummary], when: When, emotion_of: Callable[[SegmentSummary], str | None],
                          sentiment_map: Mapping[str, str]) -> dict[str, float]:
    """Counters describing `summaries`; `emotion_of` picks the emotion that counts at this point."""
    dims: dict[str, Counter] = {d: Counter() for d in DIMENSIONS}
    speakers = set()
    seconds = 0.0
    for s in summaries:
        emotion = emotion_of(s)
        dims["emotion"][emotion or "none"] += 1
        dims["sentiment"][sentiment_map.get(emotion, "none") if emotion else "none"] += 1
        dims["gender"][s.gender] += 1
        dims["duration"][duration_bucket(s.duration)] += 1
        speakers.add(s.speaker)
        seconds += s.duration
    out: dict[str, float] = {f"{d}_{when}/{value}": n for d, counts in dims.items() for value, n in counts.items()}
    out[f"speakers_{when}"] = len(speakers)
    out[f"hours_{when}"] = round(seconds / 3600.0, 6)
    mapped = {k: v for k, v in dims["emotion"].items() if k in sentiment_map}
    out[f"entropy_bits/emotion_{when}"] = round(entropy_bits(mapped), 6)
    out[f"entropy_bits/gender_{when}"] = round(entropy_bits(dims["gender"]), 6)
    return out


def reliability_counters(summaries: Iterable[SegmentSummary], when: When) -> dict[str, float]:
    summaries = list(summaries)
    out: dict[str, float] = {f"reliable_{when}/{label}": sum(label in s.reliable_for for s in summaries)
                             for label in RELIABLE_LABELS}
    recordings = {s.recording_id for s in summaries}
    without = recordings_without_reliable_emotion(summaries)
    out[f"recordings_{when}/with_reliable_emotion"] = len(recordings - without)
    out[f"recordings_{when}/without_reliable_emotion"] = len(without)
    return out


def recordings_without_reliable_emotion(summaries: Iterable[SegmentSummary]) -> set[str]:
    """The recordings none of whose segments (among `summaries`) is reliable for emotion."""
    by_recording: dict[str, bool] = {}
    for s in summaries:
        by_recording[s.recording_id] = by_recording.get(s.recording_id, False) or "emotion" in s.reliable_for
    return {rid for rid, reliable in by_recording.items() if not reliable}


def before_after(counters: Mapping[str, float]) -> dict[str, dict[str, tuple[float, float]]]:
    """Regroup condense counters as {dimension: {value: (before, after)}} for a summary table;
    single-valued counters (speakers, hours, entropies) come under the dimension 'totals'.
    Counters of other kinds (e.g. windows_dropped/...) are left out."""
    table: dict[str, dict[str, list[float]]] = {}
    for key, n in counters.items():
        parsed = _parse_key(key)
        if parsed is None:
            continue
        dim, label, when = parsed
        table.setdefault(dim, {}).setdefault(label, [0, 0])[0 if when == "before" else 1] = n
    return {d: {k: (v[0], v[1]) for k, v in sorted(values.items())} for d, values in sorted(table.items())}


def _parse_key(key: str) -> tuple[str, str, str] | None:
    head, _, value = key.partition("/")
    if head == "entropy_bits":
        name, _, when = value.rpartition("_")
        return "totals", f"entropy_bits/{name}", when
    name, _, when = head.rpartition("_")
    if when not in ("before", "after"):
        return None
    return (name, value, when) if value else ("totals", name, when)
