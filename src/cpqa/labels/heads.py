"""Probe heads: a linear classifier on pooled encoder features, stored as a small .npz file and run
with numpy only.

A head file holds `mean`, `scale` (feature standardisation), `coef` `[classes, dim]` (one row for a
binary head), `intercept`, and `meta`: a JSON string with the class labels, the encoder, pooling,
window layout, feature normalisation and a record of the training data and scores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CPQAError

HEAD_FORMAT = 1
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
    def model_id(self) -> str:
        """`name@encoder`: the model a label it gives is recorded under."""
        return f"{self.name}@{self.encoder}"

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities `[n, classes]` for pooled features `[n, dim]` (already speaker-
        normalised when the head says `normalize: speaker`)."""
        features = np.atleast_2d(np.asarray(features, dtype=np.float64))
        if features.shape[1] != self.mean.shape[0]:
            raise CPQAError(f"head '{self.name}' expects {self.mean.shape[0]} features, got {features.shape[1]}")
        z = (features - self.mean) / self.scale
        logits = z @ self.coef.T + self.intercept
        if logits.shape[1] == 1:  # a binary head stores the logit of its second class
            logits = np.concatenate([np.zeros_like(logits), logits], axis=1)
        return softmax(logits)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {**self.meta, "labels": self.labels, "format": HEAD_FORMAT}
        with open(path, "wb") as f:
            np.savez_compressed(f, mean=self.mean.astype(np.float32), scale=self.scale.astype(np.float32),
                                coef=self.coef.astype(np.float32), intercept=self.intercept.astype(np.float32),
                                meta=np.array(json.dumps(meta, sort_keys=True)))
        return path

    @classmethod
    def load(cls, path: str | Path) -> ProbeHead:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                arrays = {k: data[k].astype(np.float64) for k in ("mean", "scale", "coef", "intercept")}
        except (OSError, KeyError, ValueError) as exc:
            raise CPQAError(f"{path} is not a cpqa probe head (.npz with mean, scale, coef, intercept, meta): {exc}") from exc
        if meta.get("format") != HEAD_FORMAT:
            raise CPQAError(f"{path}: probe head format {meta.get('format')} is not supported (expected {HEAD_FORMAT})")
        return cls(labels=list(meta.pop("labels")), meta=meta, **arrays)
