"""Tolerant readers for the label shapes written by the annotate stage.

Condensation must not break when a backend writes a label slightly differently, so every read
goes through these helpers. Accepted shapes:

- a number: `0.62`, or a dict carrying it: `{"value": 0.62, "model": "...", ...}`;
- a category: `"female"`, or a dict carrying it: `{"label": "female", "score": 0.97, "model": ...}`;
- an emotion prediction (a window's `emotion` or `labels["emotion"]`): `"happy"` or
  `{"label": "happy", "score": 0.8, "probs": {"happy": 0.8, ...}, "model": ...}`, optionally with
  `members: [{"label", "score", "model"}, ...]` listing the ensemble members' own predictions;
  an abstention `{"label": None, "abstained": True, "reason": "low-confidence", "score", "probs",
  "model"}` or the word tag `"no clear emotion"` reads as no label with `abstained=True`, never
  as a class (a label it still carries is ignored);
- an abstained category (e.g. a pooled gender the model could not tell, `{"label": None,
  "abstained": True, ...}`) reads as None from `category` and True from `abstained`;
- text sentiment (`labels["text_sentiment"]`): a VADER compound score in -1..1 — a number,
  `{"compound": ...}` (what annotate writes) or `{"value": ...}` — or only a category
  `positive | neutral | negative` (read as +1, 0, -1);
- DNSMOS (`labels["dnsmos"]`): a number (the overall MOS) or a dict with one of
  `ovrl`, `OVRL`, `ovrl_mos`, `overall`, `value`.

A value that is absent or of an unexpected shape reads as None; callers decide what None means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..vocabulary import NO_CLEAR_EMOTION

_TEXT_SENTIMENT_OF_LABEL = {"positive": 1.0, "neutral": 0.0, "negative": -1.0}
_DNSMOS_KEYS = ("ovrl", "OVRL", "ovrl_mos", "overall", "value")


def number(value: Any) -> float | None:
    """A plain number or the `value` of a dict, as float; None otherwise (bools are not numbers)."""
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def category(value: Any) -> str | None:
    """A plain string or the `label` of a dict; None otherwise (and for an abstention)."""
    if abstained(value):
        return None
    if isinstance(value, dict):
        value = value.get("label")
    return value if isinstance(value, str) and value else None


def abstained(value: Any) -> bool:
    """Whether a prediction says its model abstained (`abstained: true`, or the tag 'no clear emotion')."""
    if isinstance(value, dict):
        return value.get("abstained") is True
    return value == NO_CLEAR_EMOTION


def label_number(labels: dict[str, Any], key: str) -> float | None:
    return number(labels.get(key))


def label_category(labels: dict[str, Any], key: str) -> str | None:
    return category(labels.get(key))


@dataclass(frozen=True)
class EmotionPrediction:
    label: str | None
    score: float | None = None
    probs: dict[str, float] = field(default_factory=dict)
    member_labels: tuple[str, ...] = ()
    """The labels of the ensemble members, when the prediction lists them."""
    abstained: bool = False
    """The model abstained: `label` is None and `score` its (too low) top probability."""
    abstain_reason: str | None = None
    """Why it abstained (`vocabulary.ABSTAIN_*`), when it says."""


def emotion(value: Any) -> EmotionPrediction:
    """Read an emotion prediction; the score falls back to `probs[label]` when absent."""
    if isinstance(value, str):
        return EmotionPrediction(None, abstained=True) if abstained(value) else EmotionPrediction(value)
    if not isinstance(value, dict):
        return EmotionPrediction(None)
    probs = {k: float(v) for k, v in (value.get("probs") or {}).items() if number(v) is not None}
    score = number(value.get("score"))
    if abstained(value):
        reason = value.get("reason")
        return EmotionPrediction(None, score, probs, abstained=True, abstain_reason=reason if isinstance(reason, str) else None)
    label = category(value)
    if score is None and label is not None:
        score = probs.get(label)
    members = tuple(m for m in (category(m) for m in value.get("members") or []) if m)
    return EmotionPrediction(label, score, probs, members)


def text_sentiment(labels: dict[str, Any]) -> float | None:
    """Text sentiment in -1..1 (see the module docstring for the accepted shapes)."""
    value = labels.get("text_sentiment")
    score = number(value.get("compound", value.get("value"))) if isinstance(value, dict) else number(value)
    if score is not None:
        return max(-1.0, min(1.0, score))
    name = category(value)
    return _TEXT_SENTIMENT_OF_LABEL.get(name.lower()) if name else None


def dnsmos_overall(labels: dict[str, Any]) -> float | None:
    value = labels.get("dnsmos")
    if isinstance(value, dict):
        for key in _DNSMOS_KEYS:
            if number(value.get(key)) is not None:
                return number(value.get(key))
        return None
    return number(value)
