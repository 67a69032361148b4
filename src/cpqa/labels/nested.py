"""Choosing a calibrated head's settings on held-out speakers, and a figure for that choice that the
choice did not see (nested cross-validation).

`choose` trains a calibrated head (`probe.train_calibrated`) for every C and class prior of a grid
and keeps the one whose out-of-fold predictions score best. `nested` repeats the whole choice inside
each outer fold's training speakers and predicts the fold's own speakers with the head so chosen,
so every setting (C, prior, temperature, reject threshold, out-of-distribution threshold) is fixed
before the held-out speakers are seen and the figure is not inflated by the selection.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .calibration import calibrate
from .heads import ProbeHead, softmax
from .probe import speaker_folds, train_calibrated
from .probe_features import FeatureSet

Score = Callable[[FeatureSet, np.ndarray, np.ndarray, np.ndarray], Any]
"""(windows, calibrated probabilities, out-of-distribution flags, per-window reject thresholds) ->
a comparable key, higher is better."""


@dataclass
class Chosen:
    head: ProbeHead
    probs: np.ndarray
    """Calibrated out-of-fold probabilities of every window (what the choice was scored on)."""
    ood: np.ndarray
    key: Any


def subset(fs: FeatureSet, keep: np.ndarray) -> FeatureSet:
    """The windows of the examples where `keep` (one flag per example) is true, examples renumbered."""
    new_index = np.cumsum(keep) - 1
    rows = keep[fs.example]
    return FeatureSet(fs.features[rows], new_index[fs.example[rows]], fs.weight[rows],
                      [x for x, k in zip(fs.labels, keep) if k], [x for x, k in zip(fs.speakers, keep) if k],
                      [x for x, k in zip(fs.examples, keep) if k])


def choose(fs: FeatureSet, c_grid: tuple[float, ...], priors: list[dict[str, float]], score: Score,
           max_ua_loss: float, folds: int, sample_weight: np.ndarray | None = None,
           meta: dict[str, Any] | None = None) -> Chosen:
    """The calibrated head of the (C, prior) pair whose out-of-fold predictions score best."""
    best = None
    for c in c_grid:
        head, oof = train_calibrated(fs, c, priors[0], max_ua_loss, folds, meta, sample_weight)
        z = head.standardised(fs.features)
        for prior in priors:
            candidate = copy.deepcopy(head)
            calibrate(candidate, z, oof, prior, max_ua_loss)
            probs = softmax(candidate.calibrated(oof.logits))
            ood = oof.distance > candidate.meta["ood_threshold"]
            key = score(fs, probs, ood, np.full(len(probs), candidate.min_confidence))
            if best is None or key > best.key:
                best = Chosen(candidate, probs, ood, key)
    return best  # type: ignore[return-value]


def nested(fs: FeatureSet, c_grid: tuple[float, ...], priors: list[dict[str, float]], score: Score,
           max_ua_loss: float, folds: int, sample_weight: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Per window: probabilities, out-of-distribution flags and reject thresholds from a head whose
    every setting was chosen (`choose`, `folds - 1` inner folds) without the window's speaker group;
    also each outer fold's choice."""
    probs = np.zeros((len(fs.example), len(set(fs.labels))))
    ood = np.zeros(len(fs.example), dtype=bool)
    threshold = np.zeros(len(fs.example))
    choices = []
    for held in speaker_folds(sorted(set(fs.speakers)), folds):
        keep = np.array([s not in held for s in fs.speakers])
        rows = keep[fs.example]
        chosen = choose(subset(fs, keep), c_grid, priors, score, max_ua_loss, folds - 1,
                        None if sample_weight is None else sample_weight[rows])
        x = fs.features[~rows]
        probs[~rows] = chosen.head.predict_proba(x)
        ood[~rows] = chosen.head.out_of_distribution(x)
        threshold[~rows] = chosen.head.min_confidence
        choices.append({key: chosen.head.meta[key] for key in ("C", "temperature", "min_confidence")}
                       | {"prior": chosen.head.meta["calibration"]["prior"]})
    return probs, ood, threshold, choices
