"""Scores of probe-head predictions: UA, WA, macro-F1, per-class recall, confusion, and the same
per manifest."""

from __future__ import annotations

from typing import Any

import numpy as np

from .probe_features import FeatureSet


def by_source(fs: FeatureSet, ids: list[int], truth: list[str], pred: list[str]) -> dict[str, Any]:
    """Scores per manifest when the examples come from several."""
    sources = [fs.examples[i].source for i in ids] if fs.examples else []
    if len(set(sources)) < 2:
        return {}
    return {"by_source": {src: metrics([t for t, s in zip(truth, sources) if s == src],
                                       [p for p, s in zip(pred, sources) if s == src])
                          for src in sorted(set(sources))}}


def metrics(truth: list[str], pred: list[str]) -> dict[str, Any]:
    """UA (unweighted accuracy = mean per-class recall), WA (accuracy), macro-F1 over the true
    classes, per-class recall and the confusion matrix (rows: truth, columns: prediction)."""
    classes = sorted(set(truth) | set(pred))
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=int)
    for t, p in zip(truth, pred):
        matrix[index[t], index[p]] += 1
    true_classes = sorted(set(truth))
    recall, f1 = {}, []
    for c in true_classes:
        i = index[c]
        tp = matrix[i, i]
        r = tp / matrix[i].sum()
        precision = tp / matrix[:, i].sum() if matrix[:, i].sum() else 0.0
        recall[c] = float(r)
        f1.append(0.0 if tp == 0 else 2 * precision * r / (precision + r))
    return {
        "n": len(truth),
        "ua": float(np.mean(list(recall.values()))),
        "wa": float(np.trace(matrix) / max(1, matrix.sum())),
        "macro_f1": float(np.mean(f1)),
        "recall": recall,
        "classes": classes,
        "confusion": matrix.tolist(),
    }
