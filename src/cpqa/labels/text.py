"""Text sentiment of a transcript (VADER), so later stages can find voice–text mismatch."""

from __future__ import annotations

from functools import lru_cache

from ..errors import require

TEXT_SENTIMENT_MODEL = "vader-3.3"
VADER_THRESHOLD = 0.05
"""VADER's own convention: compound ≥ 0.05 is positive, ≤ −0.05 negative, else neutral."""


@lru_cache(maxsize=1)
def _analyzer():
    return require("vaderSentiment.vaderSentiment", "labels", "vadersentiment").SentimentIntensityAnalyzer()


def text_sentiment(text: str) -> dict | None:
    """{label, score, compound, model}; score is |compound| (0 for empty text → None)."""
    if not text.strip():
        return None
    compound = float(_analyzer().polarity_scores(text)["compound"])
    if compound >= VADER_THRESHOLD:
        label = "positive"
    elif compound <= -VADER_THRESHOLD:
        label = "negative"
    else:
        label = "neutral"
    return {"label": label, "score": round(abs(compound), 4), "compound": round(compound, 4),
            "model": TEXT_SENTIMENT_MODEL}
