"""Generated test audio in any format (numpy + soundfile, PyAV's encoders)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import soundfile as sf


def sine(freq_hz: float, duration_s: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(duration_s * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def write_audio(path: Path, data: np.ndarray, rate: int, subtype: str = "PCM_16", **kwargs) -> Path:
    """`data` is (frames,) or (frames, channels)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, rate, subtype=subtype, **kwargs)
    return path


def encode_pyav(path: Path, mono: np.ndarray, rate: int, codec: str) -> Path:
    """Encode mono float32 samples with FFmpeg's `codec`; the container follows the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        for i in range(0, len(mono), 4096):
            frame = av.AudioFrame.from_ndarray(mono[None, i:i + 4096], format="fltp", layout="mono")
            frame.rate, frame.pts = rate, i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))
