"""Probe heads: a linear classifier on pooled encoder features, stored as a small .npz file and run
with numpy only.

A head file holds `mean`, `scale` (feature standardisation), `coef` `[classes, dim]` (one row for a
binary head), `intercept`, and `meta`: a JSON string with the class labels, the encoder, pooling,
window layout, feature normalisation and a record of the training data and scores. A calibrated
head also holds `prior_shift` (log target prior minus log training prior, per class), `ood_mean`,
`ood_axes` and `ood_std` (the training windows' mean, principal axes and spread along them) and in
`meta` its `temperature`, `ood_threshold`, `ood_residual_scale` and `min_confidence`
(`cpqa.labels.calibration`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CPQAError
from ..io_atomic import atomic_path

HEAD_FORMAT = 1
_OPTIONAL = ("prior_shift", "ood_mean", "ood_axes", "ood_std")
SPEAKER_NORM_EPS = 1e-3


def builtin_head(name: str) -> Path:
    """Path of a head shipped in `cpqa/labels/heads/` (e.g. 'emotion', 'gender')."""
    path = Path(str(resources.files("cpqa.labels") / "heads" / f"{name}.npz"))
    if not path.exists():
        raise CPQAError(f"no shipped probe head '{name}' ({path})")
    return path


def resolve_head(name_or_path: str) -> Path:
    """A shipped head by name (`builtin:emotion`) or a path to a .npz head file."""
    if name_or_path.startswith("builtin:"):
        return builtin_head(name_or_path.split(":", 1)[1])
    path = Path(name_or_path)
    if not path.exists():
        raise CPQAError(f"probe head {path} does not exist (shipped heads are named like 'builtin:emotion')")
    return path


def speaker_normalize(features: np.ndarray, groups: list[Any]) -> np.ndarray:
    """Standardise each feature within each group (speaker): (x - group mean) / group std."""
    out = np.empty_like(features, dtype=np.float64)
    keys = np.asarray([str(g) for g in groups])
    for key in np.unique(keys):
        rows = keys == key
        block = features[rows].astype(np.float64)
        out[rows] = (block - block.mean(axis=0)) / (block.std(axis=0) + SPEAKER_NORM_EPS)
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class ProbeHead:
    labels: list[str]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    prior_shift: np.ndarray | None = None
    ood_mean: np.ndarray | None = None
    ood_axes: np.ndarray | None = None
    """The training windows' principal axes `[k, dim]` (orthonormal), in standardised feature space."""
    ood_std: np.ndarray | None = None
    """The training windows' spread along each axis."""

    @property
    def temperature(self) -> float:
        return float(self.meta.get("temperature", 1.0))

    @property
    def min_confidence(self) -> float | None:
        """The confidence below which this head's label is an abstention (chosen in training)."""
        return self.meta.get("min_confidence")

    @property
    def name(self) -> str:
        return self.meta.get("name", "probe")

    @property
    def normalize(self) -> str:
        return self.meta.get("normalize", "none")

    @property
    def pooling(self) -> str:
        return self.meta.get("pooling", "mean")

    @property
    def encoder(self) -> str:
        return self.meta.get("encoder", "embedded:base")

    @property
    def acoustic(self) -> bool:
        """Whether the head also reads the window's `labels.acoustic` features (after the pooled ones)."""
        return bool(self.meta.get("acoustic", False))

    @property
    def model_id(self) -> str:
        """`name@encoder`: the model a label it gives is recorded under."""
        return f"{self.name}@{self.encoder}"

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities `[n, classes]` for pooled features `[n, dim]` (already speaker-
        normalised when the head says `normalize: speaker`)."""
        return softmax(self.logits(features))

    def standardised(self, features: np.ndarray) -> np.ndarray:
        """Features `[n, dim]` standardised as in training; a NaN (a measure not made) reads as the mean."""
        features = np.atleast_2d(np.asarray(features, dtype=np.float64))
        if features.shape[1] != self.mean.shape[0]:
            raise CPQAError(f"head '{self.name}' expects {self.mean.shape[0]} features, got {features.shape[1]}")
        return np.nan_to_num((features - self.mean) / self.scale, nan=0.0)

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Calibrated logits: temperature-scaled, shifted to the target class prior."""
        logits = self.standardised(features) @ self.coef.T + self.intercept
        if logits.shape[1] == 1:  # a binary head stores the logit of its second class
            logits = np.concatenate([np.zeros_like(logits), logits], axis=1)
        return self.calibrated(logits)

    def calibrated(self, raw_logits: np.ndarray) -> np.ndarray:
        """Raw logits `[n, classes]` temperature-scaled and shifted to the target class prior."""
        logits = raw_logits / self.temperature
        return logits + self.prior_shift if self.prior_shift is not None else logits

    def ood_distance(self, features: np.ndarray) -> np.ndarray | None:
        """How far each feature row lies from the training windows, about 1 for training-like ones:
        the larger of the mean squared whitened coordinate on the training's principal axes and the
        energy off those axes relative to the training's (a window unlike speech, e.g. noise, lies
        off them); None for a head without the statistics."""
        if self.ood_axes is None or self.ood_mean is None or self.ood_std is None:
            return None
        centred = self.standardised(features) - self.ood_mean
        on_axes = centred @ self.ood_axes.T
        within = ((on_axes / self.ood_std) ** 2).mean(axis=1)
        scale = self.meta.get("ood_residual_scale")
        if scale is None:  # the axes span the whole feature space
            return within
        return np.maximum(within, ((centred ** 2).sum(axis=1) - (on_axes ** 2).sum(axis=1)) / scale)

    def out_of_distribution(self, features: np.ndarray) -> np.ndarray:
        """Per row: farther from the training windows than `meta.ood_threshold` allows."""
        distance = self.ood_distance(features)
        threshold = self.meta.get("ood_threshold")
        if distance is None or threshold is None:
            return np.zeros(len(np.atleast_2d(features)), dtype=bool)
        return distance > threshold

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        meta = {**self.meta, "labels": self.labels, "format": HEAD_FORMAT}
        optional = {k: getattr(self, k).astype(np.float32) for k in _OPTIONAL if getattr(self, k) is not None}
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, mean=self.mean.astype(np.float32), scale=self.scale.astype(np.float32),
                                coef=self.coef.astype(np.float32), intercept=self.intercept.astype(np.float32),
                                meta=np.array(json.dumps(meta, sort_keys=True)), **optional)
        return path

    @classmethod
    def load(cls, path: str | Path) -> ProbeHead:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                arrays = {k: data[k].astype(np.float64) for k in ("mean", "scale", "coef", "intercept")}
                arrays.update({k: data[k].astype(np.float64) for k in _OPTIONAL if k in data})
        except (OSError, KeyError, ValueError) as exc:
            raise CPQAError(f"{path} is not a cpqa probe head (.npz with mean, scale, coef, intercept, meta): {exc}") from exc
        if meta.get("format") != HEAD_FORMAT:
            raise CPQAError(f"{path}: probe head format {meta.get('format')} is not supported (expected {HEAD_FORMAT})")
        return cls(labels=list(meta.pop("labels")), meta=meta, **arrays)


class RegressionHead(ProbeHead):
    """A linear regression head (ridge, standardised inputs): `labels` name its outputs (e.g.
    valence, arousal, dominance), each predicted on a 0..1 scale. A NaN input (a measure that could
    not be made) reads as the training mean."""

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.clip(self.standardised(features) @ self.coef.T + self.intercept, 0.0, 1.0)
