"""Labels that hold over a speaker and over time, decided once a recording's segments are labelled.

- **Gender is a property of a speaker in a recording**: the window posteriors of each speaker
  (diarized or given turns) are pooled into one label with a confidence, and every word of that
  speaker carries it. Without turns, a segment's own windows are pooled instead.
- **Emotion changes only where the evidence does**: within each run of windows of one speaker, the
  window posteriors are smoothed by a sticky hidden Markov model (forward-backward; a window keeps
  its neighbour's state with probability `stay`), so a single odd window cannot flip the tag.
- **A model that cannot tell abstains**: a window whose smoothed posterior peaks below the minimum
  confidence, or that the backend found out of its training distribution, gets no class; its
  words carry NO_CLEAR_EMOTION. The same rule makes a speaker's pooled gender abstain.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from ..record_parts import Label
from ..records import Segment, Window
from ..vocabulary import ABSTAIN_LOW_CONFIDENCE, ABSTAIN_OUT_OF_DISTRIBUTION

SMOOTHING_MODEL = "hmm-forward-backward"
DEFAULT_MIN_CONFIDENCE = 0.5
"""The abstention threshold for emotion models that bring no calibration of their own (hub models)."""


@dataclass(frozen=True)
class Decision:
    """How posteriors become labels: the minimum confidence for a class, the HMM's stay probability."""

    emotion_min_confidence: float | None
    """None: each window's model's own advice (`min_confidence` in its raw label), else DEFAULT."""
    gender_min_confidence: float
    stay: float | None

    def emotion_threshold(self, raw: Label) -> float:
        if self.emotion_min_confidence is not None:
            return self.emotion_min_confidence
        return DEFAULT_MIN_CONFIDENCE if raw.min_confidence is None else raw.min_confidence


def smooth(probs: np.ndarray, stay: float) -> np.ndarray:
    """Posteriors of a sticky HMM over a sequence `[T, K]` of window posteriors (each used as a
    scaled likelihood; a row of NaN is a window without evidence)."""
    t_len, k = probs.shape
    if t_len < 2 or k < 2:
        return probs
    emit = np.where(np.isnan(probs), 1.0 / k, probs) + 1e-9
    trans = np.full((k, k), (1 - stay) / (k - 1))
    np.fill_diagonal(trans, stay)
    alpha = np.empty_like(emit)
    alpha[0] = emit[0] / emit[0].sum()
    for t in range(1, t_len):
        a = (alpha[t - 1] @ trans) * emit[t]
        alpha[t] = a / a.sum()
    beta = np.ones_like(emit)
    for t in range(t_len - 2, -1, -1):
        b = trans @ (emit[t + 1] * beta[t + 1])
        beta[t] = b / b.sum()
    gamma = alpha * beta
    return gamma / gamma.sum(axis=1, keepdims=True)


def decided(probs: dict[str, float], model: str, min_confidence: float, out_of_distribution: bool = False,
            **extra) -> Label:
    """A categorical label: the argmax class, or an abstention with its reason."""
    label = max(probs, key=probs.get)
    score = round(float(probs[label]), 4)
    base = {"score": score, "probs": {k: round(float(v), 4) for k, v in probs.items()}, "model": model,
            "min_confidence": min_confidence, **extra}
    if out_of_distribution:
        return Label(label=None, abstained=True, reason=ABSTAIN_OUT_OF_DISTRIBUTION, **base)
    if score < min_confidence:
        return Label(label=None, abstained=True, reason=ABSTAIN_LOW_CONFIDENCE, **base)
    return Label(label=label, abstained=False, **base)


def _speaker_at(seg: Segment, window: Window) -> str | None:
    mid = (window.start + window.end) / 2
    for word in seg.words:
        if word.start <= mid < word.end and word.speaker:
            return word.speaker
    return seg.speaker


def _runs(seg: Segment) -> list[list[int]]:
    """Indices of the segment's windows, cut where the speaker changes."""
    runs: list[list[int]] = []
    last = object()
    for i, window in enumerate(seg.windows):
        speaker = _speaker_at(seg, window)
        if not runs or speaker != last:
            runs.append([])
        runs[-1].append(i)
        last = speaker
    return runs


def decide_emotions(seg: Segment, decision: Decision) -> None:
    """Smooth the segment's window emotions within each speaker run and decide each window (in
    place); the windows' `emotion` must hold raw posteriors and an `out_of_distribution` flag."""
    windows = [w for w in seg.windows if w.emotion and w.emotion.probs]
    if not windows:
        return
    classes = sorted(windows[0].emotion.probs)
    for run in _runs(seg):
        members = [seg.windows[i] for i in run if seg.windows[i].emotion and seg.windows[i].emotion.probs]
        if not members:
            continue
        raw = np.array([[w.emotion.probs.get(c, 0.0) for c in classes] for w in members])
        ood = np.array([bool(w.emotion.extra("out_of_distribution")) for w in members])
        evidence = np.where(ood[:, None], np.nan, raw)  # an OOD window tells the smoother nothing
        smoothed = smooth(evidence, decision.stay) if decision.stay else raw
        for window, row, raw_row, far in zip(members, smoothed, raw, ood):
            probs = dict(zip(classes, raw_row if far else row))
            extra = {"smoothing": f"{SMOOTHING_MODEL}(stay={decision.stay})"} if decision.stay and not far else {}
            window.emotion = decided(probs, window.emotion.model, decision.emotion_threshold(window.emotion),
                                     bool(far), **extra)


def segment_emotion(seg: Segment, decision: Decision) -> Label | None:
    """The segment's emotion from its decided windows: duration-weighted mean of the in-distribution
    windows' (smoothed) posteriors; it abstains as out of distribution when most of its speech is."""
    rated = [w for w in seg.windows if w.emotion and w.emotion.probs]
    if not rated:
        return None
    ood = [w for w in rated if w.emotion.reason == ABSTAIN_OUT_OF_DISTRIBUTION]
    inside = [w for w in rated if w not in ood]
    ood_s = sum(w.end - w.start for w in ood)
    models = ",".join(sorted({w.emotion.model for w in rated}))
    pool = inside or rated
    weights = np.array([w.end - w.start for w in pool])
    classes = sorted(pool[0].emotion.probs)
    mean = np.average([[w.emotion.probs.get(c, 0.0) for c in classes] for w in pool], axis=0, weights=weights)
    threshold = max(decision.emotion_threshold(w.emotion) for w in pool)
    return decided(dict(zip(classes, mean)), models, threshold,
                   ood_s > 0.5 * sum(w.end - w.start for w in rated),
                   windows_abstained=sum(1 for w in rated if w.emotion.is_abstained), windows=len(rated))


def pool_genders(segments: list[Segment], model: str, decision: Decision) -> dict[str | None, Label]:
    """One gender per speaker of the recording, pooled over all its windows (duration-weighted mean
    posterior). Windows of segments without a speaker are pooled per segment (key: the segment id)."""
    sums: dict[str | None, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    counts: dict[str | None, int] = defaultdict(int)
    for seg in segments:
        for window in seg.windows:
            if not window.gender or not window.gender.probs:
                continue
            key = _speaker_at(seg, window) or seg.id
            for label, p in window.gender.probs.items():
                sums[key][label] += p * (window.end - window.start)
            counts[key] += 1
    pooled = {}
    for key, acc in sums.items():
        total = sum(acc.values()) or 1.0
        pooled[key] = decided({k: v / total for k, v in acc.items()}, model, decision.gender_min_confidence,
                              pooled_over="speaker", windows=counts[key])
    return pooled


def changes_per_speaker(segments: list[Segment], attribute: str) -> tuple[int, float]:
    """How often a word's `attribute` tag differs from the previous word of the same speaker, and
    the minutes of speech the words cover."""
    last: dict[str | None, str | None] = {}
    changes = 0
    seconds = 0.0
    for seg in sorted(segments, key=lambda s: s.start):
        for word in seg.words:
            value = getattr(word, attribute)
            seconds += max(0.0, word.end - word.start)
            if value is None:
                continue
            if word.speaker in last and last[word.speaker] != value:
                changes += 1
            last[word.speaker] = value
    return changes, seconds / 60
