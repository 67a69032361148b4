"""Reading the pipeline's audio: 16 kHz mono float32, by time range, without loading whole files;
writing 16 kHz mono samples as FLAC (`write_flac_16k`).

Every `Recording.audio` is a file soundfile can seek in (ingest guarantees it: the source itself
when it is already 16 kHz mono WAV/FLAC, else a normalised FLAC inside the run).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from ..io_atomic import atomic_path

SAMPLE_RATE = 16000


def check_pipeline_audio(f: Any, path: str | Path) -> None:
    """Raise ValueError unless `f` (an open `sf.SoundFile` or an `sf.info`) is 16 kHz mono."""
    if f.samplerate != SAMPLE_RATE or f.channels != 1:
        raise ValueError(f"{path}: expected 16 kHz mono, got {f.samplerate} Hz x {f.channels}")


def read_range(path: str | Path, start: float = 0.0, end: float | None = None) -> np.ndarray:
    """Samples of [start, end) seconds as float32 mono at 16 kHz (the file must be 16 kHz mono)."""
    with sf.SoundFile(str(path)) as f:
        check_pipeline_audio(f, path)
        first = max(0, int(round(start * SAMPLE_RATE)))
        last = f.frames if end is None else min(f.frames, int(round(end * SAMPLE_RATE)))
        if last <= first:
            return np.zeros(0, dtype=np.float32)
        f.seek(first)
        return f.read(last - first, dtype="float32", always_2d=False)


def iter_blocks(path: str | Path, block_s: float, overlap_s: float = 0.0) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (start_seconds, samples) blocks of `block_s` (plus `overlap_s` read ahead) so a
    multi-hour file is never in memory at once."""
    with sf.SoundFile(str(path)) as f:
        check_pipeline_audio(f, path)
        block = int(block_s * SAMPLE_RATE)
        extra = int(overlap_s * SAMPLE_RATE)
        pos = 0
        while pos < f.frames:
            f.seek(pos)
            data = f.read(min(block + extra, f.frames - pos), dtype="float32", always_2d=False)
            yield pos / SAMPLE_RATE, data
            pos += block


def write_flac_16k(path: str | Path, samples: np.ndarray) -> Path:
    """16 kHz mono `samples` as a 16-bit FLAC at `path`, written atomically (the folder is created)."""
    with atomic_path(path) as tmp:
        sf.write(str(tmp), samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return Path(path)
