"""How far a run's labels can be trusted: what each shipped model was validated on (read from the
heads' own records), and how this run's audio sat against the emotion model's training data (read
from the annotate stage's counters). `cpqa status` and the run report show both."""

from __future__ import annotations

from typing import Any

from .heads import ProbeHead, builtin_head

OUT_OF_DISTRIBUTION_WARNING = 0.2
"""A run with more than this share of emotion windows out of distribution gets a warning."""
SHIPPED = {"emotion": "emotion", "emotion (recordings under 30 s)": "emotion-short",
           "valence / arousal / dominance": "dimensions-ge2e", "gender": "gender-ge2e"}


def run_trust(counters: dict[str, float]) -> dict[str, Any] | None:
    """The annotate counters turned into shares, with a warning when the audio lies far from the
    emotion model's training data; None for a run without annotate counters."""
    windows = counters.get("windows")
    if not windows:
        return None
    far = counters.get("windows_out_of_distribution", 0) / windows
    minutes = counters.get("speech_ms", 0) / 60_000
    out = {
        "windows": int(windows),
        "out_of_distribution_share": round(far, 3),
        "abstained_share": round(counters.get("windows_emotion_abstained", 0) / windows, 3),
        "within_speaker_gender_changes": int(counters.get("within_speaker_gender_changes", 0)),
        "emotion_changes_per_minute": round(counters.get("within_speaker_emotion_changes", 0) / minutes, 2)
        if minutes else None,
        "warning": None,
    }
    if far > OUT_OF_DISTRIBUTION_WARNING:
        out["warning"] = (f"{far:.0%} of the emotion windows lie far from the emotion model's training data "
                          "(another language, channel or recording condition?): they carry 'no clear emotion'. "
                          "Treat this run's emotion labels with care; retrain the head on similar labelled "
                          "audio (tools/train_heads.py) or use a hub model.")
    return out


def validation_rows() -> list[list[str]]:
    """Per shipped label model: its id and what it was validated on, from the head files' records."""
    rows = []
    for label, name in SHIPPED.items():
        head = ProbeHead.load(builtin_head(name))
        validation = head.meta.get("validation")
        rows.append([label, head.model_id, _describe(validation) if validation else "not recorded"])
    return rows


def _describe(validation: dict[str, Any]) -> str:
    parts = []
    for key, value in validation.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k} {v}" for k, v in value.items() if not isinstance(v, (dict, list)))
            parts.append(f"{key}: {inner}")
        else:
            parts.append(f"{key}: {value}")
    return "; ".join(parts) + " (held-out speakers; see the model card)"
