"""What a speech-LLM hears: a clip's audio at 16 kHz mono, cut as the item's `heard.Placement`
says: the whole clip, one heard window of it, or (policy `chunk`) the whole clip as consecutive
pieces of at most `max_audio_s` seconds, given to the model together (several audio parts in one
turn).

Any file soundfile or PyAV reads is accepted (human sets bring their own formats); it is downmixed
and resampled by `cpqa.audio.decode.load_16k_mono`. The policy and what it did to each item are recorded in the results.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

import numpy as np
import soundfile as sf

from ..audio.io import SAMPLE_RATE
from .heard import Placement, Span


@dataclass
class Heard:
    pieces: list[np.ndarray]
    duration_s: float
    """Length of the whole clip."""
    heard_s: float
    """Length of the audio given to the model."""
    cut: Literal["none", "window", "chunked"]


def hear(samples: np.ndarray, placement: Placement, max_audio_s: float) -> Heard:
    """The pieces the model hears of a clip's samples, as `placement` (not a dropped one) says."""
    duration_s = len(samples) / SAMPLE_RATE
    if placement.cut == "chunked":
        window = round(max_audio_s * SAMPLE_RATE)
        return Heard([samples[i:i + window] for i in range(0, len(samples), window)], duration_s, duration_s, "chunked")
    if placement.cut == "window":
        piece = window_samples(samples, placement.window)
        return Heard([piece], duration_s, len(piece) / SAMPLE_RATE, "window")
    return Heard([samples], duration_s, duration_s, "none")


def window_samples(samples: np.ndarray, window: Span) -> np.ndarray:
    """The stretch of a clip's 16 kHz samples that `window` (seconds from the clip's start) covers."""
    return samples[round(window.start * SAMPLE_RATE):round(window.end * SAMPLE_RATE)]


def wav_bytes(samples: np.ndarray) -> bytes:
    """16-bit PCM WAV at 16 kHz, as an API upload."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
