"""Per-segment condensation: length, quality gates, window consistency and occurrence, and what
the segment is reliable for.

A segment failing a gate (length, SNR, DNSMOS) is dropped. One that passes but holds no reliable
emotion (no windows, every window abstained, none consistent, none recurring: `no_emotion_reason`)
is kept for the other labels it carries reliably when `without_emotion.keep_for` names one of them
(`kept_for`), else dropped with that reason. Abstained windows never count as a class: they are
dropped from the emotion path as `emotion_abstained`.

`analyse` is pure and cheap, so the stage runs it twice: once in `fit()` to make the global
decisions from small `SegmentSummary`s, and again when it writes each kept segment (rather than
holding every segment's windows in memory between the two).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..reasons import (
    ALL_WINDOWS_ABSTAINED,
    EMOTION_ABSTAINED,
    LOW_DNSMOS,
    LOW_SNR,
    NO_CONSISTENT_WINDOW,
    NO_DOMINANT_EMOTION,
    NO_WINDOWS,
    TOO_SHORT,
)
from ..record_parts import DroppedWindow, Label, label_of
from ..records import Segment, Window
from .config import CondenseConfig
from .reliability import gender_of, reliable_for, speaker_of
from .rules import Occurrence, attribute


@dataclass(frozen=True)
class WindowVerdict:
    window: Window
    reason: str | None
    """Why the window is dropped; None when it is kept."""

    @property
    def label(self) -> str | None:
        """The window's emotion; None when the model abstained or gave none."""
        return self.window.emotion.category if self.window.emotion else None

    @property
    def score(self) -> float | None:
        return self.window.emotion.score if self.window.emotion else None

    def as_dropped(self) -> DroppedWindow:
        return DroppedWindow(start=self.window.start, end=self.window.end, emotion=self.label, score=self.score,
                             valence=self.window.valence, reason=self.reason or "")


@dataclass
class SegmentAnalysis:
    verdicts: list[WindowVerdict]
    occurrence: Occurrence
    reliable_for: list[str] = field(default_factory=list)
    """What the segment's labels can be trusted for ('emotion' when one was attributed; see `reliability`)."""
    kept_for: list[str] = field(default_factory=list)
    """Why a kept segment is kept: ['emotion'], or the other reliable labels `keep_for` names
    (empty when it is dropped)."""
    no_emotion_reason: str | None = None
    """Why the segment holds no reliable emotion (None: it holds one)."""
    no_emotion_detail: str = ""
    drop_reason: str | None = None
    drop_detail: str = ""

    @property
    def kept(self) -> list[WindowVerdict]:
        return [v for v in self.verdicts if v.reason is None]


def analyse(segment: Segment, config: CondenseConfig) -> SegmentAnalysis:
    rule = config.rule()
    verdicts = []
    for window in segment.windows:
        emotion = window.emotion or Label()
        reason = rule.drop_reason(emotion.category, emotion.score, window.valence, emotion.is_abstained)
        verdicts.append(WindowVerdict(window, reason))
    kept = [(v.label, v.score) for v in verdicts if v.reason is None]
    occurrence = attribute(kept, len(verdicts), config.min_windows, config.min_window_share)
    analysis = SegmentAnalysis(verdicts, occurrence)
    others = reliable_for(segment, config.without_emotion)
    analysis.no_emotion_reason, analysis.no_emotion_detail = _emotion_failure(config, analysis)
    gate, gate_detail = _gate_failure(segment, config)
    if analysis.no_emotion_reason is None:
        analysis.reliable_for = sorted(["emotion", *others])
        analysis.kept_for = ["emotion"]
    else:
        analysis.reliable_for = others
        analysis.kept_for = [label for label in others if label in config.without_emotion.keep_for]
    if gate is not None:
        analysis.drop_reason, analysis.drop_detail, analysis.kept_for = gate, gate_detail, []
    elif not analysis.kept_for:
        analysis.drop_reason = analysis.no_emotion_reason
        analysis.drop_detail = (f"{analysis.no_emotion_detail}; nothing else to keep it for (reliable for: "
                                f"{', '.join(others) or 'nothing'}; without_emotion.keep_for: "
                                f"{', '.join(config.without_emotion.keep_for) or 'nothing'})")
    return analysis


def _gate_failure(segment: Segment, config: CondenseConfig) -> tuple[str | None, str]:
    if segment.duration < config.min_segment_duration_s:
        return TOO_SHORT, f"duration {segment.duration:.2f} s < {config.min_segment_duration_s} s"
    snr = label_of(segment.labels, "snr_db")
    snr_db = snr.value if snr else None
    if config.min_snr_db is not None and snr_db is not None and snr_db < config.min_snr_db:
        return LOW_SNR, f"snr {snr_db:.1f} dB < {config.min_snr_db} dB"
    dnsmos_label = label_of(segment.labels, "dnsmos")
    dnsmos = dnsmos_label.extra("ovrl_mos") if dnsmos_label else None
    if config.min_dnsmos is not None and dnsmos is not None and dnsmos < config.min_dnsmos:
        return LOW_DNSMOS, f"dnsmos {dnsmos:.2f} < {config.min_dnsmos}"
    return None, ""


def _emotion_failure(config: CondenseConfig, analysis: SegmentAnalysis) -> tuple[str | None, str]:
    if not analysis.verdicts:
        return NO_WINDOWS, "the segment has no analysis windows"
    n = len(analysis.verdicts)
    if all(v.reason == EMOTION_ABSTAINED for v in analysis.verdicts):
        return ALL_WINDOWS_ABSTAINED, f"the emotion model abstained on all {n} windows (no clear emotion)"
    if not analysis.kept:
        reasons = Counter(v.reason for v in analysis.verdicts)
        return NO_CONSISTENT_WINDOW, f"0 of {n} windows consistent ({counts_text(reasons)})"
    if analysis.occurrence.emotion is None:
        return NO_DOMINANT_EMOTION, (
            f"consistent windows {counts_text(analysis.occurrence.counts)} of {n}: none reaches "
            f"{config.min_windows} windows or {config.min_window_share:.0%}")
    return None, ""


def counts_text(counts) -> str:
    """`{"a": 2, "b": 1}` → 'a: 2, b: 1'."""
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
    """The segment-level emotion label from annotate (before condensation; None when it abstained)."""
    emotion: str | None
    """The attributed emotion (None when the segment holds no reliable emotion)."""
    reliable_for: tuple[str, ...]
    kept_for: tuple[str, ...]
    no_emotion_reason: str | None
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
    carrying = [v.window.emotion for v in analysis.kept if v.label == emotion and v.window.emotion]
    confidence = sum(p.score or 0.0 for p in carrying) / len(carrying) if carrying else 0.0
    agreement = (sum(_member_agreement(p) for p in carrying) / len(carrying)) if carrying else 0.0
    numbers = {k: float(label.value) for k, label in segment.labels.items()
               if isinstance(label, Label) and label.value is not None}
    labelled = label_of(segment.labels, "emotion")
    text = label_of(segment.labels, "text_sentiment")
    return SegmentSummary(
        id=segment.id, recording_id=segment.recording_id, order=order, start=segment.start, end=segment.end,
        speaker=f"{segment.recording_id}/{speaker_of(segment)}", gender=gender_of(segment),
        label_emotion=labelled.category if labelled else None,
        emotion=emotion, reliable_for=tuple(analysis.reliable_for), kept_for=tuple(analysis.kept_for),
        no_emotion_reason=analysis.no_emotion_reason,
        sentiment=config.sentiment_map.get(emotion) if emotion else None,
        confidence=confidence, agreement=agreement, numbers=numbers,
        text_sentiment=text.compound if text else None,
        drop_reason=analysis.drop_reason, drop_detail=analysis.drop_detail,
    )


def _member_agreement(prediction: Label) -> float:
    """The share of an ensemble's members that predicted its class (1 for a single model)."""
    members = [m.category for m in prediction.members or [] if m.category]
    return sum(m == prediction.category for m in members) / len(members) if members else 1.0
