"""Segmentation: each Recording becomes utterance-sized speech Segments.

A VAD backend runs over the recording in blocks (`block_s`, with a short read-ahead so a region
cut by a block edge is seen whole) and reports every speech region it hears, however short: the
VAD itself drops nothing for length. Regions closer than `merge_gap_s` are merged first, so the
fragments of halting, sobbing or whispered speech become one span; a span longer than
`max_segment_s` is split at its longest internal pause (the gaps the VAD left between the regions
merged into it; where it left none, the quietest moment by short-time energy); only then are
pieces shorter than `min_segment_s` dropped. Each segment then starts `lead_in_s` earlier where
silence allows. Segments a manifest gives (`given_segments` in the recording metadata) are taken
as they are, with their text and labels.

The defaults (here and in the `silero` backend) were chosen on data by `benchmarks/vad_recall.py`,
which prints the recall and false-alarm rate of speech time they give on acted and natural speech.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soundfile as sf
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..reasons import AUDIO_UNREADABLE, BAD_GIVEN_SEGMENTS, NO_SPEECH
from ..records import Drop, Recording, Segment, Skip
from ..stage import BackendSpec, Stage, StageConfig, backend_field
from . import vad  # noqa: F401  (registers the silero backend)
from .io import SAMPLE_RATE, check_pipeline_audio, iter_blocks, read_range
from .protocols import SpeechRegion

BLOCK_OVERLAP_S = 2.0
"""Blocks overlap by this much: a VAD needs some audio to settle after a cold start, and a region
crossing a block edge must be seen by both blocks to be joined."""
QUIET_WINDOW_S = 0.3
"""The energy fallback cuts at the centre of the quietest stretch this long (about a short pause)."""
ENERGY_FRAME_S = 0.01
ENERGY_CHUNK_S = 60.0
"""The energy fallback reads a long region in chunks of this length."""


@dataclass
class SpeechSpan:
    """A merged speech region and the pauses (gaps between VAD regions) inside it."""

    start: float
    end: float
    pauses: list[tuple[float, float]] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.end - self.start


def merge_regions(regions: Iterable[SpeechRegion], merge_gap_s: float) -> list[SpeechSpan]:
    """Join time-ordered regions closer than `merge_gap_s`. A gap of zero or more is kept as a
    pause; an overlap (the same speech seen by two blocks) is not a pause."""
    spans: list[SpeechSpan] = []
    for region in regions:
        last = spans[-1] if spans else None
        if last is not None and region.start - last.end < merge_gap_s:
            if region.start >= last.end:
                last.pauses.append((last.end, region.start))
            last.end = max(last.end, region.end)
        else:
            spans.append(SpeechSpan(region.start, region.end))
    return spans


def split_long(span: SpeechSpan, max_s: float, min_s: float,
               quietest: Callable[[float, float], float]) -> list[tuple[float, float]]:
    """Cut `span` until every piece is at most `max_s` long, each cut leaving at least `min_s` on
    both sides: at the longest pause (ties: the most central), else at `quietest(lo, hi)`, the
    quietest time in [lo, hi]. Needs `max_s >= 2 * min_s`."""
    pieces: list[tuple[float, float]] = []
    todo = [span]
    while todo:  # a stack, not recursion: a long pause-free region may need many cuts
        cur = todo.pop()
        if cur.duration <= max_s:
            pieces.append((cur.start, cur.end))
            continue
        lo, hi = cur.start + min_s, cur.end - min_s
        centre = (cur.start + cur.end) / 2
        candidates = [(b - a, -abs((a + b) / 2 - centre), (a + b) / 2)
                      for a, b in cur.pauses if lo <= (a + b) / 2 <= hi]
        cut = max(candidates)[2] if candidates else quietest(lo, hi)
        left = SpeechSpan(cur.start, cut, [p for p in cur.pauses if (p[0] + p[1]) / 2 < cut])
        right = SpeechSpan(cut, cur.end, [p for p in cur.pauses if (p[0] + p[1]) / 2 > cut])
        todo += [right, left]
    return sorted(pieces)


def quietest_time(path: str, lo: float, hi: float) -> float:
    """Centre of the quietest `QUIET_WINDOW_S` stretch centred in [lo, hi], by short-time energy.
    The audio is read in chunks, so a long region is never whole in memory."""
    frame = int(ENERGY_FRAME_S * SAMPLE_RATE)
    first = max(0.0, lo - QUIET_WINDOW_S / 2)
    last = hi + QUIET_WINDOW_S / 2
    energies = []
    t = first
    while t < last:
        samples = read_range(path, t, min(last, t + ENERGY_CHUNK_S))
        n = len(samples) // frame
        if n == 0:
            break
        energies.append(np.mean(samples[: n * frame].reshape(n, frame) ** 2, axis=1))
        t += ENERGY_CHUNK_S
    window = round(QUIET_WINDOW_S / ENERGY_FRAME_S)
    envelope = np.concatenate(energies) if energies else np.zeros(0)
    if len(envelope) < window:
        return (lo + hi) / 2
    smoothed = np.convolve(envelope, np.ones(window) / window, mode="valid")
    centres = first + (np.arange(len(smoothed)) + window / 2) * ENERGY_FRAME_S
    allowed = (centres >= lo) & (centres <= hi)
    if not allowed.any():
        return (lo + hi) / 2
    best = np.flatnonzero(allowed)[np.argmin(smoothed[allowed])]
    return float(centres[best])


@dataclass
class Cut:
    """What `cut_speech` made of a recording's regions: the kept (start, end) pieces, lead-in
    included, and how many splits and short drops it took."""

    pieces: list[tuple[float, float]]
    splits: int
    dropped_short: int


def cut_speech(regions: Iterable[SpeechRegion], config: SegmentConfig,
               quietest: Callable[[float, float], float]) -> Cut:
    """Merge regions closer than `merge_gap_s`, split spans longer than `max_segment_s`, and only
    then drop pieces shorter than `min_segment_s`; each kept piece starts `lead_in_s` earlier,
    never into the previous piece nor past `max_segment_s`."""
    pieces: list[tuple[float, float]] = []
    splits = 0
    for span in merge_regions(regions, config.merge_gap_s):
        parts = split_long(span, config.max_segment_s, config.min_segment_s, quietest)
        splits += len(parts) - 1
        pieces += parts
    kept = []
    previous_end = 0.0
    for start, end in pieces:
        if end - start >= config.min_segment_s:
            kept.append((max(start - config.lead_in_s, previous_end, end - config.max_segment_s), end))
        previous_end = end
    return Cut(kept, splits, len(pieces) - len(kept))


class GivenSegment(BaseModel):
    """One segment of a manifest (as ingest writes it): times in seconds from the recording start;
    every other key (gender, emotion, row_id, ...) and the keys of a `metadata` dict are carried
    into the segment's metadata."""

    model_config = ConfigDict(extra="allow")

    start: float = Field(ge=0)
    end: float
    text: str = ""
    speaker: str | None = None
    language: str | None = None

    @model_validator(mode="after")
    def _ordered(self):
        if self.end <= self.start:
            raise ValueError(f"end {self.end} is not after start {self.start}")
        return self


class SegmentConfig(StageConfig):
    backend: BackendSpec = Field({"name": "silero"}, description="The VAD backend and its options.")
    min_segment_s: float = Field(0.5, gt=0, description="Segments shorter than this are dropped (after merging).")
    max_segment_s: float = Field(30.0, gt=0, description="Longer speech is split at its longest pause.")
    merge_gap_s: float = Field(
        1.0, ge=0, description="Speech regions closer than this are joined, before any length filter: halting, "
                               "sobbing or shouted speech can reach the VAD as fragments with pauses between.")
    block_s: float = Field(60.0, gt=0, description="The VAD reads this much audio at a time (bounds memory).")
    lead_in_s: float = Field(
        0.5, ge=0, description="Each segment starts up to this much earlier, into the silence before it (never "
                               "into earlier speech, nor past max_segment_s): VAD onsets lag soft word starts, "
                               "and ASR drops a word cut at its onset.")

    _backend = backend_field("vad")

    @model_validator(mode="after")
    def _vad_keeps_fragments(self):
        if getattr(self.backend.options, "min_speech_s", 0) > 0:
            raise ValueError("the VAD's min_speech_s must be 0: segment joins the fragments of halting speech "
                             "first and then drops short speech itself (min_segment_s); a VAD that drops "
                             "short regions loses those fragments before they are joined")
        return self

    @model_validator(mode="after")
    def _room_to_split(self):
        if self.max_segment_s < 2 * self.min_segment_s:
            raise ValueError("max_segment_s must be at least twice min_segment_s, so that a split "
                             "never leaves a piece too short to keep")
        return self


class SegmentStage(Stage[Recording, Segment]):
    """Cut recordings into speech segments with a VAD, or take the segments their manifest gives."""

    name = "segment"
    Config = SegmentConfig
    input_type = Recording
    output_type = Segment

    def setup(self) -> None:
        self.vad = self.config.backend.build()

    def process_batch(self, items: list[Recording]) -> Iterator[Segment | Drop | Skip]:
        for recording in items:
            if "given_segments" in recording.metadata:
                yield from self._given(recording)
            else:
                yield from self._detected(recording)

    def _given(self, recording: Recording) -> Iterator[Segment | Drop | Skip]:
        try:
            given = sorted((GivenSegment.model_validate(g) for g in recording.metadata["given_segments"]),
                           key=lambda g: (g.start, g.end))
        except (ValidationError, TypeError) as exc:
            yield Skip(id=recording.id, reason=BAD_GIVEN_SEGMENTS, detail=str(exc), source=recording.source)
            return
        if not given:
            yield Drop(id=recording.id, reason=NO_SPEECH, detail="the manifest gives no segments",
                       source=recording.source)
            return
        self.count("recordings_given")
        for n, g in enumerate(given):
            extra: dict[str, Any] = dict(g.model_extra or {})
            if isinstance(extra.get("metadata"), dict):
                extra = {**extra.pop("metadata"), **extra}
            yield self._segment(recording, n, g.start, g.end, text=g.text,
                                speaker=g.speaker, language=g.language, metadata={**extra, "segmentation": "given"})

    def _detected(self, recording: Recording) -> Iterator[Segment | Drop | Skip]:
        problem = _audio_problem(recording.audio)
        if problem:
            yield Skip(id=recording.id, reason=AUDIO_UNREADABLE, detail=problem,
                       source=recording.source)
            return
        regions = self._vad_regions(recording.audio)
        cfg = self.config
        cut = cut_speech(regions, cfg, lambda lo, hi: quietest_time(recording.audio, lo, hi))
        self.count("splits", cut.splits)
        self.count("dropped_short", cut.dropped_short)
        if not cut.pieces:
            yield Drop(id=recording.id, reason=NO_SPEECH, source=recording.source,
                       detail=f"{self.vad.model_name} found {len(regions)} speech region(s) in "
                              f"{recording.duration:.1f} s, none left {cfg.min_segment_s} s or longer after "
                              f"joining those less than {cfg.merge_gap_s} s apart")
            return
        self.count("recordings_vad")
        for n, (start, end) in enumerate(cut.pieces):
            yield self._segment(recording, n, start, end, metadata={"segmentation": "vad", "vad": self.vad.model_name})

    def _vad_regions(self, path: str) -> list[SpeechRegion]:
        """Speech regions of the whole file, sorted by start. Blocks overlap by BLOCK_OVERLAP_S and
        the middle of each overlap is the border: a block keeps the regions starting on its side,
        so each region is found with at least half the overlap of audio before it. A region still
        running where the previous block stopped reading is kept too; `merge_regions` joins it
        with that block's cut-off part."""
        block, half = self.config.block_s, BLOCK_OVERLAP_S / 2
        regions = []
        for offset, samples in iter_blocks(path, block, BLOCK_OVERLAP_S):
            own_start = offset + half if offset > 0 else 0.0
            previous_read_end = offset + BLOCK_OVERLAP_S
            for r in self.vad.detect(samples):
                start, end = offset + r.start, offset + r.end
                owned = own_start <= start < offset + block + half
                continued = offset > 0 and start < own_start and end > previous_read_end
                if owned or continued:
                    regions.append(SpeechRegion(start, end))
        return sorted(regions, key=lambda r: (r.start, r.end))

    def _segment(self, recording: Recording, n: int, start: float, end: float, *, text: str = "",
                 speaker: str | None = None, language: str | None = None,
                 metadata: dict[str, Any]) -> Segment:
        self.count("segments")
        self.count("speech_ms", round((end - start) * 1000))
        return Segment(
            id=Segment.make_id(recording.id, n),
            recording_id=recording.id,
            start=round(start, 3),
            end=round(end, 3),
            text=text,
            speaker=speaker or recording.metadata.get("speaker"),
            language=language or recording.metadata.get("language"),
            metadata=metadata,
        )


def _audio_problem(path: str) -> str | None:
    """Why the pipeline cannot read `path` as 16 kHz mono (naming the file), or None."""
    try:
        check_pipeline_audio(sf.info(path), path)
    except (sf.SoundFileError, ValueError) as exc:
        return str(exc)
    return None
