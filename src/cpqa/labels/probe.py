"""Training and evaluating probe heads on labelled audio (the library behind `cpqa probe`); the
examples come from manifests (`cpqa.labels.probe_manifest`), their features from
`cpqa.labels.probe_features`, the scores from `cpqa.labels.probe_scores`.

Features are made the way the annotate stage makes them: each example's span is cut into analysis
windows (`cpqa.labels.windows.layout`), each window is pooled from the Whisper encoder's passes over
the 30-s chunks of its recording, and an example's prediction is the duration-weighted mean of its
windows' probabilities. Short whole-file examples (acted corpora) are trimmed to their speech with
Silero VAD, like the segment stage does, and by default the clips of one speaker are played one
after another into pseudo-recordings (`pack="speaker"`), so the encoder hears 30 s of speech per pass
as it does on in-the-wild recordings; `pack="none"` encodes each file alone (looped to 30 s, as the
pipeline does with a short recording); `pack="both"` trains on both.

Evaluation holds speakers out: every fold trains on the other speakers only.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import numpy as np

from ..errors import CPQAError, require
from .calibration import OutOfFold, calibrate, fit_ood
from .heads import ProbeHead, speaker_normalize
from .probe_features import FeatureSet
from .probe_scores import by_source, metrics

logger = logging.getLogger(__name__)

DEFAULT_C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
INNER_FOLDS = 8


def _fit(features: np.ndarray, labels: np.ndarray, c: float, sample_weight: np.ndarray | None = None) -> ProbeHead:
    linear_model = require("sklearn.linear_model", "labels", "scikit-learn")
    from threadpoolctl import threadpool_limits

    mean = features.mean(axis=0)
    scale = features.std(axis=0) + 1e-6
    model = linear_model.LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    with threadpool_limits(1):  # small problems: BLAS threads only oversubscribe a shared CPU
        model.fit((features - mean) / scale, labels, sample_weight=sample_weight)
    return ProbeHead(labels=[str(c) for c in model.classes_], mean=mean, scale=scale,
                     coef=model.coef_, intercept=model.intercept_)


def aggregate_examples(probs: np.ndarray, example: np.ndarray, weight: np.ndarray, n: int) -> np.ndarray:
    """Per-example probabilities: the duration-weighted mean over each example's windows."""
    out = np.zeros((n, probs.shape[1]))
    np.add.at(out, example, probs * weight[:, None])
    return out / np.maximum(out.sum(axis=1, keepdims=True), 1e-12)


def _prepared(fs: FeatureSet, normalize: str) -> np.ndarray:
    if normalize == "speaker":
        return speaker_normalize(fs.features, list(fs.window_speakers()))
    if normalize != "none":
        raise CPQAError(f"normalize '{normalize}': choose none or speaker")
    return fs.features.astype(np.float64)


def speaker_folds(speakers: list[str], folds: int) -> list[set[str]]:
    """Speakers dealt round-robin into `folds` held-out sets (0 or more than there are: one each)."""
    n = len(speakers) if folds <= 0 else min(folds, len(speakers))
    return [set(speakers[k::n]) for k in range(n)]


def _choose_c(x: np.ndarray, y: np.ndarray, groups: np.ndarray, fs: FeatureSet, idx: np.ndarray,
              grid: tuple[float, ...]) -> float:
    """The C of the grid with the best leave-speakers-out UA within the given windows (at most
    INNER_FOLDS folds)."""
    speakers = sorted(set(groups))
    if len(grid) == 1 or len(speakers) < 3:
        return grid[-1] if len(grid) == 1 else 0.1
    scores = []
    for c in grid:
        truth, pred = [], []
        for held in speaker_folds(speakers, INNER_FOLDS):
            test = np.isin(groups, list(held))
            head = _fit(x[~test], y[~test], c)
            ex_probs, ex_ids = _example_probs(head, x[test], fs, idx[test])
            truth += [fs.labels[i] for i in ex_ids]
            pred += [head.labels[j] for j in ex_probs.argmax(axis=1)]
        scores.append(metrics(truth, pred)["ua"])
    return grid[int(np.argmax(scores))]


def _example_probs(head: ProbeHead, x: np.ndarray, fs: FeatureSet, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = head.predict_proba(x)
    ex = fs.example[idx]
    ids, local = np.unique(ex, return_inverse=True)
    return aggregate_examples(probs, local, fs.weight[idx], len(ids)), ids


def train(fs: FeatureSet, normalize: str = "none", c_grid: tuple[float, ...] = DEFAULT_C_GRID,
          meta: dict[str, Any] | None = None) -> ProbeHead:
    """A head trained on all windows; C is chosen by leave-speakers-out UA."""
    x = _prepared(fs, normalize)
    y = fs.window_labels()
    groups = fs.window_speakers()
    c = _choose_c(x, y, groups, fs, np.arange(len(y)), c_grid)
    head = _fit(x, y, c)
    head.meta = {**(meta or {}), "normalize": normalize, "C": c, "n_windows": len(y),
                 "n_examples": len(fs.labels), "n_speakers": len(set(fs.speakers)),
                 "class_counts": dict(sorted(Counter(fs.labels).items()))}
    return head


def cross_validate(fs: FeatureSet, normalize: str = "none", c_grid: tuple[float, ...] = DEFAULT_C_GRID,
                   folds: int = 0) -> dict[str, Any]:
    """Leave-speakers-out evaluation: each fold's speakers are predicted by a head (and a C)
    trained on the other speakers only. `folds=0` holds out one speaker at a time."""
    x = _prepared(fs, normalize)
    y = fs.window_labels()
    groups = fs.window_speakers()
    speakers = sorted(set(fs.speakers))
    if len(speakers) < 2:
        raise CPQAError("leave-speakers-out evaluation needs at least two speakers")
    held_out = speaker_folds(speakers, folds)
    n_folds = len(held_out)
    truth, pred, ids = [], [], []
    for k, held in enumerate(held_out):
        test = np.isin(groups, list(held))
        train_idx = np.flatnonzero(~test)
        c = _choose_c(x[train_idx], y[train_idx], groups[train_idx], fs, train_idx, c_grid)
        head = _fit(x[train_idx], y[train_idx], c)
        ex_probs, ex_ids = _example_probs(head, x[test], fs, np.flatnonzero(test))
        truth += [fs.labels[i] for i in ex_ids]
        pred += [head.labels[j] for j in ex_probs.argmax(axis=1)]
        ids += list(ex_ids)
        logger.info("fold %d/%d (held out %s): C=%s", k + 1, n_folds, ", ".join(sorted(held)), c)
    return {**metrics(truth, pred), **by_source(fs, ids, truth, pred), "folds": n_folds, "normalize": normalize}


def evaluate(head: ProbeHead, fs: FeatureSet) -> dict[str, Any]:
    """Scores of a trained head on examples it did not see (e.g. held-out speakers)."""
    x = _prepared(fs, head.normalize)
    probs, ids = _example_probs(head, x, fs, np.arange(len(x)))
    truth = [fs.labels[i] for i in ids]
    pred = [head.labels[j] for j in probs.argmax(axis=1)]
    return {**metrics(truth, pred), **by_source(fs, list(ids), truth, pred), "normalize": head.normalize}



def out_of_fold(fs: FeatureSet, c: float, folds: int = INNER_FOLDS, normalize: str = "none",
                sample_weight: np.ndarray | None = None) -> OutOfFold:
    """Raw logits and OOD distances of every window from a head (at the given C, windows weighted by
    `sample_weight` within their balanced classes) and OOD statistics fitted without the window's
    speaker group (speakers dealt into `folds` groups)."""
    x = _prepared(fs, normalize)
    y = fs.window_labels()
    groups = fs.window_speakers()
    classes = sorted(set(y))
    logits = np.zeros((len(y), len(classes)))
    distance = np.zeros(len(y))
    for held in speaker_folds(sorted(set(fs.speakers)), folds):
        test = np.isin(groups, list(held))
        head = _fit(x[~test], y[~test], c, None if sample_weight is None else sample_weight[~test])
        if head.labels != classes:
            raise CPQAError(f"a fold lacks a class ({sorted(set(classes) - set(head.labels))}): use fewer folds")
        logits[test] = head.logits(x[test])
        z = head.standardised(x[~test])
        fit_ood(head, z)
        distance[test] = head.ood_distance(x[test])
    return OutOfFold(logits, distance, np.searchsorted(classes, y), classes)


def train_calibrated(fs: FeatureSet, c: float, prior: dict[str, float] | None, max_ua_loss: float,
                     folds: int = INNER_FOLDS, meta: dict[str, Any] | None = None,
                     sample_weight: np.ndarray | None = None) -> tuple[ProbeHead, OutOfFold]:
    """A head trained on all windows at the given C, calibrated on held-out speakers
    (`cpqa.labels.calibration`); also the out-of-fold predictions it was calibrated on."""
    oof = out_of_fold(fs, c, folds, sample_weight=sample_weight)
    x = fs.features.astype(np.float64)
    head = _fit(x, fs.window_labels(), c, sample_weight)
    head.meta = {**(meta or {}), "normalize": "none", "C": c, "n_windows": len(x), "n_examples": len(fs.labels),
                 "n_speakers": len(set(fs.speakers)), "class_counts": dict(sorted(Counter(fs.labels).items()))}
    calibrate(head, head.standardised(x), oof, prior, max_ua_loss)
    return head, oof
