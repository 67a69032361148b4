"""Segment-level labels of the `annotate` stage: measured on a segment's samples (prosody, voice
quality, signal quality), aggregated from its windows (valence/arousal/dominance), mapped from its
decided emotion (sentiment), or compared within its speaker (z-scores).

Every value carries `model` and a confidence `score` in 0..1: a `record_parts.Label`, or its JSON
shape, which the annotate stage reads into one.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from ..emotions import SENTIMENT_OF
from ..record_parts import Label, label_of
from ..records import Segment
from . import prosody, quality, voice
from .protocols import DimensionResult
from .windows import aggregate_values

SENTIMENT_MODEL = "sentiment-map-v1"


def sentiment_label(emotion: Label) -> Label:
    probs: dict[str, float] = defaultdict(float)
    for label, p in (emotion.probs or {}).items():
        if label in SENTIMENT_OF:
            probs[SENTIMENT_OF[label]] += p
    label = max(probs, key=probs.get)
    return Label(label=label, score=round(probs[label], 4), probs={k: round(v, 4) for k, v in probs.items()},
                 model=f"{SENTIMENT_MODEL}({emotion.model})")


def dimension_labels(dims: list[DimensionResult | None], weights: list[float], backend) -> dict:
    kept = [(d, w) for d, w in zip(dims, weights) if d is not None and not d.skipped]
    out = {}
    for name in ("valence", "arousal", "dominance"):
        value = aggregate_values([getattr(d, name) for d, _ in kept], [w for _, w in kept])
        if value is not None:
            score = aggregate_values([d.score for d, _ in kept], [w for _, w in kept])
            out[name] = {"value": round(value, 4), "score": None if score is None else round(score, 4),
                         "model": backend.model_name, "derived": bool(getattr(backend, "derived", False))}
    return out


def prosody_labels(seg: Segment, samples: np.ndarray, voice_method: str | None) -> dict:
    out: dict[str, Any] = {}
    track = prosody.pitch_track(samples)
    stats = prosody.pitch_stats(track)
    if stats:
        for key in ("pitch_mean_hz", "pitch_std_hz", "pitch_range_hz"):
            out[key] = {"value": stats[key], "score": stats["voiced_ratio"], "model": prosody.F0_MODEL}
    measures = voice.voice_quality(samples, track, voice_method) if voice_method else None
    if measures:
        share = round(min(1.0, measures["voiced_s"] / max(seg.duration, 1e-6)), 4)
        for key in ("jitter_local", "shimmer_local", "hnr_db"):
            if measures[key] is not None:
                out[key] = {"value": round(measures[key], 5), "score": share, "model": measures["model"]}
    lufs = prosody.loudness_lufs(samples)
    if lufs is not None:
        out["loudness_lufs"] = {"value": lufs, "score": 1.0, "model": prosody.LOUDNESS_MODEL}
    rate = prosody.rate_and_pauses(seg.words)
    if rate:
        share = round(min(1.0, rate["speech_time_s"] / max(seg.duration, 1e-6)), 4)
        for key in ("speaking_rate_wps", "syllable_rate"):
            out[key] = {"value": rate[key], "score": share, "model": prosody.RATE_MODEL}
        out["pauses"] = {"count": rate["pause_count"], "total_s": rate["pause_total_s"], "max_s": rate["pause_max_s"],
                         "min_pause_s": prosody.MIN_PAUSE_S, "score": 1.0, "model": prosody.RATE_MODEL}
    return out


def quality_labels(samples: np.ndarray) -> dict:
    out: dict[str, Any] = {"clipping_ratio": {"value": quality.clipping_ratio(samples), "score": 1.0,
                                              "model": "full-scale-count"}}
    snr = quality.wada_snr_db(samples)
    if snr is not None:
        out["snr_db"] = {"value": snr, "score": 1.0, "model": quality.SNR_MODEL}
    return out


Z_KEYS = {"pitch_mean_hz": "pitch_z", "loudness_lufs": "loudness_z", "speaking_rate_wps": "speaking_rate_z"}


def add_speaker_zscores(segments: list[Segment]) -> None:
    """Give each segment z-scores of its pitch, loudness and speaking rate among the segments of the
    same recording and speaker (in place), so "higher than usual" is measurable."""
    groups: dict[tuple[str, str | None], list[Segment]] = defaultdict(list)
    for seg in segments:
        groups[(seg.recording_id, seg.speaker)].append(seg)
    for group in groups.values():
        for key, z_key in Z_KEYS.items():
            values = [label.value for s in group if (label := label_of(s.labels, key))]
            for seg in group:
                label = label_of(seg.labels, key)
                if label is None:
                    continue
                z = prosody.zscore(label.value, values)
                if z is not None:
                    seg.labels[z_key] = Label(value=z, score=round(min(1.0, len(values) / 10), 3),
                                              n_segments=len(values), model="speaker-baseline-v1")
