"""Prosody of a segment: F0 (pyworld DIO + StoneMask), loudness (pyloudnorm, ITU-R BS.1770),
speaking rate and pauses from word times, and z-scores against a speaker's own baseline."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from ..audio.io import SAMPLE_RATE
from ..errors import require
from ..records import Word

F0_MODEL = "pyworld-dio-stonemask"
LOUDNESS_MODEL = "pyloudnorm-bs1770"
RATE_MODEL = "word-times"
F0_FLOOR_HZ = 60.0
F0_CEIL_HZ = 500.0
FRAME_S = 0.01
MIN_PAUSE_S = 0.25
"""A gap between words at least this long is a pause (and not speech time)."""
_VOWEL_GROUPS = re.compile(r"[aeiouy]+")


@dataclass
class PitchTrack:
    f0_hz: np.ndarray
    """F0 per 10-ms frame; 0 where unvoiced."""

    @property
    def voiced(self) -> np.ndarray:
        return self.f0_hz[self.f0_hz > 0]

    @property
    def voiced_ratio(self) -> float:
        return float(len(self.voiced) / len(self.f0_hz)) if len(self.f0_hz) else 0.0


def pitch_track(samples: np.ndarray) -> PitchTrack:
    pyworld = require("pyworld", "labels", "pyworld-prebuilt")
    x = np.asarray(samples, dtype=np.float64)
    if len(x) < int(0.05 * SAMPLE_RATE) or not np.any(x):
        return PitchTrack(np.zeros(0))
    f0, times = pyworld.dio(x, SAMPLE_RATE, f0_floor=F0_FLOOR_HZ, f0_ceil=F0_CEIL_HZ, frame_period=FRAME_S * 1000)
    return PitchTrack(pyworld.stonemask(x, f0, times, SAMPLE_RATE))


def pitch_stats(track: PitchTrack) -> dict[str, float] | None:
    """Mean, standard deviation and 5–95 % range of voiced F0 (Hz); None with under 0.1 s voiced."""
    f0 = track.voiced
    if len(f0) < 10:
        return None
    lo, hi = np.percentile(f0, [5, 95])
    return {"pitch_mean_hz": round(float(f0.mean()), 2), "pitch_std_hz": round(float(f0.std()), 2),
            "pitch_range_hz": round(float(hi - lo), 2), "voiced_ratio": round(track.voiced_ratio, 4)}


def loudness_lufs(samples: np.ndarray) -> float | None:
    """Integrated loudness (LUFS); None for audio under 0.4 s or silent."""
    pyloudnorm = require("pyloudnorm", "labels")
    if len(samples) < int(0.4 * SAMPLE_RATE):
        return None
    value = pyloudnorm.Meter(SAMPLE_RATE).integrated_loudness(np.asarray(samples, dtype=np.float64))
    return round(float(value), 2) if math.isfinite(value) else None


def count_syllables(word: str) -> int:
    """Vowel groups of a word, at least one (an English-oriented heuristic; digits count one)."""
    letters = re.sub(r"[^a-z]", "", word.lower())
    if not letters:
        return 1 if any(ch.isalnum() for ch in word) else 0
    groups = len(_VOWEL_GROUPS.findall(letters))
    if letters.endswith("e") and not letters.endswith(("le", "ee")) and groups > 1:
        groups -= 1
    return max(1, groups)


def rate_and_pauses(words: list[Word]) -> dict[str, float] | None:
    """Words and syllables per second of speech time (first word start to last word end, minus
    pauses of at least MIN_PAUSE_S between words), pause count, total and longest pause."""
    words = [w for w in words if w.end > w.start and w.word.strip()]
    if not words:
        return None
    words = sorted(words, key=lambda w: w.start)
    gaps = [b.start - a.end for a, b in pairwise(words)]
    pauses = [g for g in gaps if g >= MIN_PAUSE_S]
    speech_s = (words[-1].end - words[0].start) - sum(pauses)
    if speech_s <= 0:
        return None
    syllables = sum(count_syllables(w.word) for w in words)
    return {"speaking_rate_wps": round(len(words) / speech_s, 3), "syllable_rate": round(syllables / speech_s, 3),
            "speech_time_s": round(speech_s, 3), "pause_count": len(pauses),
            "pause_total_s": round(sum(pauses), 3), "pause_max_s": round(max(pauses, default=0.0), 3)}


def zscore(value: float | None, values: list[float]) -> float | None:
    """z of `value` among a speaker's `values` (needs three values and a non-zero spread)."""
    if value is None or len(values) < 3:
        return None
    spread = float(np.std(values))
    return round((value - float(np.mean(values))) / spread, 3) if spread > 1e-9 else None
