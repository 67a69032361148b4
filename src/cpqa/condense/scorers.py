"""Optional selection scorers: beyond the paper, they rank the segments worth most for CPQA.

Each scorer returns a score in 0..1 and a reason; the stage adds `weight × score` into the
segment's `Segment.selection` (score, reasons), and the score orders
segments wherever something must be cut (caps, balance, budget). `prepare()` sees every input
segment first (dropped ones included), for baselines and neighbours. Registered in `cpqa.catalog`
under the capability 'selection-scorer'; a recipe lists them as `scorers: [{name: confidence, weight: 1}]`.
"""

from __future__ import annotations

import math
from collections import defaultdict

from pydantic import Field

from ..stage import Config
from .analysis import SegmentSummary


class ScorerConfig(Config):
    weight: float = Field(1.0, ge=0, description="Multiplies the scorer's 0..1 score in the selection score.")


class Scorer:
    Config = ScorerConfig

    def __init__(self, config: ScorerConfig):
        self.config = config

    def prepare(self, summaries: list[SegmentSummary]) -> None:
        """Look at every input segment before scoring any."""

    def score(self, s: SegmentSummary) -> tuple[float, str]:
        raise NotImplementedError


class ConfidenceScorer(Scorer):
    """Mean confidence of the windows carrying the segment's emotion × ensemble agreement."""

    def score(self, s):
        value = s.confidence * s.agreement
        return value, f"confidence {s.confidence:.2f} × agreement {s.agreement:.2f}"


class ProsodyDeviationScorer(Scorer):
    """Distance of pitch, rate and loudness from the speaker's own baseline ("higher than usual")."""

    class Config(ScorerConfig):
        features: dict[str, str | None] = Field(
            default_factory=lambda: {"pitch_mean_hz": "pitch_z", "speaking_rate_wps": "speaking_rate_z",
                                     "loudness_lufs": "loudness_z"},
            description="Feature label → the label holding its z-score against the speaker's baseline when "
                        "annotate wrote one (else the z-score is computed here from the speaker's segments).")
        z_cap: float = Field(3.0, gt=0, description="|z| at which the score reaches 1.")
        min_segments: int = Field(3, ge=2, description="A speaker needs this many segments for a baseline.")

    def prepare(self, summaries):
        values: dict[tuple[str, str], list[float]] = defaultdict(list)
        for s in summaries:
            for feature in self.config.features:
                if feature in s.numbers:
                    values[(s.speaker, feature)].append(s.numbers[feature])
        self.baseline: dict[tuple[str, str], tuple[float, float]] = {}
        for key, xs in values.items():
            if len(xs) >= self.config.min_segments:
                mean = sum(xs) / len(xs)
                std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
                if std > 0:
                    self.baseline[key] = (mean, std)

    def _z(self, s: SegmentSummary, feature: str, z_label: str | None) -> float | None:
        if z_label and z_label in s.numbers:
            return s.numbers[z_label]
        if feature in s.numbers and (s.speaker, feature) in self.baseline:
            mean, std = self.baseline[(s.speaker, feature)]
            return (s.numbers[feature] - mean) / std
        return None

    def score(self, s):
        zs = {f: z for f, label in self.config.features.items() if (z := self._z(s, f, label)) is not None}
        if not zs:
            return 0.0, ""
        feature = max(zs, key=lambda f: abs(zs[f]))
        return min(1.0, abs(zs[feature]) / self.config.z_cap), f"{feature} {zs[feature]:+.1f} sd from the speaker's baseline"


class VoiceTextMismatchScorer(Scorer):
    """Vocal sentiment against text sentiment: sarcasm-like cases are the most valuable for CPQA."""

    class Config(ScorerConfig):
        min_text_sentiment: float = Field(0.3, gt=0, le=1, description=(
            "|text sentiment| (-1..1) from which an opposite vocal sentiment counts as a mismatch."))

    def score(self, s):
        text = s.text_sentiment
        if text is None or s.sentiment not in ("positive", "negative"):
            return 0.0, ""
        opposite = text <= -self.config.min_text_sentiment if s.sentiment == "positive" else text >= self.config.min_text_sentiment
        if not opposite:
            return 0.0, ""
        return min(1.0, abs(text)), f"voice {s.sentiment} ({s.emotion}), text {text:+.2f}"


class EmotionChangeScorer(Scorer):
    """The emotion differs from the previous segment of the recording with a reliable emotion
    (one condensation attributed; annotate's own labels are not trusted here): a contextual cue."""

    def prepare(self, summaries):
        self.previous: dict[str, str] = {}
        last: dict[str, str] = {}
        for s in sorted(summaries, key=lambda s: (s.recording_id, s.start, s.order)):
            emotion = s.emotion
            if emotion is None:
                continue
            if s.recording_id in last:
                self.previous[s.id] = last[s.recording_id]
            last[s.recording_id] = emotion

    def score(self, s):
        before = self.previous.get(s.id)
        if before is None or s.emotion is None or before == s.emotion:
            return 0.0, ""
        return 1.0, f"emotion change {before} → {s.emotion}"
