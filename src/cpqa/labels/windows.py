"""Analysis windows over a segment, and the weighted means that bring their values back to the segment.

A window is t + 2Δt long (defaults t = 2 s, Δt = 1 s) and moves by t: the model sees the whole
window, its label belongs to the central t only (docs/design.md §1.1). Central parts tile the segment from
its start; a remainder shorter than t/2 joins the last window. Context is clipped to the segment,
so a model never hears another segment's speech. A segment no longer than t + 2Δt is one window
whose central part and context are the whole segment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class WindowSpan:
    start: float
    """Start of the central part, the span the label belongs to (seconds in the recording)."""
    end: float
    context_start: float
    """Start of the audio the model sees."""
    context_end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def layout(start: float, end: float, center_s: float = 2.0, context_s: float = 1.0) -> list[WindowSpan]:
    """The windows of the segment [start, end]."""
    if end - start <= center_s + 2 * context_s:
        return [WindowSpan(start, end, start, end)]
    n = max(1, math.floor((end - start) / center_s))
    if (end - start) - n * center_s >= center_s / 2:
        n += 1
    spans = []
    for k in range(n):
        c0 = start + k * center_s
        c1 = end if k == n - 1 else min(end, c0 + center_s)
        spans.append(WindowSpan(round(c0, 3), round(c1, 3), round(max(start, c0 - context_s), 3),
                                round(min(end, c1 + context_s), 3)))
    return spans


def aggregate_values(values: list[float | None], weights: list[float]) -> float | None:
    """Weighted mean of per-window numbers, ignoring missing ones."""
    pairs = [(v, w) for v, w in zip(values, weights) if v is not None]
    if not pairs:
        return None
    total = sum(w for _, w in pairs)
    if total <= 0:
        return sum(v for v, _ in pairs) / len(pairs)
    return sum(v * w for v, w in pairs) / total


def window_of(time: float, spans: list[WindowSpan]) -> int:
    """Index of the window whose central part holds `time` (the nearest one if none does)."""
    for i, span in enumerate(spans):
        if span.start <= time < span.end:
            return i
    return min(range(len(spans)), key=lambda i: min(abs(time - spans[i].start), abs(time - spans[i].end)))
