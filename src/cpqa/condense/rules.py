"""The paper's condensation rules as pure functions, shared by the `condense` stage and calibration.

1. **Sentiment mapping.** positive = {happy}; neutral = {neutral}; ambiguous = {surprised};
   negative = {angry, disgusted, fearful, sad}. Emotions outside the mapping (other, unknown) are
   dropped: they say nothing usable about how something was said.
2. **Emotion–valence consistency** (per window). A categorical emotion and an independent valence
   estimate must agree before we trust the window: positive only if valence ≥ x, negative only if
   valence ≤ y, neutral only if y < valence < x (x = 0.5, y = 0.4 in the paper).
   **Surprise is kept on its emotion confidence alone** (score ≥ `ambiguous_min_score`): surprise
   can be pleasant or unpleasant, so valence cannot confirm or refute it.
   A window whose emotion model **abstained** ("no clear emotion") has no class to check: it is
   dropped from the emotion path as `emotion_abstained`, never read as a class.
3. **Occurrence.** An emotion is attributed to a segment only if it holds in at least k consistent
   windows or in a share ≥ r of all the segment's windows, so one stray window never labels an
   utterance. Among qualifying emotions the most frequent wins (then the higher mean score, then
   the name).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..emotions import SENTIMENT_OF, Sentiment
from ..reasons import (
    EMOTION_ABSTAINED,
    LOW_CONFIDENCE_AMBIGUOUS,
    NO_EMOTION,
    NO_VALENCE,
    UNMAPPED_EMOTION,
    VALENCE_ABOVE_Y,
    VALENCE_BELOW_X,
    VALENCE_OUTSIDE_NEUTRAL_BAND,
)


@dataclass(frozen=True)
class ConsistencyRule:
    x: float = 0.5
    y: float = 0.4
    ambiguous_min_score: float = 0.5
    sentiment_map: Mapping[str, Sentiment] = field(default_factory=lambda: dict(SENTIMENT_OF))

    def __post_init__(self):
        if not self.y < self.x:
            raise ValueError(f"the neutral band needs y < x (got x={self.x}, y={self.y})")

    def drop_reason(self, label: str | None, score: float | None, valence: float | None,
                    abstained: bool = False) -> str | None:
        """Why a window with this prediction is dropped, or None when it is kept."""
        if abstained:
            return EMOTION_ABSTAINED
        if label is None:
            return NO_EMOTION
        sentiment = self.sentiment_map.get(label)
        if sentiment is None:
            return UNMAPPED_EMOTION
        if sentiment == "ambiguous":
            return None if (score or 0.0) >= self.ambiguous_min_score else LOW_CONFIDENCE_AMBIGUOUS
        if valence is None:
            return NO_VALENCE
        if sentiment == "positive":
            return None if valence >= self.x else VALENCE_BELOW_X
        if sentiment == "negative":
            return None if valence <= self.y else VALENCE_ABOVE_Y
        return None if self.y < valence < self.x else VALENCE_OUTSIDE_NEUTRAL_BAND


@dataclass(frozen=True)
class Occurrence:
    emotion: str | None
    """The attributed emotion, or None when no emotion occurs often enough."""
    qualifying: dict[str, int]
    """Every emotion that passed the filter, with its count of consistent windows."""
    counts: dict[str, int]
    """Consistent windows per emotion."""


def attribute(kept: Sequence[tuple[str, float | None]], n_windows: int, min_windows: int,
              min_window_share: float) -> Occurrence:
    """Apply the occurrence filter to the (label, score) of a segment's consistent windows;
    `n_windows` counts all its windows, kept or not (the share's denominator)."""
    counts = Counter(label for label, _ in kept)
    scores: dict[str, list[float]] = {}
    for label, score in kept:
        scores.setdefault(label, []).append(score or 0.0)
    qualifying = {
        label: n for label, n in counts.items()
        if n >= min_windows or (n_windows > 0 and n / n_windows >= min_window_share)
    }
    best = min(qualifying, key=lambda lab: (-qualifying[lab], -sum(scores[lab]) / len(scores[lab]), lab),
               default=None)
    return Occurrence(best, dict(sorted(qualifying.items())), dict(sorted(counts.items())))
