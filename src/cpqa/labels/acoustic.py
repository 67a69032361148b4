"""Acoustic (prosodic, voice-quality and spectral) features of one analysis window, which the
offline emotion heads read beside the pooled Whisper frames (they add about 0.03 held-out UA on
short recordings). The dimension model reads GE2E embeddings only, so the two models share no
features and condensation's agreement check compares two paradigms (docs/design.md §1.4).

The vector is fixed-length; a measure that cannot be made (too little voicing) is NaN, which a head
reads as its training mean (`ProbeHead.logits`)."""

from __future__ import annotations

import numpy as np

from ..audio.io import SAMPLE_RATE
from .prosody import pitch_track
from .voice import voice_quality

ACOUSTIC_FEATURES = (
    "f0_median_st", "f0_std_st", "f0_range_st", "voiced_ratio",
    "level_mean_db", "level_std_db", "level_range_db",
    "jitter_local", "shimmer_local", "hnr_db",
    "centroid_hz", "alpha_ratio_db", "hammarberg_db", "zcr", "onset_rate_hz",
)
"""Names of the vector's entries, in order (semitones re 100 Hz; dB re full scale)."""
_FRAME = int(0.025 * SAMPLE_RATE)
_HOP = int(0.010 * SAMPLE_RATE)


def _frames(x: np.ndarray) -> np.ndarray:
    if len(x) < _FRAME:
        x = np.pad(x, (0, _FRAME - len(x)))
    n = 1 + (len(x) - _FRAME) // _HOP
    idx = np.arange(_FRAME)[None, :] + _HOP * np.arange(n)[:, None]
    return x[idx]


def acoustic_features(samples: np.ndarray) -> np.ndarray:
    """The ACOUSTIC_FEATURES of a window of 16 kHz mono audio (float64, NaN where not measurable)."""
    x = np.asarray(samples, dtype=np.float64)
    out = np.full(len(ACOUSTIC_FEATURES), np.nan)
    if len(x) < _FRAME or not np.any(x):
        return out
    track = pitch_track(x)
    f0 = track.voiced
    if len(f0) >= 10:
        st = 12 * np.log2(f0 / 100.0)
        lo, hi = np.percentile(st, [10, 90])
        out[0:3] = np.median(st), st.std(), hi - lo
    out[3] = track.voiced_ratio

    frames = _frames(x) * np.hanning(_FRAME)
    energy = (frames ** 2).mean(axis=1)
    level = 10 * np.log10(energy + 1e-10)
    active = level > level.max() - 40  # frames within 40 dB of the loudest: speech, not the floor
    out[4:7] = level[active].mean(), level[active].std(), np.percentile(level[active], 95) - np.percentile(level[active], 5)

    measures = voice_quality(x, track, "cpqa")
    if measures:
        out[7:10] = [np.nan if measures[k] is None else measures[k] for k in ("jitter_local", "shimmer_local", "hnr_db")]

    spectra = np.abs(np.fft.rfft(frames[active], axis=1)) ** 2
    freqs = np.fft.rfftfreq(_FRAME, 1 / SAMPLE_RATE)
    total = spectra.sum(axis=1) + 1e-12
    out[10] = float(np.mean((spectra * freqs).sum(axis=1) / total))
    low = spectra[:, freqs < 1000].sum(axis=1) + 1e-12
    high = spectra[:, (freqs >= 1000) & (freqs < 5000)].sum(axis=1) + 1e-12
    out[11] = float(np.mean(10 * np.log10(high / low)))
    peak_low = spectra[:, freqs < 2000].max(axis=1) + 1e-12
    peak_high = spectra[:, (freqs >= 2000) & (freqs < 5000)].max(axis=1) + 1e-12
    out[12] = float(np.mean(10 * np.log10(peak_low / peak_high)))
    signs = np.signbit(frames[active])
    out[13] = float(np.mean(signs[:, 1:] != signs[:, :-1]))
    # rises of the level contour by more than 6 dB over 50 ms: a rough syllable-onset rate
    rises = np.diff(level[::5]) > 6
    out[14] = float(rises.sum() / (len(x) / SAMPLE_RATE))
    return out
