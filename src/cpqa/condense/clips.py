"""The `clips` stage: 30–60 s clips around the kept segments, cut to FLAC, with tagged words.

Assembly (per recording, kept segments in time order; `plan_clips` is pure):
- a recording shorter than `min_duration_s` becomes one clip over the whole recording, flagged
  `selection["short"] = True`;
- otherwise kept segments are merged into one clip while the clip stays within `max_duration_s`
  and either the next one starts within `max_gap_s` of the clip's end or the clip is still shorter
  than `min_duration_s` (better a merged clip than padding); a clip's ends are the boundaries of
  its first and last segments, so no kept segment is ever cut (a single segment longer than
  `max_duration_s` becomes a clip of its own, longer than the maximum);
- a clip still shorter than `min_duration_s` is widened evenly on both sides into the surrounding
  audio (never past the recording or a neighbouring clip) when `pad_short_groups` is on.
  Clips are planned around kept segments only, but their words come from every transcribed
  segment inside them (`transcript_stage`, default `annotate`): a clip's audio and its transcript
  then agree; speech the condensation dropped says `no clear emotion` (its labels did not hold
  up), while kept segments carry the condensed tags (see `tagging`). `selection["untranscribed_s"]`
  says how much of the clip no segment covers (silence, or speech the VAD missed).

Why `needs_fit`: a clip needs every kept segment of its recording (its words, and its neighbours'
text as context). Holding them across batches would lose them on a restart (inputs already marked
done are not fed again), so `fit()` gathers them — the condensed set, so small — and plans every
clip; a clip is written when its last segment is processed. `fit()` also writes the statistics.

Each clip: `id = f"{recording_id}-clip{n:04d}"` (n counts a recording's planned clips from 0, in
time order), `start`/`end` in seconds from the start of the recording, `audio` = a 16 kHz mono FLAC
under the stage directory's `audio/` (temp file + rename), named relative to the run directory (a
moved or copied run still finds it; readers resolve it with `rundir.resolve_path`), `words` with recording times and all
three tags, `tagged_transcript` (see `tagging`), `context{before, after}` (text of up to
`context_segments` kept segments of the recording before and after the clip), `selection{score
(mean of its segments' selection scores), reasons, emotions, reliable_for_any, reliable_for_all,
short, padded_s, untranscribed_s}` (`reliable_for_any` / `_all`: the labels — content, emotion,
gender, speakers — some / every kept segment of the clip is reliable for, as condense recorded)
and `metadata{speakers: {S1: original id}, interpolated_word_times: [segment ids]}`. The FLAC file is
named after the clip id (made safe for a file name: see `audio_file_stem`).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field, model_validator

from ..audio.io import SAMPLE_RATE, read_range, write_flac_16k
from ..ordering import stable_hash
from ..reasons import AUDIO_UNREADABLE, CLIP_BUDGET
from ..record_parts import ClipSelection
from ..records import Clip, ClipWord, Drop, Segment, Skip
from ..rundir import relative_to_run
from ..stage import Stage, StageConfig
from .stats import duration_bucket
from .tagging import speaker_aliases, tag_words, tagged_transcript

logger = logging.getLogger(__name__)

CLIP_DURATION_EDGES_S = (30.0, 45.0, 60.0)


class ClipsConfig(StageConfig):
    min_duration_s: float = Field(30.0, gt=0, description="Clips shorter than this are padded (or flagged short).")
    max_duration_s: float = Field(60.0, gt=0, description="Segments are merged into a clip up to this length.")
    max_gap_s: float = Field(10.0, ge=0, description=(
        "Merge the next kept segment into a clip of min_duration_s or more only if it starts within this of the clip's end."))
    pad_short_groups: bool = Field(True, description="Widen clips shorter than min_duration_s into the surrounding audio.")
    context_segments: int = Field(2, ge=0, description="Segments of text given as context before and after a clip.")
    transcript_stage: str | None = Field("annotate", description=(
        "The earlier stage whose segments give every word of a clip; null: the kept segments' words only."))
    max_clips: int | None = Field(None, ge=1, description="Budget: keep the best-scoring clips only (None: all).")
    min_word_prob: float = Field(0.5, ge=0, le=1, description=(
        "Words the ASR gave a lower probability show as '…' in the tagged transcript the QA generator reads "
        "(the clip's words keep them, with their probability): QA is not built on what may be a mishearing."))

    @model_validator(mode="after")
    def _check_range(self) -> ClipsConfig:
        if self.min_duration_s > self.max_duration_s:
            raise ValueError(f"min_duration_s ({self.min_duration_s}) > max_duration_s ({self.max_duration_s})")
        return self


@dataclass(frozen=True)
class Span:
    id: str
    start: float
    end: float


@dataclass
class ClipPlan:
    index: int
    start: float
    end: float
    segment_ids: list[str]
    short: bool = False
    padded_s: float = 0.0


def plan_clips(spans: list[Span], recording_duration_s: float, config: ClipsConfig) -> list[ClipPlan]:
    """The clips of one recording from its kept segments (see the module docstring)."""
    spans = sorted(spans, key=lambda s: (s.start, s.end, s.id))
    if not spans:
        return []
    if recording_duration_s < config.min_duration_s:
        return [ClipPlan(0, 0.0, recording_duration_s, [s.id for s in spans], short=True)]
    groups: list[list[Span]] = []
    for span in spans:
        if groups:
            group = groups[-1]
            end = max(s.end for s in group)
            close = span.start - end <= config.max_gap_s or end - group[0].start < config.min_duration_s
            if close and max(end, span.end) - group[0].start <= config.max_duration_s:
                group.append(span)
                continue
        groups.append([span])
    plans = [ClipPlan(i, g[0].start, min(max(s.end for s in g), recording_duration_s), [s.id for s in g])
             for i, g in enumerate(groups)]
    if config.pad_short_groups:
        for i, p in enumerate(plans):
            lower = plans[i - 1].end if i else 0.0
            upper = plans[i + 1].start if i + 1 < len(plans) else recording_duration_s
            _pad(p, config.min_duration_s, lower, upper)
    return plans


def _pad(p: ClipPlan, min_duration_s: float, lower: float, upper: float) -> None:
    need = min_duration_s - (p.end - p.start)
    if need <= 0:
        return
    left = min(need / 2, p.start - lower)
    right = min(need - left, upper - p.end)
    left = min(need - right, p.start - lower)
    p.start -= left
    p.end += right
    p.padded_s = round(left + right, 6)


@dataclass
class _Kept:
    """What a clip needs of one kept segment (gathered in fit)."""

    id: str
    order: int
    start: float
    end: float
    text: str
    words: list[ClipWord]
    interpolated: bool
    emotion: str | None
    score: float
    reasons: list[str] = field(default_factory=list)
    reliable_for: tuple[str, ...] = ()


class ClipsStage(Stage[Segment, Clip]):
    """Assemble 30–60 s clips around kept segments: FLAC audio, tagged words, context."""

    name = "clips"
    version = "2"
    Config = ClipsConfig
    input_type = Segment
    output_type = Clip
    needs_fit = True
    config: ClipsConfig

    def fit(self, items: Iterator[Segment]) -> None:
        by_recording: dict[str, list[_Kept]] = defaultdict(list)
        for order, segment in enumerate(items):
            words, interpolated = tag_words(segment)
            selection, condense = segment.selection, segment.condense
            by_recording[segment.recording_id].append(_Kept(
                segment.id, order, segment.start, segment.end, segment.text.strip(), words, interpolated,
                condense.emotion if condense else None, selection.score if selection else 0.0,
                list(selection.reasons) if selection else [], tuple(condense.reliable_for) if condense else ()))
        self._recordings = {rid: sorted(kept, key=lambda k: (k.start, k.end, k.id)) for rid, kept in by_recording.items()}
        self._transcripts = self._all_segments(set(by_recording)) if self.config.transcript_stage else self._recordings
        plans = []
        for rid, kept in self._recordings.items():
            duration_s = self.context.recording(rid).duration
            for plan in plan_clips([Span(k.id, k.start, k.end) for k in kept], duration_s, self.config):
                plans.append((rid, plan))
        plans, self._over_budget = self._apply_budget(plans)
        order_of = {k.id: k.order for kept in self._recordings.values() for k in kept}
        self._emit_at = {max(plan.segment_ids, key=order_of.__getitem__): (rid, plan) for rid, plan in plans}
        self._count_plans(plans)

    def _all_segments(self, recording_ids: set[str]) -> dict[str, list[_Kept]]:
        """Every transcribed segment of these recordings; kept ones as condensed (their tags)."""
        kept = {k.id: k for ks in self._recordings.values() for k in ks}
        by_recording: dict[str, list[_Kept]] = defaultdict(list)
        for obj in self.context.records_of(self.config.transcript_stage):
            if obj["recording_id"] not in recording_ids:
                continue
            if obj["id"] in kept:
                by_recording[obj["recording_id"]].append(kept[obj["id"]])
                continue
            segment = Segment.model_validate(obj)
            words, interpolated = tag_words(segment)
            by_recording[segment.recording_id].append(_Kept(
                segment.id, -1, segment.start, segment.end, segment.text.strip(), words, interpolated, None, 0.0))
        return {rid: sorted(ks, key=lambda k: (k.start, k.end, k.id)) for rid, ks in by_recording.items()}

    def _apply_budget(self, plans: list[tuple[str, ClipPlan]]):
        if self.config.max_clips is None or len(plans) <= self.config.max_clips:
            return plans, {}

        def rank(item):
            rid, plan = item
            return (-self._score(rid, plan), stable_hash(clip_id(rid, plan.index)))

        ranked = sorted(plans, key=rank)
        chosen = {clip_id(rid, plan.index) for rid, plan in ranked[: self.config.max_clips]}
        over = {sid: clip_id(rid, plan.index) for rid, plan in ranked[self.config.max_clips:] for sid in plan.segment_ids}
        return [(rid, plan) for rid, plan in plans if clip_id(rid, plan.index) in chosen], over

    def _segments(self, rid: str, plan: ClipPlan) -> list[_Kept]:
        ids = set(plan.segment_ids)
        return [k for k in self._recordings[rid] if k.id in ids]

    def _score(self, rid: str, plan: ClipPlan) -> float:
        segs = self._segments(rid, plan)
        return round(sum(k.score for k in segs) / len(segs), 6)

    def _count_plans(self, plans: list[tuple[str, ClipPlan]]) -> None:
        self.count("clips", len(plans))
        self.count("clips_dropped/budget", len(set(self._over_budget.values())))
        seconds = 0.0
        for _, plan in plans:
            duration_s = plan.end - plan.start
            seconds += duration_s
            self.count(f"clip_duration/{duration_bucket(duration_s, CLIP_DURATION_EDGES_S)}")
            self.count("clips_short", int(plan.short))
            self.count("clips_padded", int(plan.padded_s > 0))
            self.count("clip_segments", len(plan.segment_ids))
        self.count("clip_hours", round(seconds / 3600.0, 6))
        logger.info("clips: %d clips planned (%.2f h)", len(plans), seconds / 3600.0)

    def process_batch(self, items: list[Segment]) -> Iterable[Clip | Drop | Skip]:
        for segment in items:
            if segment.id in self._over_budget:
                yield Drop(id=segment.id, reason=CLIP_BUDGET,
                           detail=f"its clip {self._over_budget[segment.id]} is beyond max_clips={self.config.max_clips}")
            elif segment.id in self._emit_at:
                yield self._clip(*self._emit_at[segment.id])

    def _clip(self, rid: str, plan: ClipPlan) -> Clip | Skip:
        cid = clip_id(rid, plan.index)
        recording = self.context.recording(rid)
        try:
            samples = read_range(recording.audio, plan.start, plan.end)
        except (OSError, RuntimeError, ValueError) as exc:  # soundfile's errors are RuntimeError/OSError
            return Skip(id=cid, reason=AUDIO_UNREADABLE, detail=f"{recording.audio}: {exc}", source=recording.audio)
        if len(samples) == 0:
            return Skip(id=cid, reason=AUDIO_UNREADABLE, detail=f"{recording.audio}: no samples in "
                        f"{plan.start:.2f}-{plan.end:.2f} s", source=recording.audio)
        end = min(plan.end, plan.start + len(samples) / SAMPLE_RATE)  # the file may be shorter than its record says
        path = self._write_flac(cid, samples)
        segs = self._segments(rid, plan)
        everything = self._transcripts[rid]
        inside = [k for k in everything if k.end > plan.start and k.start < end]
        words = [w for k in inside for w in k.words if plan.start <= (w.start + w.end) / 2 <= end]
        words.sort(key=lambda w: (w.start, w.end))
        aliases = speaker_aliases(words)
        position = {k.id: i for i, k in enumerate(everything)}
        first, last = position[inside[0].id], position[inside[-1].id]
        n = self.config.context_segments
        return Clip(
            id=cid, recording_id=rid, start=plan.start, end=end, audio=relative_to_run(path, self.context.run_dir),
            segments=[k.id for k in inside], words=words,
            tagged_transcript=tagged_transcript(words, aliases, self.config.min_word_prob),
            context={"before": " ".join(k.text for k in everything[max(0, first - n):first] if k.text),
                     "after": " ".join(k.text for k in everything[last + 1:last + 1 + n] if k.text)},
            selection=ClipSelection(
                score=self._score(rid, plan),
                reasons=list(dict.fromkeys(r for k in segs for r in k.reasons)),
                emotions=dict(sorted(Counter(k.emotion for k in segs if k.emotion).items())),
                reliable_for_any=sorted(set().union(*(k.reliable_for for k in segs))),
                reliable_for_all=sorted(set.intersection(*(set(k.reliable_for) for k in segs))),
                short=plan.short,
                padded_s=plan.padded_s,
                untranscribed_s=round(max(0.0, (end - plan.start) - _covered_s(inside, plan.start, end)), 3),
            ),
            metadata={"speakers": {alias: speaker for speaker, alias in aliases.items()},
                      "kept_segments": [k.id for k in segs],
                      "interpolated_word_times": [k.id for k in inside if k.interpolated]},
        )

    def _write_flac(self, cid: str, samples) -> Path:
        return write_flac_16k((self.context.stage_dir / "audio").resolve() / f"{audio_file_stem(cid)}.flac", samples)


def clip_id(recording_id: str, index: int) -> str:
    return f"{recording_id}-clip{index:04d}"


def audio_file_stem(cid: str) -> str:
    """A file name for a clip id: ids derived from paths (`wav/03-01-…`) hold separators, so
    anything outside [A-Za-z0-9._-] becomes '_' and a hash of the id keeps such names distinct."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", cid).lstrip(".")
    if safe == cid:
        return cid
    return f"{safe}-{hashlib.blake2b(cid.encode(), digest_size=4).hexdigest()}"


def _covered_s(segs: list[_Kept], start: float, end: float) -> float:
    """Seconds of [start, end] covered by the segments (overlaps counted once)."""
    covered = 0.0
    cursor = start
    for k in sorted(segs, key=lambda k: k.start):
        s, e = max(k.start, cursor), min(k.end, end)
        if e > s:
            covered += e - s
            cursor = e
    return covered

