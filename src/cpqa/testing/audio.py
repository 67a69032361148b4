"""Synthetic audio for tests and benchmarks (no real speech, no downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def bursts(duration_s: float, sample_rate: int = 16000, seed: int = 0, burst_s: float = 1.5,
           gap_s: float = 0.6, amplitude: float = 0.3) -> np.ndarray:
    """Alternating tone-plus-noise bursts and near-silence: something any energy VAD splits."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * sample_rate)
    t = np.arange(n) / sample_rate
    period = burst_s + gap_s
    on = (t % period) < burst_s
    f0 = 120 + 80 * rng.random()
    signal = amplitude * (0.6 * np.sin(2 * np.pi * f0 * t) + 0.4 * rng.standard_normal(n))
    return np.where(on, signal, 0.001 * rng.standard_normal(n)).astype(np.float32)


def write_bursts(path: str | Path, duration_s: float, sample_rate: int = 16000, seed: int = 0) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), bursts(duration_s, sample_rate, seed), sample_rate, subtype="PCM_16")
    return path
