"""Compare two evaluations, or an evaluation and human ratings, unit by unit.

A unit is an item, a clip, a question type or an emotion (`by`); its score on each side is the
mean of that side's item scores in it, and only units scored on both sides are compared. The
report gives Pearson and Spearman r with seeded percentile-bootstrap 95 % intervals, the mean score
of each side over the matched units, every unit's pair of scores (so r can be recomputed), and
where both sides scored the same items (two judges on the same predictions, or a judge against
human ratings) their agreement in rating points. With `out_dir`, a scatter plot PNG and the JSON
report are written there.

Human ratings are CSV or JSONL rows `qa_id, rating` (0–5; several rows per item, e.g. several
raters or turns, are averaged); their items take clip, type and emotion from EVAL_A.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

from ..errors import CPQAError
from ..io_atomic import write_json_atomic
from ..manifest import iter_jsonl
from .correlation import agreement, correlation, pearson_rows, spearman_rows
from .metrics import SCALE, mean

By = Literal["item", "clip", "type", "emotion"]
BY: dict[str, str] = {"item": "qa_id", "clip": "clip_id", "type": "type", "emotion": "emotion"}


def load_evaluation(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The summary and item rows of an evaluation directory."""
    path = Path(path)
    results, items = path / "results.json", path / "items.jsonl"
    if not results.is_file() or not items.is_file():
        raise CPQAError(f"{path} is not an evaluation directory (no results.json / items.jsonl); "
                        f"make one with: cpqa evaluate QA -o {path} --model NAME")
    return json.loads(results.read_text()), list(iter_jsonl(items))


def load_human_ratings(path: str | Path) -> list[dict[str, Any]]:
    """Item rows (`qa_id`, `score` = mean rating × 20) from a CSV/JSONL of `qa_id, rating`."""
    path = Path(path)
    if not path.is_file():
        raise CPQAError(f"human ratings: {path} does not exist")
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [(n, row) for n, row in enumerate(csv.DictReader(f), 2)]
    else:
        rows = list(enumerate(iter_jsonl(path), 1))
    ratings: dict[str, list[float]] = defaultdict(list)
    for n, row in rows:
        try:
            value = float(row["rating"])
            qa_id = str(row["qa_id"]).strip()
        except (KeyError, TypeError, ValueError):
            raise CPQAError(f"{path}:{n}: a human rating row needs qa_id and a numeric rating (0-5)") from None
        if not 0 <= value <= 5 or not qa_id:
            raise CPQAError(f"{path}:{n}: rating {value:g} is outside 0-5")
        ratings[qa_id].append(value)
    if not ratings:
        raise CPQAError(f"{path} holds no human ratings")
    return [{"qa_id": qa_id, "score": mean(values) * SCALE} for qa_id, values in ratings.items()]


def unit_scores(items: list[dict[str, Any]], by: str) -> dict[str, float]:
    """Unit → the mean score of its scored items."""
    groups: dict[str, list[float]] = defaultdict(list)
    for item in items:
        if item.get("score") is not None and item.get(BY[by]) is not None:
            groups[str(item[BY[by]])].append(item["score"])
    return {unit: mean(scores) for unit, scores in groups.items()}


def compare(eval_a: str | Path, eval_b: str | Path | None = None, *, by: By = "clip",
            human_ratings: str | Path | None = None, out_dir: str | Path | None = None,
            n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Correlate EVAL_A with EVAL_B, or with human ratings; returns the report."""
    if by not in BY:
        raise CPQAError(f"--by must be one of {', '.join(BY)}, got '{by}'")
    if (eval_b is None) == (human_ratings is None):
        raise CPQAError("compare an evaluation with a second evaluation or with human ratings (one of the two)")
    if n_boot < 100:
        raise CPQAError(f"use at least 100 bootstrap resamples, got {n_boot}")
    summary_a, items_a = load_evaluation(eval_a)
    if eval_b is not None:
        summary_b, items_b = load_evaluation(eval_b)
        label_b, path_b = _label(summary_b), str(eval_b)
    else:
        summary_b, items_b = {}, _placed(load_human_ratings(human_ratings), items_a)
        label_b, path_b = "human ratings", str(human_ratings)
    a, b = unit_scores(items_a, by), unit_scores(items_b, by)
    matched = sorted(set(a) & set(b))
    xs, ys = [a[u] for u in matched], [b[u] for u in matched]
    report: dict[str, Any] = {
        "by": by, "n_units": len(matched), "only_a": len(set(a) - set(b)), "only_b": len(set(b) - set(a)),
        "a": {"path": str(eval_a), "label": _label(summary_a), "mean_score": mean(xs),
              "overall_score": summary_a.get("score"), "uas": summary_a.get("uas")},
        "b": {"path": path_b, "label": label_b, "mean_score": mean(ys),
              "overall_score": summary_b.get("score"), "uas": summary_b.get("uas")},
        "pearson": correlation(xs, ys, pearson_rows, n_boot, seed),
        "spearman": correlation(xs, ys, spearman_rows, n_boot, seed),
        "bootstrap": {"n": n_boot, "seed": seed, "interval": "percentile, 95 %"},
        "agreement": _item_agreement(items_a, items_b),
        "units": [{"unit": u, "a": x, "b": y} for u, x, y in zip(matched, xs, ys)],
    }
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        report["plot"] = str(scatter(report, out_dir / f"compare-{by}.png"))
        write_json_atomic(out_dir / f"compare-{by}.json", report)
    return report


def _placed(rows: list[dict[str, Any]], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Human-rated items with the clip, type and emotion of the evaluation's items of the same id
    (rows of ids the evaluation lacks are kept for `--by item` only)."""
    known = {item["qa_id"]: item for item in items}
    return [{**{k: known[r["qa_id"]][k] for k in ("clip_id", "type", "emotion")}, **r} if r["qa_id"] in known
            else {"clip_id": None, "type": None, "emotion": None, **r} for r in rows]


def _label(summary: dict[str, Any]) -> str:
    model = (summary.get("model") or {}).get("model", "?")
    judge = summary.get("judge") or {}
    return f"{model} | judge {judge.get('model', '?')} ({judge.get('rubric', '?')})"


def _item_agreement(items_a: list[dict[str, Any]], items_b: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Agreement in rating points on the items both sides scored (None when they share none)."""
    a, b = unit_scores(items_a, "item"), unit_scores(items_b, "item")
    shared = sorted(set(a) & set(b))
    if not shared:
        return None
    return agreement([a[q] / SCALE for q in shared], [b[q] / SCALE for q in shared])


def scatter(report: dict[str, Any], path: Path) -> Path:
    """A scatter plot of the matched units' scores, with the diagonal and r in the title."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.5, 5.5), dpi=120)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    xs, ys = [u["a"] for u in report["units"]], [u["b"] for u in report["units"]]
    ax.plot([0, 100], [0, 100], color="0.75", linewidth=1, zorder=0)
    ax.scatter(xs, ys, s=28, alpha=0.8, edgecolors="none")
    ax.set(xlim=(-2, 102), ylim=(-2, 102))
    ax.set_xlabel(f"A: {report['a']['label']}"[:80], fontsize=7)
    ax.set_ylabel(f"B: {report['b']['label']}"[:80], fontsize=7)
    r = report["pearson"]["r"]
    ci = report["pearson"]["ci95"]
    stats = "r n/a" if r is None else f"Pearson r = {r:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
    ax.set_title(f"scores by {report['by']} (n = {report['n_units']}): {stats}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path)
    return path
