"""The emotion vocabulary: the classes every emotion backend reports in (emotion2vec+'s nine) and
the sentiment of each emotion (docs/design.md §1.3). Annotation maps emotion posteriors onto
sentiment with it, condensation's consistency rule checks valence against it, QA matches empathy
words to it; `other` and `unknown` have no sentiment."""

from __future__ import annotations

from typing import Literal

EMOTIONS = ("angry", "disgusted", "fearful", "happy", "neutral", "other", "sad", "surprised", "unknown")

Sentiment = Literal["positive", "neutral", "ambiguous", "negative"]

SENTIMENT_OF: dict[str, Sentiment] = {
    "happy": "positive",
    "neutral": "neutral",
    "surprised": "ambiguous",
    "angry": "negative",
    "disgusted": "negative",
    "fearful": "negative",
    "sad": "negative",
}
