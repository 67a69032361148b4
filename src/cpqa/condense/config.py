"""The `condense` stage's configuration: every step of the paper's condensation, and ours."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..emotions import SENTIMENT_OF, Sentiment
from ..errors import CPQAError
from ..stage import BackendSpec, Config, StageConfig
from .rules import ConsistencyRule

SCORER_CAPABILITY = "selection-scorer"


class BalanceConfig(Config):
    """Balance the non-neutral emotions — the paper's six unless `sentiment_map` adds some —
    optionally × gender, over the segments with a reliable emotion only (those kept for other
    labels stay outside the balance). Within a group the best
    selection scores go first, ties broken by a seeded hash of the id, so the result is the same
    on every run and every restart."""

    enabled: bool = True
    target_size: int | None = Field(None, ge=1, description=(
        "Segments to keep in all. Groups share it equally; a group with fewer segments keeps all of "
        "them and leaves its share to the others. None: cut every group to the smallest group's size."))
    by_gender: bool = Field(False, description="Balance emotion × gender groups instead of emotions.")
    neutral: Literal["balance", "keep", "drop"] = Field("balance", description=(
        "Neutral segments: 'balance' treats neutral as one more group, 'keep' keeps them all outside "
        "the balance, 'drop' drops them."))
    seed: int = Field(0, description="Seed of the tie-breaking order.")


OtherLabel = Literal["content", "gender", "speakers"]
"""What a segment can be reliable for besides emotion (see `reliability`)."""


class WithoutEmotionConfig(Config):
    """Segments with no reliable emotion (every window abstained, none consistent, none recurring)
    are kept when they carry another label reliably, so that the QA types needing no emotion (C,
    DG, DS, CG, CS) have clips even from calm speech. They stay outside the emotion balance and
    carry no emotion downstream ("no clear emotion")."""

    keep_for: list[OtherLabel] = Field(default_factory=lambda: ["content", "gender", "speakers"], description=(
        "Keep a segment without a reliable emotion when it is reliable for any of these: 'content' (a "
        "confident transcript), 'gender' (a confident, not abstained gender), 'speakers' (a known "
        "speaker turn). Empty: drop such segments, as the paper does."))
    min_words: int = Field(3, ge=1, description="'content' needs at least this many transcribed words.")
    min_word_prob: float = Field(0.5, ge=0, le=1, description=(
        "'content' needs the mean ASR word probability (where words carry one) to reach this."))


class CondenseConfig(StageConfig):
    min_segment_duration_s: float = Field(1.0, ge=0, description="Drop segments shorter than this.")
    sentiment_map: dict[str, Sentiment] = Field(default_factory=lambda: dict(SENTIMENT_OF), description=(
        "Emotion → sentiment class (positive, neutral, ambiguous, negative); emotions not listed "
        "(other, unknown) are dropped."))
    x: float = Field(0.5, ge=0, le=1, description="Positive windows need valence ≥ x; neutral ones valence < x.")
    y: float = Field(0.4, ge=0, le=1, description="Negative windows need valence ≤ y; neutral ones valence > y.")
    ambiguous_min_score: float = Field(0.5, ge=0, le=1, description=(
        "Ambiguous windows (surprised) are kept on emotion confidence alone: score ≥ this."))
    min_windows: int = Field(2, ge=1, description="Occurrence k: an emotion held by ≥ k consistent windows is attributed.")
    min_window_share: float = Field(0.5, gt=0, le=1, description=(
        "Occurrence r: an emotion held by a share ≥ r of the segment's windows is attributed."))
    min_snr_db: float | None = Field(None, description="Quality gate: drop segments with a lower SNR (None: off).")
    min_dnsmos: float | None = Field(None, description="Quality gate: drop segments with a lower DNSMOS overall (None: off).")
    scorers: list[BackendSpec] = Field(default_factory=list, description=(
        "Selection scorers, each `{name: ..., weight: ..., option: ...}` (cpqa list backends, "
        f"capability '{SCORER_CAPABILITY}'). Their weighted sum orders segments for caps, balance and budget."))
    max_per_speaker: int | None = Field(None, ge=1, description="Keep at most this many segments per speaker of a recording.")
    max_per_recording: int | None = Field(None, ge=1, description="Keep at most this many segments per recording.")
    balance: BalanceConfig = Field(default_factory=BalanceConfig)
    without_emotion: WithoutEmotionConfig = Field(default_factory=WithoutEmotionConfig)
    budget_hours: float | None = Field(None, gt=0, description="Keep at most this many hours of speech (balanced order).")

    @field_validator("scorers", mode="before")
    @classmethod
    def _parse_scorers(cls, value: Any) -> list[BackendSpec]:
        try:
            return [BackendSpec.parse(SCORER_CAPABILITY, v) for v in value or []]
        except CPQAError as exc:
            raise ValueError(str(exc)) from exc

    @model_validator(mode="after")
    def _check_band(self) -> CondenseConfig:
        if not self.y < self.x:
            raise ValueError(f"the neutral band needs y < x (got x={self.x}, y={self.y})")
        return self

    def rule(self) -> ConsistencyRule:
        return ConsistencyRule(self.x, self.y, self.ambiguous_min_score, self.sentiment_map)

    def semantic_dict(self) -> dict[str, Any]:
        out = super().semantic_dict()
        out["scorers"] = [spec.semantic_dict() for spec in self.scorers]
        return out
