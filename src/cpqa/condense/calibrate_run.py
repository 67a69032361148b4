"""Calibration on a run: its annotated segments and the dev set's human labels into a grid search
(`calibrate`), a report (calibration.json), heat maps, and the best thresholds written into a recipe."""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from ..errors import CPQAError, require
from ..io_atomic import atomic_path, write_atomic
from ..record_parts import Label, label_of
from ..records import Recording, Segment
from ..rundir import iter_stage_records, read_run_info
from .calibrate import CalibrationResult, LabelledItem, WindowPrediction, calibrate
from .calibration_labels import human_labels, load_label_mapping, map_labels

logger = logging.getLogger(__name__)


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
