"""Correlation and agreement statistics in numpy: Pearson and Spearman (average ranks for ties)
with percentile bootstrap confidence intervals over units, and rating agreement (exact, within one
point, mean absolute difference, quadratically weighted kappa)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Stat = Callable[[np.ndarray, np.ndarray], np.ndarray]


def ranks(a: np.ndarray) -> np.ndarray:
    """Ranks from 1 along the last axis, ties sharing their average rank."""
    a = np.asarray(a, dtype=float)
    if a.ndim > 1:
        return np.stack([ranks(row) for row in a])
    order = np.argsort(a, kind="mergesort")
    ordered = a[order]
    new_group = np.r_[True, ordered[1:] != ordered[:-1]]
    starts = np.flatnonzero(new_group)
    ends = np.r_[starts[1:], len(a)]
    out = np.empty(len(a))
    out[order] = ((starts + ends - 1) / 2 + 1)[np.cumsum(new_group) - 1]
    return out


def pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r along the last axis; NaN where either side is constant."""
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((xc ** 2).sum(axis=-1) * (yc ** 2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(axis=-1) / denominator
    return np.where(denominator > 1e-12, np.clip(r, -1.0, 1.0), np.nan)


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return pearson_rows(ranks(x), ranks(y))


def correlation(x: list[float], y: list[float], stat: Stat, n_boot: int, seed: int) -> dict[str, Any]:
    """The statistic on the paired values and its 95 % percentile bootstrap interval (units
    resampled with replacement; resamples where a side is constant are left out)."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(xs) < 3:
        return {"r": None, "ci95": None, "note": f"{len(xs)} matched unit(s); at least 3 are needed"}
    r = float(stat(xs, ys))
    if np.isnan(r):
        return {"r": None, "ci95": None, "note": "one side is constant"}
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(xs), size=(n_boot, len(xs)))
    boot = stat(xs[index], ys[index])
    boot = boot[~np.isnan(boot)]
    ci = [float(v) for v in np.percentile(boot, [2.5, 97.5])] if boot.size else None
    return {"r": r, "ci95": ci, "n_boot_valid": int(boot.size)}


def agreement(a: list[float], b: list[float], levels: int = 6) -> dict[str, Any]:
    """Agreement of paired 0–5 ratings (means allowed; rounded for exact agreement and kappa)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not len(x):
        return {"n": 0}
    xi = np.clip(np.rint(x), 0, levels - 1).astype(int)
    yi = np.clip(np.rint(y), 0, levels - 1).astype(int)
    observed = np.zeros((levels, levels))
    np.add.at(observed, (xi, yi), 1)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / len(x)
    grid = np.arange(levels)
    weights = (grid[:, None] - grid[None, :]) ** 2 / (levels - 1) ** 2
    chance = float((weights * expected).sum())
    return {
        "n": len(x),
        "mean_abs_diff": float(np.abs(x - y).mean()),
        "exact": float((xi == yi).mean()),
        "within_1": float((np.abs(x - y) <= 1.0 + 1e-9).mean()),
        "quadratic_kappa": None if chance == 0 else 1.0 - float((weights * observed).sum()) / chance,
    }
