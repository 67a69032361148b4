"""Calibrate the condensation thresholds on a human-labelled dev set.

The paper chose x = 0.5, y = 0.4 because they gave the best unweighted accuracy (UA) of the kept
pseudo-labels on labelled in-domain data. This module repeats that search for any corpus:

1. each item (a recording: the unit a human label belongs to) has windows with an emotion
   prediction (or an abstention) and a valence from the dimension model (independent of the
   emotion model, or derived from it: the report names both models);
2. for every (x, y) with y < x and every occurrence threshold (k windows or a share r), the
   consistency rule keeps windows, the occurrence filter attributes an emotion to the item or
   drops it, and UA = mean over **every class of the labelled set** of the share of that class's
   kept items labelled right. A class with nothing kept scores 0 (it used to drop out of the
   mean, so a setting that kept only the easy classes scored 100 %); each class's coverage (share
   of its items kept) is reported beside its recall. An abstained window is never kept;
3. beside it, for each (x, y): the UA of the windows the rule keeps vs the UA of all windows (every
   window's own prediction, an abstention counted as an error), and the share of windows kept:
   agreement earns its place only where kept windows are labelled more accurately than all;
4. the best setting maximises the item UA among the settings that keep at least `min_kept_share`
   of the items; ties go to the larger kept share, then the smaller x, y, k, r. The floor is on
   the overall coverage only: without it, keeping a few lucky items would score 100 %. There is
   no per-class floor: an emptied class already costs its full share of UA, and on a small dev set
   a per-class floor leaves no setting eligible; read the per-class coverage to see thin classes.

The labels come from `calibration_labels`; a run is read and the report written by `calibrate_run`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..emotions import SENTIMENT_OF, Sentiment
from ..errors import CPQAError
from .rules import ConsistencyRule, attribute

DEFAULT_XS = tuple(round(0.30 + 0.05 * i, 2) for i in range(11))
DEFAULT_YS = tuple(round(0.20 + 0.05 * i, 2) for i in range(11))
DEFAULT_MIN_WINDOWS = (1, 2, 3)
DEFAULT_MIN_WINDOW_SHARES = (0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class WindowPrediction:
    label: str | None
    """The predicted emotion; None when the model abstained or gave none (never kept, and an error
    in the all-windows UA)."""
    score: float | None
    valence: float | None
    """From the dimension model, which may be independent of the emotion model or derived from it."""


@dataclass(frozen=True)
class LabelledItem:
    id: str
    label: str
    """The human label, in the emotion vocabulary."""
    windows: tuple[WindowPrediction, ...]


@dataclass(frozen=True)
class Accuracy:
    """UA of the kept (human, predicted) pairs over every class of the labelled set."""

    ua: float
    recalls: dict[str, float]
    """Per class: the share of its kept units predicted right; 0 where nothing was kept."""
    coverage: dict[str, float]
    """Per class: the share of its units kept."""
    kept_share: float


def unweighted_accuracy(kept: Iterable[tuple[str, str | None]], totals: Mapping[str, int]) -> Accuracy:
    """Mean per-class recall of the kept (human, predicted) pairs over every class in `totals`
    (human label → number of units, kept or not): a class with nothing kept scores 0, so a setting
    never gains by dropping a hard class; a None prediction is an error."""
    n_kept: Counter = Counter()
    correct: Counter = Counter()
    for human, predicted in kept:
        n_kept[human] += 1
        correct[human] += human == predicted
    classes = sorted(totals)
    recalls = {c: round(correct[c] / n_kept[c], 6) if n_kept[c] else 0.0 for c in classes}
    coverage = {c: round(n_kept[c] / totals[c], 6) if totals[c] else 0.0 for c in classes}
    ua = sum(recalls.values()) / len(classes) if classes else 0.0
    return Accuracy(round(ua, 6), recalls, coverage, round(sum(n_kept.values()) / max(1, sum(totals.values())), 6))


@dataclass(frozen=True)
class GridPoint:
    x: float
    y: float
    min_windows: int
    min_window_share: float
    ua: float
    """UA of the emotions attributed to the kept items (`unweighted_accuracy`)."""
    kept_share: float
    """Share of the items that keep an emotion."""
    kept: int
    window_ua: float
    """UA of the windows the consistency rule keeps at (x, y), before the occurrence filter."""
    window_kept_share: float


@dataclass
class CalibrationResult:
    best: GridPoint
    n_items: int
    items: Accuracy
    """The kept items at the best setting, per class of the labelled set."""
    windows: Accuracy
    """The kept windows at the best x, y, per class."""
    all_windows: Accuracy
    """Every window's own prediction, kept or not (an abstention is an error): the baseline the
    kept windows are compared with."""
    grid: list[GridPoint]

    def summary(self) -> dict[str, Any]:
        """The best setting with its per-class recall and coverage, the all-windows baseline, and
        the matrices (rows y, columns x) of item UA and kept share at the best k, r and of kept-window
        UA and share."""
        xs = sorted({p.x for p in self.grid})
        ys = sorted({p.y for p in self.grid})
        best = self.best
        at = {(p.x, p.y): p for p in self.grid
              if p.min_windows == best.min_windows and p.min_window_share == best.min_window_share}

        def matrix(attr: str) -> list[list[float | None]]:
            return [[getattr(at[(x, y)], attr) if (x, y) in at else None for x in xs] for y in ys]

        return {
            **asdict(best), "n_items": self.n_items, "recalls": self.items.recalls, "coverage": self.items.coverage,
            "window_recalls": self.windows.recalls, "window_coverage": self.windows.coverage,
            "window_ua_all": self.all_windows.ua, "window_recalls_all": self.all_windows.recalls,
            "grid": {"xs": xs, "ys": ys, **{key: matrix(key) for key in
                                            ("ua", "kept_share", "window_ua", "window_kept_share")}},
        }


def calibrate(items: Sequence[LabelledItem], xs: Sequence[float] = DEFAULT_XS, ys: Sequence[float] = DEFAULT_YS,
              min_windows: Sequence[int] = DEFAULT_MIN_WINDOWS,
              min_window_shares: Sequence[float] = DEFAULT_MIN_WINDOW_SHARES,
              ambiguous_min_score: float = 0.5, sentiment_map: Mapping[str, Sentiment] = SENTIMENT_OF,
              min_kept_share: float = 0.1) -> CalibrationResult:
    """Grid-search x, y, k, r for the best UA of the kept pseudo-labels (see the module docstring)."""
    if not items:
        raise CPQAError("calibration needs labelled items with windows; none were found")
    item_totals = Counter(item.label for item in items)
    window_totals = Counter({label: 0 for label in item_totals})
    for item in items:
        window_totals[item.label] += len(item.windows)
    all_windows = unweighted_accuracy(((item.label, w.label) for item in items for w in item.windows), window_totals)
    grid: list[GridPoint] = []
    scores: dict[GridPoint, tuple[Accuracy, Accuracy]] = {}
    for x in xs:
        for y in ys:
            if not y < x:
                continue
            rule = ConsistencyRule(x, y, ambiguous_min_score, sentiment_map)
            kept_windows = [
                [(w.label, w.score) for w in item.windows if rule.drop_reason(w.label, w.score, w.valence) is None]
                for item in items
            ]
            windows = unweighted_accuracy(((item.label, label) for item, kept in zip(items, kept_windows)
                                           for label, _ in kept), window_totals)
            for k in min_windows:
                for r in min_window_shares:
                    pairs = []
                    for item, kept in zip(items, kept_windows):
                        emotion = attribute(kept, len(item.windows), k, r).emotion
                        if emotion is not None:
                            pairs.append((item.label, emotion))
                    kept_items = unweighted_accuracy(pairs, item_totals)
                    point = GridPoint(x, y, k, r, kept_items.ua, kept_items.kept_share, len(pairs), windows.ua,
                                      windows.kept_share)
                    grid.append(point)
                    scores[point] = (kept_items, windows)
    eligible = [p for p in grid if p.kept_share >= min_kept_share and p.kept > 0]
    if not eligible:
        raise CPQAError(f"no setting keeps {min_kept_share:.0%} of the {len(items)} items; "
                        "lower the minimum kept share or check the labels")
    best = min(eligible, key=lambda p: (-p.ua, -p.kept_share, p.x, p.y, p.min_windows, p.min_window_share))
    return CalibrationResult(best, len(items), *scores[best], all_windows, grid)
