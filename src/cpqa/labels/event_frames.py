"""Frame scores → timed sound events, for every event backend (`cpqa.labels.events`).

A backend scores frames of a window's audio, one column per cpqa event label, and `frame_events`
turns the scores into events: a moving-average smoothing, hysteresis (an event starts where the
smoothed score reaches `threshold` and lasts while it stays above `threshold × off_ratio`), gaps
under `merge_gap_s` bridged, events under `min_duration_s` dropped; each event's score is its
highest smoothed score. Speech is what annotated segments are made of, so the `speech` label is
dropped by default (`drop_labels`).
"""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np
from pydantic import Field

from ..audio.io import SAMPLE_RATE
from ..reasons import MODEL_ERROR, TOO_SHORT
from ..stage import Config
from .protocols import AudioWindow, EventResult, SoundEvent

logger = logging.getLogger(__name__)


class EventsConfig(Config):
    """Frame scores → events; every backend's config extends it."""

    threshold: float = Field(0.5, gt=0, le=1, description="Smoothed frame score that starts an event.")
    thresholds: dict[str, float] = Field(default_factory=dict, description="Per-label start thresholds.")
    off_ratio: float = Field(0.7, gt=0, le=1,
                             description="An event lasts while its score stays above threshold × off_ratio.")
    smooth_s: float = Field(0.05, ge=0, description="Moving-average window over frame scores (s).")
    min_duration_s: float = Field(0.3, ge=0, description="Shorter events are dropped (s).")
    merge_gap_s: float = Field(0.2, ge=0, description="Gaps between events of one label shorter than this are "
                                                      "bridged (s).")
    drop_labels: list[str] = Field(["speech"], description="Labels never reported (speech fills every segment).")


class FrameScores:
    """Scores in 0..1 of `labels` on frames: frame i covers [i·hop_s, i·hop_s + frame_s) seconds
    of the scored audio."""

    def __init__(self, labels: list[str], scores: np.ndarray, hop_s: float, frame_s: float):
        if scores.ndim != 2 or scores.shape[1] != len(labels):
            raise ValueError(f"scores of shape {scores.shape} for {len(labels)} labels")
        self.labels, self.scores, self.hop_s, self.frame_s = labels, scores, hop_s, frame_s


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index pairs of the True runs of `mask`."""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], mask, [False]]).astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def smooth(scores: np.ndarray, frames: int) -> np.ndarray:
    """Centred moving average over `frames` frames (edges average what they have)."""
    if frames <= 1 or len(scores) == 0:
        return scores
    kernel = np.ones(frames)
    counts = np.convolve(np.ones(len(scores)), kernel, mode="same")
    return np.stack([np.convolve(col, kernel, mode="same") / counts for col in scores.T], axis=1)


def frame_events(frames: FrameScores, config: EventsConfig, offset_s: float, duration_s: float) -> list[SoundEvent]:
    """The events in `frames` (times shifted by `offset_s`, ends clipped to `duration_s` of audio),
    sorted by start then label."""
    scores = smooth(frames.scores.astype(np.float64), round(config.smooth_s / frames.hop_s))
    events: list[SoundEvent] = []
    for k, label in enumerate(frames.labels):
        if label in config.drop_labels:
            continue
        column = scores[:, k]
        on = config.thresholds.get(label, config.threshold)
        merged: list[list[float]] = []  # [start, end, score] in seconds of the scored audio
        for i0, i1 in true_runs(column >= on * config.off_ratio):
            peak = float(column[i0:i1].max())
            if peak < on:
                continue
            start = i0 * frames.hop_s
            # the audio after the last full frame (under one hop) belongs to the last frame's event
            end = duration_s if i1 == len(column) else min(duration_s, (i1 - 1) * frames.hop_s + frames.frame_s)
            if merged and start - merged[-1][1] < config.merge_gap_s:
                merged[-1][1], merged[-1][2] = end, max(merged[-1][2], peak)
            else:
                merged.append([start, end, peak])
        events += [SoundEvent(label, round(offset_s + a, 3), round(offset_s + b, 3), round(p, 4))
                   for a, b, p in merged if b - a >= config.min_duration_s]
    return sorted(events, key=lambda e: (e.start, e.label))


class FrameTagger:
    """Base of the event backends: `frame_scores(samples)` on each window's audio, then
    `frame_events`; audio it cannot score is a skipped result with the reason."""

    Config: ClassVar[type[EventsConfig]] = EventsConfig
    min_samples: ClassVar[int] = 400
    """25 ms: one analysis frame."""
    model_name: str

    def __init__(self, config: EventsConfig):
        self.config = config

    def frame_scores(self, samples: np.ndarray) -> FrameScores:
        raise NotImplementedError

    def tag(self, windows: list[AudioWindow]) -> list[EventResult]:
        out = []
        for window in windows:
            samples = window.samples()
            if len(samples) < self.min_samples:
                out.append(EventResult(skipped=True, skip_reason=TOO_SHORT))
                continue
            try:
                frames = self.frame_scores(samples)
            except RuntimeError as exc:  # the runtime's own error on odd audio: a skip, not a crash
                logger.warning("%s: the event tagger failed on %s %.2f-%.2f s: %s", self.model_name, window.audio,
                               window.start, window.end, exc)
                out.append(EventResult(skipped=True, skip_reason=MODEL_ERROR))
                continue
            out.append(EventResult(frame_events(frames, self.config, window.start, len(samples) / SAMPLE_RATE)))
        return out

