"""The typed parts records carry between stages (docs/design.md §2): labels with their provenance
and confidence, what condensation and clip selection decided, speaker turns, QA filter verdicts.

A part is written with the fields it was given only (a field never set is left out, not written as
null), so a part read from a run is written back unchanged and the JSON stays as cpqa wrote it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_serializer

from .vocabulary import NO_CLEAR_EMOTION


class Part(BaseModel):
    """Base of the parts: unknown keys are rejected; unset fields are not written."""

    model_config = ConfigDict(extra="forbid")

    @model_serializer(mode="wrap")
    def _given_fields(self, handler) -> dict[str, Any]:
        given = self.model_fields_set | set(self.model_extra or ())
        return {k: v for k, v in handler(self).items() if k in given}


class Label(Part):
    """One label: a number (`value`) or a class (`label`, its `probs`), from `model`, with a
    confidence `score`. A categorical model that cannot tell abstains: `label` None, `abstained`
    true, `reason` one of `vocabulary.ABSTAIN_*`. Measurements of one kind of label (a pause count,
    the speakers counted, DNSMOS's sub-scores, an event's times) are extra keys."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    score: float | None = None
    value: int | float | None = None
    label: str | None = None
    abstained: bool | None = None
    reason: str | None = None
    probs: dict[str, float] | None = None
    min_confidence: float | None = None
    """The threshold the decision used: below it the model abstained."""
    members: list[Label] | None = None
    """The ensemble members' own predictions, where the label pools several models."""
    compound: float | None = None
    """Text sentiment: VADER's compound score, -1..1."""

    @property
    def is_abstained(self) -> bool:
        return self.abstained is True

    @property
    def category(self) -> str | None:
        """The class; None when the model abstained or gave none."""
        return None if self.is_abstained else self.label

    def extra(self, key: str) -> Any:
        """What this kind of label carries under `key` beyond the common fields (e.g. DNSMOS's
        `ovrl_mos`); None when absent."""
        return (self.model_extra or {}).get(key)


Labels = dict[str, Label | list[Label]]
"""A segment's labels by name (`emotion`, `gender`, `valence`, `snr_db`, ...; `events` is a list)."""
LABELS = TypeAdapter(Labels)
"""Reads labels given in their JSON shape (dicts) into `Label`s."""


def label_of(labels: Labels, name: str) -> Label | None:
    value = labels.get(name)
    return value if isinstance(value, Label) else None


def word_emotion(label: Label | None) -> str | None:
    """The tag a word under this window emotion carries: its class, NO_CLEAR_EMOTION where the model
    abstained, None where there is no prediction."""
    if label is None:
        return None
    return label.category or NO_CLEAR_EMOTION


class DroppedWindow(Part):
    start: float
    end: float
    emotion: str | None
    score: float | None
    valence: float | None
    reason: str


class CondenseRule(Part):
    x: float
    y: float
    ambiguous_min_score: float
    min_windows: int
    min_window_share: float


class Condensation(Part):
    """What condensation decided about a kept segment (`cpqa.condense.condense`)."""

    emotion: str | None
    """The attributed emotion; None: the segment holds no reliable emotion."""
    sentiment: str | None
    reliable_for: list[str]
    """Of content, emotion, gender, speakers (`cpqa.condense.reliability`)."""
    kept_for: list[str]
    no_emotion_reason: str | None = None
    no_emotion_detail: str | None = None
    recording_has_reliable_emotion: bool
    qualifying: dict[str, int]
    window_counts: dict[str, int]
    windows_total: int
    windows_kept: int
    dropped_windows: list[DroppedWindow]
    rule: CondenseRule


class Selection(Part):
    """A segment's selection score (the weighted scorers) and the scorers' reasons."""

    score: float
    reasons: list[str]


class ClipSelection(Part):
    """Why a clip was cut as it was: its segments' mean selection score and reasons, their
    emotions, what all or any of them are reliable for, and its padding (empty for clips made
    elsewhere)."""

    score: float = 0.0
    reasons: list[str] = Field(default_factory=list)
    emotions: dict[str, int] = Field(default_factory=dict)
    reliable_for_any: list[str] = Field(default_factory=list)
    reliable_for_all: list[str] = Field(default_factory=list)
    short: bool = False
    padded_s: float = 0.0
    untranscribed_s: float = 0.0


class SpeakerTurn(Part):
    """One speaker's turn in a recording (diarization or a given RTTM)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: float
    end: float
    speaker: str

    def __init__(self, start: float, end: float, speaker: str):  # a turn is written Turn(0.0, 2.5, "A") in code
        super().__init__(start=start, end=end, speaker=speaker)


class Diarization(Part):
    """Which model gave a recording's speaker turns and how many speakers it found; or why it
    could not (`skipped`, `reason`)."""

    model: str
    speaker_count: int | None = None
    skipped: bool | None = None
    reason: str | None = None


class QAFilters(Part):
    """A QA item's filter verdicts (`cpqa.qa.filters`): `passed` false with the `reasons` of the
    filters that drop it, `flags` of those that only flag, a detail per reason or flag, and the
    model checks' own results."""

    passed: bool = True
    reasons: list[str] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)
    details: dict[str, str] = Field(default_factory=dict)
    text_only: dict[str, Any] | None = None
    """The text-only model's answer and rating (`cpqa.qa.answerability`), or its error."""
    retyped_from: str | None = None
    type_judge: dict[str, Any] | None = None
    speech_llm: dict[str, Any] | None = None
    """The speech-LLM check's answer and verdict (`cpqa.qa.speech_check`)."""


class Generator(Part):
    """Where a QA item comes from: the backend, model and prompt version, the raw reply, and its
    attempts (`cpqa.qa.regenerate`); a human item names `human` and its reviewer."""

    model: str | None = None
    backend: str | None = None
    prompt_version: str | None = None
    raw_output: str | None = None
    temperature: float | None = None
    seed: int | None = None
    attempt: int | None = None
    attempts: list[dict[str, Any]] | None = None
    reviewer: str | None = None
