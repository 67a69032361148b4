"""Real speech for the VAD, segmentation and transcription tests: RAVDESS clips resampled to
16 kHz in memory, speech joined with known pauses, and stage/recording builders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from audiogen import write_audio

from cpqa.audio.io import SAMPLE_RATE
from cpqa.records import Recording
from cpqa.stage import Stage, StageContext

STATEMENTS = {"01": "kids are talking by the door", "02": "dogs are sitting by the door"}


def ravdess_files(real: Path) -> list[Path]:
    return sorted((real / "ravdess" / "wav").glob("*.wav"))


def statement(name: str | Path) -> str:
    """The sentence a RAVDESS clip says, from its name `03-01-EE-II-SS-RR-AA` (SS: statement)."""
    return STATEMENTS[Path(name).stem.split("-")[4]]


def load_16k(path: Path) -> np.ndarray:
    samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return soxr.resample(samples.mean(axis=1), rate, SAMPLE_RATE, quality="HQ").astype(np.float32)


def write_16k(path: Path, samples: np.ndarray) -> Path:
    return write_audio(path, samples, SAMPLE_RATE)


def quiet_noise(duration_s: float, rms: float = 1e-4, seed: int = 0) -> np.ndarray:
    return (rms * np.random.default_rng(seed).standard_normal(int(duration_s * SAMPLE_RATE))).astype(np.float32)


def join_with_pauses(pieces: list[np.ndarray], pauses_s: list[float]) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """`pieces` separated by near-silent pauses; returns the audio and each pause's (start, end)."""
    out, spans, t = [pieces[0]], [], len(pieces[0]) / SAMPLE_RATE
    for i, (pause, piece) in enumerate(zip(pauses_s, pieces[1:])):
        out += [quiet_noise(pause, seed=i), piece]
        spans.append((t, t + pause))
        t += pause + len(piece) / SAMPLE_RATE
    return np.concatenate(out), spans


def recording(path: Path, rec_id: str = "rec", **metadata) -> Recording:
    info = sf.info(str(path))
    return Recording(id=rec_id, audio=str(path), duration=info.frames / info.samplerate,
                     sample_rate=info.samplerate, channels=info.channels, metadata=metadata)


def make_stage(cls: type[Stage], tmp_path: Path, recordings: list[Recording] = (), **config) -> Stage:
    """A stage outside any run, looking up `recordings` by id."""
    by_id = {r.id: r for r in recordings}
    context = StageContext(run_dir=tmp_path, stage_dir=tmp_path / cls.name, name=cls.name,
                           recording_lookup=by_id.__getitem__)
    return cls(cls.Config.model_validate(config), context)
