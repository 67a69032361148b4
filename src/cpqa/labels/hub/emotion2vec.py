"""emotion2vec+ (seed/base/large) through FunASR, and an ensemble of any emotion backends by
probability averaging (the paper's three-model emotion2vec+ ensemble, docs/design.md §1.2)."""

from __future__ import annotations

from functools import cached_property

import numpy as np
from pydantic import Field, field_validator

from ...emotions import EMOTIONS
from ...errors import CPQAError, require
from ...reasons import ALL_MEMBERS_SKIPPED
from ...requirements import Package, Requirement
from ...stage import BackendSpec, Config
from ..protocols import AudioWindow, CategoricalResult
from .batching import HubConfig, duration_batches, to_emotion2vec

MIN_SAMPLES = 1600
"""emotion2vec needs about 0.1 s of audio; shorter windows are zero-padded to it."""


class Emotion2VecEmotion:
    """emotion2vec+ via FunASR (`iic/emotion2vec_plus_large` by default; seed and base too)."""

    class Config(HubConfig):
        model: str = "iic/emotion2vec_plus_large"
        hub: str = Field("hf", description="Where FunASR downloads the model from: hf or ms (ModelScope).")

        def requirements(self) -> list[Requirement]:
            return [Package("funasr", "gpu")]

    def __init__(self, config: Config):
        self.config = config
        self.model_name = config.model

    @cached_property
    def model(self):
        funasr = require("funasr", "gpu")
        try:
            return funasr.AutoModel(model=self.config.model, hub=self.config.hub, device=self.config.device,
                                    disable_update=True)
        except Exception as exc:  # FunASR raises bare exceptions for unknown or unreachable models
            raise CPQAError(f"FunASR cannot load '{self.config.model}' from hub '{self.config.hub}': {exc}") from exc

    def predict(self, windows: list[AudioWindow]) -> list[CategoricalResult]:
        out: list[CategoricalResult | None] = [None] * len(windows)
        for batch in duration_batches(windows, self.config.batch_seconds):
            signals = []
            for i in batch:
                samples = windows[i].samples()
                signals.append(np.pad(samples, (0, max(0, MIN_SAMPLES - len(samples)))))
            results = self.model.generate(signals, granularity="utterance", extract_embedding=False,
                                          batch_size=len(signals))
            for i, result in zip(batch, results):
                out[i] = parse_funasr_result(result)
        return out  # type: ignore[return-value]


def parse_funasr_result(result: dict) -> CategoricalResult:
    """FunASR's {'labels': ['生气/angry', ...], 'scores': [...]} as emotion2vec probabilities."""
    probs = {name: 0.0 for name in EMOTIONS}
    for label, score in zip(result["labels"], result["scores"]):
        probs[to_emotion2vec(label)] += float(score)
    total = sum(probs.values()) or 1.0
    return CategoricalResult.from_probs({k: v / total for k, v in probs.items()})


class EnsembleEmotion:
    """Probability average of several emotion backends (e.g. emotion2vec+ seed, base and large)."""

    class Config(Config):
        members: list[BackendSpec] = Field(..., min_length=2, description="Emotion backends, each {name: ...}.")
        weights: list[float] | None = Field(None, description="One weight per member (default equal).")

        @field_validator("members", mode="before")
        @classmethod
        def _members(cls, value):
            if not isinstance(value, list):
                raise ValueError("members is a list of emotion backends")
            try:
                return [BackendSpec.parse("emotion", v) for v in value]
            except CPQAError as exc:
                raise ValueError(str(exc)) from exc

        def semantic_dict(self):
            return {"members": [m.semantic_dict() for m in self.members], "weights": self.weights}

    def __init__(self, config: Config):
        if config.weights is not None and len(config.weights) != len(config.members):
            raise CPQAError("ensemble: give one weight per member")
        self.config = config
        self.members = [m.build() for m in config.members]
        self.weights = config.weights or [1.0] * len(self.members)
        self.model_name = "ensemble(" + ",".join(m.model_name for m in self.members) + ")"

    def predict(self, windows: list[AudioWindow]) -> list[CategoricalResult]:
        per_member = [m.predict(windows) for m in self.members]
        out = []
        for results in zip(*per_member):
            kept = [(r, w) for r, w in zip(results, self.weights) if not r.skipped and r.probs]
            if not kept:
                out.append(CategoricalResult(skipped=True, skip_reason=ALL_MEMBERS_SKIPPED))
                continue
            total = sum(w for _, w in kept)
            probs: dict[str, float] = {}
            for r, w in kept:
                for label, p in r.probs.items():
                    probs[label] = probs.get(label, 0.0) + w * p / total
            out.append(CategoricalResult.from_probs(probs))
        return out
