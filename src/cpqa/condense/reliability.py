"""Who speaks in a segment, with which voice, and which of its labels can be trusted.

A kept segment records what it is reliable for (`Segment.condense.reliable_for`):
- 'emotion': condensation attributed an emotion to it (its windows passed the emotion–valence
  agreement check and recur, see `rules`); decided by `analysis`, not here;
- 'gender': a gender that did not abstain — the speaker-pooled label the annotate stage writes
  (`labels["gender"] = {"label", "score", "model", "pooled_over": "speaker"}`), else one the
  manifest gave (`metadata["gender"]`);
- 'speakers': a known speaker turn (diarized or given), so clips of such segments can say who
  speaks and how many;
- 'content': a transcript of at least `min_words` words whose mean ASR word probability (where
  the words carry one) reaches `min_word_prob`.
"""

from __future__ import annotations

from collections import Counter
from typing import get_args

from ..record_parts import label_of
from ..records import Segment
from ..vocabulary import UNKNOWN
from .config import OtherLabel, WithoutEmotionConfig

RELIABLE_LABELS = tuple(sorted(("emotion", *get_args(OtherLabel))))
"""content, emotion, gender, speakers: emotion and the other labels a segment can be kept for."""


def speaker_of(segment: Segment) -> str:
    """The segment's speaker, else its words' most common speaker, else 'unknown'."""
    return segment.speaker or _most_common(w.speaker for w in segment.words) or UNKNOWN


def segment_gender(segment: Segment) -> str | None:
    """The gender the segment's own labels give: its (speaker-pooled) gender label, else the
    manifest's; None when neither gives one — an abstained label gives none."""
    label = label_of(segment.labels, "gender")
    given = segment.metadata.get("gender")
    return (label.category if label else None) or (given if isinstance(given, str) and given else None)


def gender_of(segment: Segment) -> str:
    """`segment_gender`, else (only where no gender label exists, abstained or not) its words'
    most common gender tag, else 'unknown'."""
    label = label_of(segment.labels, "gender")
    abstained = label is not None and label.is_abstained
    words = None if abstained else _most_common(w.gender for w in segment.words)
    return segment_gender(segment) or words or UNKNOWN


def reliable_for(segment: Segment, config: WithoutEmotionConfig) -> list[str]:
    """The labels besides emotion this segment carries reliably (see the module docstring)."""
    out = []
    if _content_reliable(segment, config):
        out.append("content")
    if segment_gender(segment) is not None:
        out.append("gender")
    if segment.speaker or (segment.words and all(w.speaker for w in segment.words)):
        out.append("speakers")
    return out


def _content_reliable(segment: Segment, config: WithoutEmotionConfig) -> bool:
    n_words = len(segment.words) if segment.words else len(segment.text.split())
    if n_words < config.min_words:
        return False
    probs = [w.prob for w in segment.words if w.prob is not None]
    return not probs or sum(probs) / len(probs) >= config.min_word_prob


def _most_common(values) -> str | None:
    counts = Counter(v for v in values if v)
    return counts.most_common(1)[0][0] if counts else None
