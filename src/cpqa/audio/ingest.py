"""The `ingest` stage: find the input's recordings and make each readable as 16 kHz mono.

Inputs (see `cpqa.audio.sources`): a folder of audio (recursive, sorted; id = relative path
without extension), a CSV/TSV/JSONL manifest, a lhotse recordings or cuts manifest, a Parquet
file or Hugging Face `save_to_disk` folder with embedded audio, or one audio file.

Manifest rows and recordings: a row without start/end is one recording, its labels in the
recording's metadata and its text one given segment over the whole file. Consecutive rows of
the same audio with start/end are ONE recording whose `metadata["given_segments"]` lists
{start, end, text?, speaker?, gender?, emotion?, language?, row_id?} (row_id = the row's id).
Given segments are clipped to the decoded duration; those starting after its end are dropped.
Speaker turns, when the input gives them (an RTTM, speakers on given segments, or one speaker for
the whole file), go to `Recording.speaker_turns` ({start, end, speaker}) for later stages.

A source that is already 16 kHz mono PCM/float WAV or FLAC (and holds no NaN/inf) is used in
place; anything else is decoded to `STAGE/audio/<id>.flac`, written whole or not at all, and a
FLAC already there from an interrupted run is reused. Every failure is a skip with a reason:
empty_file, undecodable, zero_length, missing_file, audio_unreadable, bad_manifest_row, duplicate_id,
too_long, bad_rttm.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field

from ..errors import CPQAError
from ..io_atomic import write_atomic
from ..reasons import BAD_RTTM
from ..records import Recording, Skip
from ..stage import SourceStage, StageConfig
from .decode import (
    FLOAT_SUBTYPES,
    ZERO_LENGTH,
    AudioInfo,
    DecodeError,
    check_duration,
    count_nonfinite,
    decode_to_flac,
    probe,
)
from .io import SAMPLE_RATE
from .sources import SourceItem, discover_sources
from .speakers import Turn, read_rttm

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = ["wav", "flac", "ogg", "mp3", "m4a", "opus", "webm"]
CLIP_TOLERANCE_S = 0.01
"""A given segment ending less than this past the audio is rounding, not a manifest error."""


class IngestConfig(StageConfig):
    extensions: list[str] = Field(default_factory=lambda: list(AUDIO_EXTENSIONS),
                                  description="File extensions picked up when the input is a folder.")
    max_duration_s: float | None = Field(None, gt=0, description="Skip recordings longer than this (too_long).")
    copy_if_compatible: bool = Field(False, description=(
        "Write a FLAC into the run even for sources already 16 kHz mono WAV/FLAC, "
        "so the run does not depend on the input staying where it is."))
    bit_depth: Literal[16, 24] = Field(16, description="Bits per sample of the FLAC files written.")


class IngestStage(SourceStage[SourceItem, Recording]):
    """Find the input's recordings and make each a 16 kHz mono file (decode, downmix, resample)."""

    name = "ingest"
    version = "2"  # 2: speaker turns from RTTM files and manifests
    Config = IngestConfig
    input_type = SourceItem
    output_type = Recording

    def discover(self, input_path: Path) -> Iterator[SourceItem]:
        return discover_sources(input_path, self.config.extensions, exclude=self.context.run_dir)

    def process_batch(self, items: list[SourceItem]) -> Iterable[Recording | Skip]:
        for item in items:
            yield self._ingest(item)

    def _ingest(self, item: SourceItem) -> Recording | Skip:
        if item.error is not None:
            return Skip(id=item.id, reason=item.error_reason, detail=item.error, source=item.audio or None)
        try:
            rttm_turns = _rttm_turns(item.rttm, item.audio) if item.rttm else None
        except (OSError, CPQAError) as exc:
            return Skip(id=item.id, reason=BAD_RTTM, detail=str(exc), source=item.rttm)
        try:
            with _Materialised(item, self.context.stage_dir / "sources") as source:
                recording = self._recording(item, source, rttm_turns)
        except DecodeError as exc:
            logger.info("skipping %s: %s", item.id, exc)
            return Skip(id=item.id, reason=exc.reason, detail=exc.detail, source=item.audio)
        self.count("recordings")
        return recording

    def _recording(self, item: SourceItem, source: _Materialised, rttm_turns: list[Turn] | None) -> Recording:
        info = probe(source.path)
        max_s = self.config.max_duration_s
        check_duration(info, max_s)
        if info.is_pipeline_ready and not self.config.copy_if_compatible and self._usable_in_place(info):
            source.keep = True
            self.count("used_in_place")
            return self._make(item, rttm_turns, info, info.path, info.frames)
        target = self.context.stage_dir / "audio" / audio_relpath(item.id)
        if target.exists():  # written whole by an interrupted run of this stage
            self.count("reused")
            return self._make(item, rttm_turns, info, target, probe(target).frames)
        result = decode_to_flac(info.path, target, info=info, max_duration_s=max_s, bit_depth=self.config.bit_depth)
        self.count("decoded")
        self.count("nonfinite_samples", result.n_nonfinite)
        self.count("clipped_samples", result.n_clipped)
        self.count("bad_packets", result.n_bad_packets)
        return self._make(item, rttm_turns, info, target, result.samples)

    def _usable_in_place(self, info: AudioInfo) -> bool:
        """In place unless empty, or float samples hold NaN/inf (then a cleaned FLAC is written)."""
        if info.frames == 0:
            raise DecodeError(ZERO_LENGTH, info.path, "the file holds no samples")
        if info.codec in FLOAT_SUBTYPES and count_nonfinite(info):
            logger.warning("%s: non-finite samples: writing a cleaned copy", info.path)
            return False
        return True

    def _make(self, item: SourceItem, rttm_turns: list[Turn] | None, info: AudioInfo, audio: Path,
              samples: int) -> Recording:
        duration_s = samples / SAMPLE_RATE
        metadata = dict(item.metadata)
        segments = self._given_segments(item.given_segments, duration_s)
        if segments:
            metadata["given_segments"] = segments
        turns = _given_turns(rttm_turns, segments, metadata.get("speaker"), duration_s)
        if turns:
            self.count("recordings_with_speaker_turns")
        return Recording(id=item.id, audio=str(Path(os.path.abspath(audio))), duration=duration_s,
                         sample_rate=SAMPLE_RATE, channels=1, source=item.audio,
                         source_sample_rate=info.sample_rate, source_channels=info.channels, metadata=metadata,
                         **({"speaker_turns": turns} if turns else {}))

    def _given_segments(self, segments: list[dict[str, Any]], duration_s: float) -> list[dict[str, Any]]:
        """Whole-file segments get the decoded end; segments are kept within the audio."""
        out = []
        for seg in segments:
            end = duration_s if seg["end"] is None else seg["end"]
            if seg["start"] >= duration_s:
                self.count("given_segments_dropped")
                continue
            if end > duration_s + CLIP_TOLERANCE_S:
                self.count("given_segments_clipped")
            out.append({**seg, "end": min(end, duration_s)})
        self.count("given_segments", len(out))
        return out


def _rttm_turns(rttm: str, audio: str) -> list[Turn]:
    """The SPEAKER lines of the audio's file id (its file name without extension); all lines
    when the RTTM names no such file (a one-file RTTM with another id)."""
    return read_rttm(rttm, file_id=Path(audio).stem) or read_rttm(rttm)


def _given_turns(rttm_turns: list[Turn] | None, segments: list[dict[str, Any]], speaker: Any,
                 duration_s: float) -> list[Turn]:
    """Speaker turns from, in order of preference: the RTTM, the given segments' speakers, the
    whole file's speaker; clipped to the audio."""
    if rttm_turns:
        turns = [(t.start, t.end, t.speaker) for t in rttm_turns]
    elif any("speaker" in seg for seg in segments):
        turns = [(seg["start"], seg["end"], seg["speaker"]) for seg in segments if "speaker" in seg]
    elif speaker not in (None, ""):
        turns = [(0.0, duration_s, speaker)]
    else:
        return []
    return [Turn(start=round(start, 3), end=round(min(end, duration_s), 3), speaker=str(who))
            for start, end, who in turns if start < duration_s and end > start]


class _Materialised:
    """The source file of an item: its path, or its embedded bytes written to `folder` for the
    time of decoding (kept only when the recording uses them in place)."""

    def __init__(self, item: SourceItem, folder: Path):
        self.item = item
        self.folder = folder
        self.path = Path(item.audio)
        self.keep = False

    def __enter__(self) -> Self:
        if self.item.audio_bytes is not None:
            self.path = self.folder / audio_relpath(self.item.id, self.item.audio_suffix)
            _write_once(self.path, self.item.audio_bytes)
        return self

    def __exit__(self, *exc) -> None:
        if self.item.audio_bytes is not None and not self.keep:
            self.path.unlink(missing_ok=True)


def _write_once(path: Path, data: bytes) -> None:
    """Write `data` atomically, unless the same bytes are already there."""
    if path.exists() and path.stat().st_size == len(data):
        return
    write_atomic(path, data)


_UNSAFE = re.compile(r"[^\w.-]+")
MAX_NAME_CHARS = 60


def audio_relpath(item_id: str, suffix: str = ".flac") -> Path:
    """A file path for an id: its `/` parts as folders, each made filesystem-safe. When anything
    had to change, a hash of the id keeps distinct ids on distinct files."""
    parts = item_id.split("/")
    safe = [_UNSAFE.sub("_", part) for part in parts]
    safe = [part if part.strip(".") else "_" for part in safe]  # no '', '.' or '..'
    if safe != parts or any(len(part.encode()) > 200 for part in safe):
        digest = hashlib.sha1(item_id.encode()).hexdigest()[:10]
        safe = [part[:MAX_NAME_CHARS] for part in safe]
        safe[-1] = f"{safe[-1]}-{digest}"
    return Path(*safe[:-1], safe[-1] + suffix)
