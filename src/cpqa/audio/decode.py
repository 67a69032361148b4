"""Probe and stream-decode any input audio to 16 kHz mono, written progressively to FLAC.

soundfile (libsndfile) reads WAV/FLAC/OGG and the other formats it knows; PyAV (FFmpeg) reads
MP3/M4A/Opus/WebM and anything libsndfile cannot open. Channels are downmixed by their mean and
resampled with a streaming soxr resampler, block by block, so a multi-hour file never sits in
memory. Non-finite samples (NaN/inf in float files) become 0 and are counted.

Errors reading a source raise `DecodeError` with a machine `reason` (a per-file skip); errors
writing the output (disk full, read-only run) propagate, because they concern the whole run.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..errors import CPQAError
from ..io_atomic import atomic_path
from ..reasons import AUDIO_UNREADABLE, EMPTY_FILE, MISSING_FILE, TOO_LONG, UNDECODABLE, ZERO_LENGTH
from .io import SAMPLE_RATE

logger = logging.getLogger(__name__)


BLOCK_FRAMES = 1 << 16
"""Source frames per decoded block (≈ 1.4 s at 48 kHz): bounds memory whatever the file length."""

PYAV_SUFFIXES = frozenset({".mp3", ".m4a", ".mp4", ".aac", ".opus", ".webm", ".mkv", ".wma"})
"""Sent to PyAV straight away: libsndfile reads some of them less well (MP3 padding) or not at all."""

READY_CONTAINERS = frozenset({"WAV", "WAVEX", "RF64", "W64", "FLAC"})
READY_SUBTYPES = frozenset({"PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"})
FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})
FLAC_SUBTYPES = {16: "PCM_16", 24: "PCM_24"}


class DecodeError(CPQAError):
    """A source that cannot become a recording; `reason` is one of the module's reason constants."""

    def __init__(self, reason: str, path: str | Path, detail: str):
        super().__init__(f"{path}: {detail} ({reason})")
        self.reason = reason
        self.path = str(path)
        self.detail = detail


@dataclass(frozen=True)
class AudioInfo:
    """What a source file says about itself, before decoding."""

    path: Path
    backend: str
    """'soundfile' or 'pyav': the library that will decode it."""
    container: str
    codec: str
    sample_rate: int
    channels: int
    frames: int | None
    """Exact for soundfile; None where the container only estimates it (see `duration_s`)."""
    estimated_duration_s: float | None = None

    @property
    def duration_s(self) -> float | None:
        if self.frames is not None:
            return self.frames / self.sample_rate
        return self.estimated_duration_s

    @property
    def is_pipeline_ready(self) -> bool:
        """16 kHz mono PCM/float WAV or FLAC: the pipeline can read it in place."""
        return (
            self.backend == "soundfile"
            and self.container in READY_CONTAINERS
            and self.codec in READY_SUBTYPES
            and self.sample_rate == SAMPLE_RATE
            and self.channels == 1
        )


@dataclass(frozen=True)
class DecodeResult:
    path: Path
    """The 16 kHz mono FLAC written."""
    samples: int
    source: AudioInfo
    source_frames: int
    n_nonfinite: int = 0
    n_clipped: int = 0
    """Samples beyond ±1 clipped to fit the integer FLAC."""
    n_bad_packets: int = 0
    """Compressed packets FFmpeg could not decode and skipped."""

    @property
    def duration_s(self) -> float:
        return self.samples / SAMPLE_RATE


def check_file(path: str | Path) -> int:
    """The size in bytes of a readable, non-empty regular file, else a DecodeError."""
    path = Path(path)
    try:
        status = os.stat(path)
        if not stat.S_ISREG(status.st_mode):  # a FIFO would block open() forever
            raise DecodeError(UNDECODABLE, path, "not a regular file")
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        raise DecodeError(MISSING_FILE, path, "no such file") from None
    except PermissionError:
        raise DecodeError(AUDIO_UNREADABLE, path, "permission denied") from None
    except OSError as exc:
        raise DecodeError(AUDIO_UNREADABLE, path, exc.strerror or str(exc)) from None
    if status.st_size == 0:
        raise DecodeError(EMPTY_FILE, path, "the file is empty (0 bytes)")
    return status.st_size


def probe(path: str | Path) -> AudioInfo:
    """Read a source's header: format, rate, channels, length. Raises DecodeError."""
    path = Path(path)
    check_file(path)
    if path.suffix.lower() in PYAV_SUFFIXES:
        return _probe_pyav(path)
    try:
        return _probe_soundfile(path)
    except sf.LibsndfileError as sf_error:
        try:
            return _probe_pyav(path)
        except DecodeError as av_error:
            raise DecodeError(UNDECODABLE, path, f"not audio or corrupt: {sf_error.error_string}; "
                                                 f"FFmpeg: {av_error.detail}") from None


def _probe_soundfile(path: Path) -> AudioInfo:
    info = sf.info(str(path))
    if info.subtype in {"MPEG_LAYER_I", "MPEG_LAYER_II", "MPEG_LAYER_III", "OPUS"}:
        return _probe_pyav(path)
    return AudioInfo(path, "soundfile", info.format, info.subtype, info.samplerate, info.channels, info.frames)


def _probe_pyav(path: Path) -> AudioInfo:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise DecodeError(UNDECODABLE, path, f"no audio stream in the {container.format.name} file")
            stream = container.streams.audio[0]
            ctx = stream.codec_context
            if not ctx.sample_rate:
                raise DecodeError(UNDECODABLE, path, "the audio stream has no sample rate")
            estimated = container.duration / av.time_base if container.duration else None
            return AudioInfo(path, "pyav", container.format.name, ctx.name, ctx.sample_rate,
                             ctx.layout.nb_channels, None, estimated)
    except av.FFmpegError as exc:
        raise DecodeError(UNDECODABLE, path, f"FFmpeg cannot open it: {exc.strerror}") from None


@dataclass
class PacketTally:
    """Compressed packets decoded and rejected while reading a PyAV source."""

    good: int = 0
    bad: int = 0

    def check(self, path: Path) -> None:
        """Mostly-bad packets mean noise decoded from junk, not a damaged recording."""
        if self.bad and self.bad >= self.good:
            raise DecodeError(UNDECODABLE, path, f"FFmpeg rejected {self.bad} of {self.bad + self.good} packets")
        if self.bad:
            logger.warning("%s: skipped %d undecodable packets of %d", path, self.bad, self.bad + self.good)


def iter_source_blocks(info: AudioInfo, packets: PacketTally | None = None) -> Iterator[np.ndarray]:
    """Mono float32 blocks at the source rate (non-finite values untouched). Raises DecodeError."""
    packets = packets if packets is not None else PacketTally()
    blocks = _soundfile_blocks(info) if info.backend == "soundfile" else _pyav_blocks(info, packets)
    try:
        yield from blocks
    except DecodeError:
        raise
    except Exception as exc:  # whatever breaks while reading a source is that file's problem
        raise DecodeError(UNDECODABLE, info.path, f"reading failed: {type(exc).__name__}: {exc}") from exc


def _soundfile_blocks(info: AudioInfo) -> Iterator[np.ndarray]:
    with sf.SoundFile(str(info.path)) as f:
        for block in f.blocks(BLOCK_FRAMES, dtype="float32", always_2d=True):
            yield _downmix(block)


def _pyav_blocks(info: AudioInfo, packets: PacketTally) -> Iterator[np.ndarray]:
    """Packet by packet: a packet FFmpeg rejects is skipped and counted, as FFmpeg itself does."""
    import av

    # Planar float at the stream's first rate; the channel layout stays, we downmix by mean ourselves.
    resampler = av.AudioResampler(format="fltp", rate=info.sample_rate)
    with av.open(str(info.path)) as container:
        for packet in container.demux(container.streams.audio[0]):
            try:
                frames = packet.decode()
            except av.FFmpegError:
                packets.bad += 1
                continue
            packets.good += 1 if packet.size else 0
            for frame in frames:
                for out in resampler.resample(frame):
                    yield _downmix(out.to_ndarray().T)
        for out in resampler.resample(None):
            yield _downmix(out.to_ndarray().T)
    packets.check(info.path)


def _downmix(block: np.ndarray) -> np.ndarray:
    """(frames, channels) → (frames,) float32, by the mean of the channels."""
    if block.shape[1] == 1:
        return np.ascontiguousarray(block[:, 0], dtype=np.float32)
    return block.mean(axis=1, dtype=np.float32)


def check_duration(info: AudioInfo, max_duration_s: float | None) -> None:
    """Raise a `too-long` DecodeError when the header (or FFmpeg's estimate) is over the limit."""
    if max_duration_s is not None and (info.duration_s or 0.0) > max_duration_s:
        raise DecodeError(TOO_LONG, info.path, f"{info.duration_s:.1f} s is over max_duration_s={max_duration_s}")


def count_nonfinite(info: AudioInfo) -> int:
    """NaN/inf samples in a source, read block by block."""
    return sum(int(np.count_nonzero(~np.isfinite(block))) for block in iter_source_blocks(info))


def load_16k_mono(path: str | Path) -> np.ndarray:
    """A whole file (any format `probe` reads) as 16 kHz mono float32, channels averaged and
    non-finite samples zeroed, in memory: for clips and training examples, not long recordings
    (ingest streams those with `decode_to_flac`). Raises DecodeError."""
    info = probe(path)
    blocks = list(iter_source_blocks(info))
    samples = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
    if info.sample_rate != SAMPLE_RATE:
        samples = soxr.resample(samples, info.sample_rate, SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(samples, dtype=np.float32)


class _Resampler:
    """A streaming resampler to 16 kHz; a pass-through when the source is already 16 kHz."""

    def __init__(self, source_rate: int):
        self.stream = None if source_rate == SAMPLE_RATE else soxr.ResampleStream(
            source_rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        return block if self.stream is None else self.stream.resample_chunk(block, last=last)


def decode_to_flac(source: str | Path, target: str | Path, *, info: AudioInfo | None = None,
                   max_duration_s: float | None = None, bit_depth: int = 16) -> DecodeResult:
    """Decode `source` to a 16 kHz mono FLAC at `target`, block by block.

    The FLAC is written under a temporary name and renamed when complete, so `target` exists only
    whole. Raises DecodeError (nothing left behind) for a source that yields no usable audio.
    """
    info = info or probe(source)
    check_duration(info, max_duration_s)
    target = Path(target)
    with atomic_path(target) as partial:
        return _write_flac(info, target, partial, max_duration_s, FLAC_SUBTYPES[bit_depth])


def _write_flac(info: AudioInfo, target: Path, partial: Path, max_duration_s: float | None,
                subtype: str) -> DecodeResult:
    resample = _Resampler(info.sample_rate)
    max_samples = None if max_duration_s is None else int(max_duration_s * SAMPLE_RATE)
    source_frames = samples = n_nonfinite = n_clipped = 0
    packets = PacketTally()
    with sf.SoundFile(str(partial), "w", SAMPLE_RATE, 1, subtype=subtype, format="FLAC") as out:
        for block, last in _with_last(iter_source_blocks(info, packets)):
            source_frames += len(block)
            n_nonfinite += _zero_nonfinite(block)
            block = resample(block, last=last)
            n_clipped += int(np.count_nonzero(np.abs(block) > 1.0))
            out.write(np.clip(block, -1.0, 1.0, out=block))
            samples += len(block)
            if max_samples is not None and samples > max_samples:
                raise DecodeError(TOO_LONG, info.path, f"longer than max_duration_s={max_duration_s}")
    if samples == 0:
        raise DecodeError(ZERO_LENGTH, info.path, "decodes to no samples")
    if n_nonfinite:
        logger.warning("%s: replaced %d non-finite samples with 0", info.path, n_nonfinite)
    return DecodeResult(target, samples, info, source_frames, n_nonfinite, n_clipped, packets.bad)


def _with_last(blocks: Iterator[np.ndarray]) -> Iterator[tuple[np.ndarray, bool]]:
    """Each block with whether it is the last one (the resampler flushes on it); an empty
    last block stands in when the source has none."""
    previous = None
    for block in blocks:
        if previous is not None:
            yield previous, False
        previous = block
    yield (previous if previous is not None else np.zeros(0, dtype=np.float32)), True


def _zero_nonfinite(block: np.ndarray) -> int:
    bad = ~np.isfinite(block)
    n = int(np.count_nonzero(bad))
    if n:
        block[bad] = 0.0
    return n
