"""Signal quality of a segment: WADA-SNR, clipping ratio, and DNSMOS (speechmos' ONNX models)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..audio.io import SAMPLE_RATE
from ..errors import require

SNR_MODEL = "wada-snr"
DNSMOS_MODEL = "dnsmos-p835 (speechmos)"
CLIP_LEVEL = 0.999
WADA_SHAPE = 0.4
"""Speech amplitude is modelled as Gamma-distributed with this shape (Kim & Stern 2008)."""
_SNR_GRID_DB = np.arange(-20.0, 101.0)


@lru_cache(maxsize=1)
def _wada_table() -> np.ndarray:
    """G(SNR) = log E|x| − E log|x| of Gamma(0.4) speech plus unit Gaussian noise at each SNR of
    the grid, by Monte Carlo with a fixed seed (the table Kim & Stern tabulate)."""
    rng = np.random.default_rng(0)
    n = 50_000
    speech = rng.gamma(WADA_SHAPE, size=n) * rng.choice([-1.0, 1.0], size=n)
    speech /= np.sqrt(np.mean(speech**2))
    noise = rng.standard_normal(n)
    table = []
    for snr in _SNR_GRID_DB:
        x = np.abs(speech * 10 ** (snr / 20) + noise)
        x = np.maximum(x, 1e-20)
        table.append(np.log(x.mean()) - np.log(x).mean())
    return np.asarray(table)


def wada_snr_db(samples: np.ndarray) -> float | None:
    """Waveform-amplitude-distribution SNR estimate (Kim & Stern, Interspeech 2008), clamped to
    −20..100 dB; None for silence."""
    x = np.abs(np.asarray(samples, dtype=np.float64))
    if len(x) == 0 or x.max() <= 0:
        return None
    x = np.maximum(x / x.max(), 1e-10)
    g = np.log(x.mean()) - np.log(x).mean()
    table = np.maximum.accumulate(_wada_table())  # G rises with SNR (Monte Carlo noise smoothed out)
    return round(float(np.interp(g, table, _SNR_GRID_DB)), 2)


def clipping_ratio(samples: np.ndarray) -> float:
    """Fraction of samples at full scale (|x| ≥ 0.999)."""
    if len(samples) == 0:
        return 0.0
    return round(float(np.mean(np.abs(samples) >= CLIP_LEVEL)), 6)


def dnsmos(samples: np.ndarray) -> dict[str, float] | None:
    """DNSMOS P.835 (signal, background, overall) and P.808 MOS, 1..5; None under 1 s."""
    if len(samples) < SAMPLE_RATE:
        return None
    module = require("speechmos.dnsmos", "labels", "speechmos librosa")
    scores = module.run(np.clip(samples, -1.0, 1.0).astype(np.float32), sr=SAMPLE_RATE)
    return {key: round(float(scores[key]), 3) for key in ("ovrl_mos", "sig_mos", "bak_mos", "p808_mos")}
