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

Corpus label names are mapped onto the emotion vocabulary (`DEFAULT_LABEL_MAP`, extended or
overridden by a mapping file); labels with no mapping (e.g. boredom) are reported, never guessed.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..audio.sources.table import read_table
from ..emotions import EMOTIONS, SENTIMENT_OF, Sentiment
from ..errors import CPQAError, require
from ..io_atomic import atomic_path, write_atomic
from ..labels.protocols import EMOTION2VEC_MAP
from ..record_parts import Label, label_of
from ..records import Recording, Segment
from ..rundir import iter_stage_records, read_run_info
from .rules import ConsistencyRule, attribute

logger = logging.getLogger(__name__)

DEFAULT_LABEL_MAP: dict[str, str] = {
    **{e: e for e in EMOTIONS},
    **EMOTION2VEC_MAP,
    "hap": "happy", "ang": "angry", "neu": "neutral", "fea": "fearful", "dis": "disgusted", "sur": "surprised",
}
"""Common corpus label names → the emotion vocabulary. Deliberately absent: labels with no
counterpart (boredom, contempt, frustration, excitement…) — map them in a mapping file if you
decide they should count as one of the vocabulary's emotions."""

DEFAULT_XS = tuple(round(0.30 + 0.05 * i, 2) for i in range(11))
DEFAULT_YS = tuple(round(0.20 + 0.05 * i, 2) for i in range(11))
DEFAULT_MIN_WINDOWS = (1, 2, 3)
DEFAULT_MIN_WINDOW_SHARES = (0.25, 0.5, 0.75, 1.0)


# ---------------------------------------------------------------- label mapping


def load_label_mapping(path: str | Path | None) -> dict[str, str | None]:
    """DEFAULT_LABEL_MAP updated by a YAML/JSON file `{corpus_label: vocabulary_label | null}`;
    null excludes a label on purpose (it is then reported as excluded, not unmappable)."""
    mapping: dict[str, str | None] = dict(DEFAULT_LABEL_MAP)
    if path is None:
        return mapping
    path = Path(path)
    try:
        extra = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CPQAError(f"cannot read the label mapping {path}: {exc}") from exc
    if not isinstance(extra, dict):
        raise CPQAError(f"label mapping {path}: write it as `corpus_label: vocabulary_label` lines")
    for key, value in extra.items():
        if value is not None and value not in EMOTIONS:
            raise CPQAError(f"label mapping {path}: '{key}: {value}': '{value}' is not in the emotion "
                            f"vocabulary ({', '.join(EMOTIONS)})")
        mapping[str(key).strip().lower()] = value
    return mapping


@dataclass
class MappedLabels:
    labels: dict[str, str]
    """Item id → vocabulary label."""
    unmappable: dict[str, int] = field(default_factory=dict)
    """Corpus label → number of items, for labels with no mapping."""
    excluded: dict[str, int] = field(default_factory=dict)
    """Corpus label → number of items, for labels the mapping file maps to null."""


def map_labels(raw: Mapping[str, str], mapping: Mapping[str, str | None]) -> MappedLabels:
    out = MappedLabels({})
    unmappable: Counter = Counter()
    excluded: Counter = Counter()
    for item_id, label in raw.items():
        key = str(label).strip().lower()
        if key not in mapping:
            unmappable[label] += 1
        elif mapping[key] is None:
            excluded[label] += 1
        else:
            out.labels[item_id] = mapping[key]
    out.unmappable, out.excluded = dict(sorted(unmappable.items())), dict(sorted(excluded.items()))
    return out


# ---------------------------------------------------------------- the search


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


# ---------------------------------------------------------------- outputs


def save_heatmap(result: CalibrationResult, path: str | Path) -> Path:
    """Three heat maps over (x, y): at the best k, r the UA of the kept items (every class counted)
    and the share of items kept — the trade-off the search makes — and the UA of the kept windows,
    titled with the all-windows UA it should beat. The best setting is starred."""
    require("matplotlib", "condense")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    summary = result.summary()
    best = result.best
    xs, ys = summary["grid"]["xs"], summary["grid"]["ys"]
    panels = (("ua", "UA of kept items (every class)"), ("kept_share", "share of items kept"),
              ("window_ua", f"UA of kept windows (all windows: {result.all_windows.ua:.0%})"))
    fig = Figure(figsize=(2.0 + 1.6 * len(xs), 1.5 + 0.45 * len(ys)))
    FigureCanvasAgg(fig)
    for i, (key, title) in enumerate(panels):
        values = summary["grid"][key]
        ax = fig.add_subplot(1, len(panels), i + 1)
        image = ax.imshow([[math.nan if v is None else v for v in row] for row in values], origin="lower",
                          cmap="viridis", aspect="auto", vmin=0.0, vmax=1.0)
        fig.colorbar(image, ax=ax)
        ax.set_xticks(range(len(xs)), [f"{x:.2f}" for x in xs], rotation=90)
        ax.set_yticks(range(len(ys)), [f"{y:.2f}" for y in ys])
        ax.set_xlabel("x (positive needs valence ≥ x)")
        ax.set_ylabel("y (negative needs valence ≤ y)")
        ax.set_title(title, fontsize=9)
        for r, row in enumerate(values):
            for c, v in enumerate(row):
                if v is not None:
                    ax.text(c, r, f"{v * 100:.0f}", ha="center", va="center", fontsize=6, color="white")
        ax.plot(xs.index(best.x), ys.index(best.y), marker="*", color="red", markersize=14)
    fig.suptitle(f"best x={best.x:.2f} y={best.y:.2f} k={best.min_windows} r={best.min_window_share:g}: "
                 f"UA {best.ua:.1%}, kept {best.kept_share:.0%} of {result.n_items}", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    return path


THRESHOLDS = ("x", "y", "min_windows", "min_window_share")


def write_recipe_thresholds(recipe_path: str | Path, best: Mapping[str, Any], stage: str = "condense") -> None:
    """Set x, y, min_windows and min_window_share of the recipe's condense stage from `best` (a
    calibration report or `CalibrationResult.summary()`). PyYAML rewrites the file: comments go."""
    path = Path(recipe_path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CPQAError(f"cannot read the recipe {path}: {exc}") from exc
    stages = data.get("stages") if isinstance(data, dict) else None
    if not isinstance(stages, dict) or stage not in stages:
        raise CPQAError(f"recipe {path} has no '{stage}' stage to write the thresholds into")
    node = stages[stage] if isinstance(stages[stage], dict) else {}
    node.update({key: best[key] for key in THRESHOLDS})
    stages[stage] = node
    write_atomic(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


# ---------------------------------------------------------------- reading a labelled run


def read_manifest_rows(manifest: str | Path) -> list[dict[str, Any]]:
    manifest = Path(manifest)
    if not manifest.exists():
        raise CPQAError(f"manifest {manifest} does not exist")
    return list(read_table(manifest))


def human_labels(recordings: Iterable[Recording], manifest: str | Path, label_column: str) -> dict[str, str]:
    """Recording id → the manifest's label: from the recording's metadata when ingest kept the
    column, else from the manifest row whose audio path (column `audio` or `file`, relative to the
    manifest) is the recording's source, else the row whose `id` is the recording id."""
    rows = read_manifest_rows(manifest)
    if rows and label_column not in rows[0]:
        raise CPQAError(f"manifest {manifest} has no column '{label_column}'. Columns: {', '.join(rows[0])}")
    base = Path(manifest).parent
    by_path = {str((base / str(row.get("audio") or row.get("file"))).resolve()): row
               for row in rows if row.get("audio") or row.get("file")}
    by_id = {str(row["id"]): row for row in rows if row.get("id")}
    out = {}
    for rec in recordings:
        if rec.metadata.get(label_column) not in (None, ""):
            out[rec.id] = str(rec.metadata[label_column])
            continue
        row = by_path.get(str(Path(rec.source or rec.audio).resolve())) or by_id.get(rec.id)
        if row is not None and row.get(label_column) not in (None, ""):
            out[rec.id] = str(row[label_column])
    return out


def items_from_segments(segments: Iterable[Segment], labels: Mapping[str, str],
                        models: dict[str, set[str]] | None = None) -> list[LabelledItem]:
    """One item per labelled recording, with the windows of all its segments. A window whose
    emotion abstained (`{"label": null, "abstained": true, ...}`) has no label. `models`, when
    given, collects the `model` of the segments' emotion and valence labels, and under
    "derived valence" the valence models that map the emotion posteriors (not independent)."""
    windows: dict[str, list[WindowPrediction]] = defaultdict(list)
    for seg in segments:
        if seg.recording_id not in labels:
            continue
        if models is not None:
            for key in ("emotion", "valence"):
                label = label_of(seg.labels, key)
                if label is not None and label.model:
                    models.setdefault(key, set()).add(label.model)
                    if key == "valence" and (label.model_extra or {}).get("derived"):
                        models.setdefault("derived valence", set()).add(label.model)
        for w in seg.windows:
            emotion = w.emotion or Label()
            windows[seg.recording_id].append(WindowPrediction(emotion.category, emotion.score, w.valence))
    return [LabelledItem(rid, labels[rid], tuple(windows[rid])) for rid in sorted(windows)]


def calibrate_run(run_dir: str | Path, manifest: str | Path, label_column: str, output_dir: str | Path,
                  stage: str = "annotate", mapping_file: str | Path | None = None,
                  min_kept_share: float = 0.1, ambiguous_min_score: float = 0.5) -> dict[str, Any]:
    """Calibrate on a run whose `stage` wrote annotated segments; write calibration.json and
    heatmap.png into `output_dir`; return the report (the best setting, the grid, and the labels
    that could not be used)."""
    run_dir, output_dir = Path(run_dir), Path(output_dir)
    first_stage = read_run_info(run_dir)["stages"][0]["name"]
    recordings = [Recording.model_validate(r) for r in iter_stage_records(run_dir, first_stage)]
    raw = human_labels(recordings, manifest, label_column)
    mapped = map_labels(raw, load_label_mapping(mapping_file))
    if mapped.unmappable:
        logger.warning("calibrate: labels with no mapping onto the emotion vocabulary (left out): %s",
                       ", ".join(f"{k} ({v})" for k, v in mapped.unmappable.items()))
    models: dict[str, set[str]] = {}
    items = items_from_segments((Segment.model_validate(s) for s in iter_stage_records(run_dir, stage)),
                                mapped.labels, models)
    if models.get("derived valence"):
        logger.warning("calibrate: valence is derived from the emotion posteriors (%s): the agreement check "
                       "compares the emotion model with itself", ", ".join(sorted(models["derived valence"])))
    result = calibrate(items, min_kept_share=min_kept_share, ambiguous_min_score=ambiguous_min_score)
    heatmap = save_heatmap(result, output_dir / "heatmap.png")
    report = {
        **result.summary(),
        "models": {key: sorted(names) for key, names in sorted(models.items())},
        "unmappable": mapped.unmappable,
        "excluded": mapped.excluded,
        "unlabelled_recordings": len(recordings) - len(raw),
        "labelled_without_windows": len(mapped.labels) - len(items),
        "min_kept_share": min_kept_share,
        "heatmap": str(heatmap),
        "run": str(run_dir),
    }
    write_atomic(output_dir / "calibration.json", json.dumps(
        {**report, "points": [asdict(p) for p in result.grid]}, indent=2))
    return report
