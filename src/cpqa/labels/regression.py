"""Training the offline dimension model: a ridge head from window features to valence, arousal and
dominance, validated on held-out speakers.

The targets are the corpus emotion labels mapped onto the dimensions (`GOLD_VAD`, the same 0..1
scale as the audEERING MSP-Podcast model: neutral mid-scale, negative emotions low in valence), so
the head learns what each dimension sounds like from other features than the emotion head reads;
natural, unlabelled speech is neutral. Its figures are correlations with these mapped values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import require
from .heads import RegressionHead

DIMENSIONS = ("valence", "arousal", "dominance")
GOLD_VAD: dict[str, tuple[float, float, float]] = {
    #            valence arousal dominance
    "angry":     (0.20, 0.85, 0.75),
    "disgusted": (0.20, 0.55, 0.60),
    "fearful":   (0.20, 0.75, 0.25),
    "happy":     (0.85, 0.70, 0.60),
    "neutral":   (0.45, 0.35, 0.45),
    "sad":       (0.20, 0.25, 0.25),
    "surprised": (0.65, 0.80, 0.45),
}
"""Where each emotion sits on valence/arousal/dominance, 0..1: the circumplex model of affect
(Russell 1980; Mehrabian's PAD for dominance) placed on the MSP-Podcast scale, neutral valence
(0.45) between the condensation thresholds y = 0.4 and x = 0.5."""
ALPHAS = (1.0, 10.0, 100.0, 1000.0)


@dataclass
class RegressionFit:
    head: RegressionHead
    predictions: np.ndarray
    """Out-of-fold predictions `[windows, 3]`, each from a head trained without its speaker group."""
    correlations: dict[str, float]
    """Pearson r of the out-of-fold predictions with the targets, per dimension."""


def targets(labels: list[str]) -> np.ndarray:
    return np.array([GOLD_VAD[label] for label in labels], dtype=np.float64)


def _fit(x: np.ndarray, y: np.ndarray, alpha: float) -> RegressionHead:
    linear_model = require("sklearn.linear_model", "labels", "scikit-learn")
    mean = np.nanmean(x, axis=0)
    scale = np.nanstd(x, axis=0) + 1e-6
    z = np.nan_to_num((x - mean) / scale, nan=0.0)
    model = linear_model.Ridge(alpha=alpha).fit(z, y)
    return RegressionHead(labels=list(DIMENSIONS), mean=mean, scale=scale, coef=model.coef_, intercept=model.intercept_)


def _out_of_fold(x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: list[set[str]], alpha: float) -> np.ndarray:
    out = np.zeros_like(y)
    for held in folds:
        test = np.isin(groups, list(held))
        out[test] = _fit(x[~test], y[~test], alpha).predict(x[test])
    return out


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def _weighted_pearson(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> float:
    c = np.cov(np.stack([a, b]), aweights=w)
    return float(c[0, 1] / np.sqrt(c[0, 0] * c[1, 1]))


def train_dimensions(x: np.ndarray, labels: list[str], groups: np.ndarray, folds: list[set[str]],
                     weights: np.ndarray | None = None, meta: dict | None = None) -> RegressionFit:
    """A ridge head on all windows, its alpha chosen by the out-of-fold correlation (mean over the
    dimensions) with the mapped targets; `weights` (per window) weigh that score, e.g. so each corpus
    counts as much as the others."""
    y = targets(labels)
    w = np.ones(len(y)) if weights is None else weights

    def score(pred: np.ndarray) -> float:
        return float(np.mean([_weighted_pearson(pred[:, d], y[:, d], w) for d in range(3)]))

    candidates = {alpha: _out_of_fold(x, y, groups, folds, alpha) for alpha in ALPHAS}
    alpha = max(candidates, key=lambda a: score(candidates[a]))
    head = _fit(x, y, alpha)
    oof = candidates[alpha]
    correlations = {d: round(_pearson(oof[:, i], y[:, i]), 4) for i, d in enumerate(DIMENSIONS)}
    head.meta = {**(meta or {}), "alpha": alpha, "n_windows": len(y), "oof_pearson": correlations}
    return RegressionFit(head, oof, correlations)
