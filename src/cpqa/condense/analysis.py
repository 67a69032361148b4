"""Per-segment condensation: length, quality gates, window consistency and occurrence.

`analyse` is pure and cheap, so the stage runs it twice: once in `fit()` to make the global
decisions from small `SegmentSummary`s, and again when it writes each kept segment (rather than
holding every segment's windows in memory between the two).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..records import Segment, Window
from . import accessors
from .accessors import EmotionPrediction
from .config import CondenseConfig
from .rules import Occurrence, attribute

TOO_SHORT = "too_short"
LOW_SNR = "low_snr"
LOW_DNSMOS = "low_dnsmos"
NO_WINDOWS = "no_windows"
NO_CONSISTENT_WINDOW = "no_consistent_window"
NO_DOMINANT_EMOTION = "no_dominant_emotion"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class WindowVerdict:
    window: Window
    prediction: EmotionPrediction
    reason: str | None
    """Why the window is dropped; None when it is kept."""

    def as_dropped(self) -> dict:
        return {"start": self.window.start, "end": self.window.end, "emotion": self.prediction.label,
                "score": self.prediction.score, "valence": self.window.valence, "reason": self.reason}


@dataclass
class SegmentAnalysis:
    verdicts: list[WindowVerdict]
    occurrence: Occurrence
    drop_reason: str | None = None
    drop_detail: str = ""

    @property
    def kept(self) -> list[WindowVerdict]:
        return [v for v in self.verdicts if v.reason is None]


def analyse(segment: Segment, config: CondenseConfig) -> SegmentAnalysis:
    rule = config.rule()
    verdicts = []
    for window in segment.windows:
        prediction = accessors.emotion(window.emotion)
        verdicts.append(WindowVerdict(window, prediction, rule.drop_reason(prediction.label, prediction.score,
                                                                           window.valence)))
    kept = [(v.prediction.label, v.prediction.score) for v in verdicts if v.reason is None]
    occurrence = attribute(kept, len(verdicts), config.min_windows, config.min_window_share)
    analysis = SegmentAnalysis(verdicts, occurrence)
    analysis.drop_reason, analysis.drop_detail = _first_failure(segment, config, analysis)
    return analysis


def _first_failure(segment: Segment, config: CondenseConfig, analysis: SegmentAnalysis) -> tuple[str | None, str]:
    if segment.duration < config.min_segment_duration_s:
        return TOO_SHORT, f"duration {segment.duration:.2f} s < {config.min_segment_duration_s} s"
    snr_db = accessors.label_number(segment.labels, "snr_db")
    if config.min_snr_db is not None and snr_db is not None and snr_db < config.min_snr_db:
        return LOW_SNR, f"snr {snr_db:.1f} dB < {config.min_snr_db} dB"
    dnsmos = accessors.dnsmos_overall(segment.labels)
    if config.min_dnsmos is not None and dnsmos is not None and dnsmos < config.min_dnsmos:
        return LOW_DNSMOS, f"dnsmos {dnsmos:.2f} < {config.min_dnsmos}"
    if not analysis.verdicts:
        return NO_WINDOWS, "the segment has no analysis windows"
    n = len(analysis.verdicts)
    if not analysis.kept:
        reasons = Counter(v.reason for v in analysis.verdicts)
        return NO_CONSISTENT_WINDOW, f"0 of {n} windows consistent ({_counts(reasons)})"
    if analysis.occurrence.emotion is None:
        return NO_DOMINANT_EMOTION, (
            f"consistent windows {_counts(analysis.occurrence.counts)} of {n}: none reaches "
            f"{config.min_windows} windows or {config.min_window_share:.0%}")
    return None, ""


def _counts(counts) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))


@dataclass
class SegmentSummary:
    """What the global steps (scorers, caps, balance, budget, statistics) need of one segment."""

    id: str
    recording_id: str
    order: int
    start: float
    end: float
    speaker: str
    """`recording_id/speaker`: diarization labels are only unique within a recording."""
    gender: str
    label_emotion: str | None
    """The segment-level emotion label from annotate (before condensation)."""
    emotion: str | None
    """The attributed emotion (None when the segment is dropped before attribution)."""
    sentiment: str | None
    confidence: float
    agreement: float
    numbers: dict[str, float]
    text_sentiment: float | None
    drop_reason: str | None
    drop_detail: str
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.end - self.start


def summarise(segment: Segment, analysis: SegmentAnalysis, order: int, config: CondenseConfig) -> SegmentSummary:
    emotion = analysis.occurrence.emotion
    carrying = [v.prediction for v in analysis.kept if v.prediction.label == emotion]
    confidence = sum(p.score or 0.0 for p in carrying) / len(carrying) if carrying else 0.0
    agreement = (sum(_member_agreement(p) for p in carrying) / len(carrying)) if carrying else 0.0
    numbers = {k: n for k in segment.labels if (n := accessors.label_number(segment.labels, k)) is not None}
    return SegmentSummary(
        id=segment.id, recording_id=segment.recording_id, order=order, start=segment.start, end=segment.end,
        speaker=f"{segment.recording_id}/{speaker_of(segment)}", gender=gender_of(segment),
        label_emotion=accessors.emotion(segment.labels.get("emotion")).label,
        emotion=emotion, sentiment=config.sentiment_map.get(emotion) if emotion else None,
        confidence=confidence, agreement=agreement, numbers=numbers,
        text_sentiment=accessors.text_sentiment(segment.labels),
        drop_reason=analysis.drop_reason, drop_detail=analysis.drop_detail,
    )


def _member_agreement(prediction: EmotionPrediction) -> float:
    if not prediction.member_labels:
        return 1.0
    return sum(m == prediction.label for m in prediction.member_labels) / len(prediction.member_labels)


def speaker_of(segment: Segment) -> str:
    """The segment's speaker, else its words' most common speaker, else 'unknown'."""
    return segment.speaker or _most_common(w.speaker for w in segment.words) or UNKNOWN


def gender_of(segment: Segment) -> str:
    """The segment's gender label, else the gender its manifest gave (`metadata["gender"]`), else
    its words' most common gender, else 'unknown'."""
    return (accessors.label_category(segment.labels, "gender") or accessors.category(segment.metadata.get("gender"))
            or _most_common(w.gender for w in segment.words) or UNKNOWN)


def _most_common(values) -> str | None:
    counts = Counter(v for v in values if v)
    return counts.most_common(1)[0][0] if counts else None
