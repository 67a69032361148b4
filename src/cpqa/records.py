"""The public record schema (docs/design.md §2). Times are seconds (float) from the start of the recording."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from .record_parts import (
    ClipSelection,
    Condensation,
    Diarization,
    Generator,
    Label,
    Labels,
    Part,
    QAFilters,
    Selection,
    SpeakerTurn,
)


class Record(BaseModel):
    """Base of every record: an id and the user's own data (`metadata`). Unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid")
    kind: ClassVar[str] = "record"
    in_metadata: ClassVar[tuple[str, ...]] = ()
    """Typed fields that a record file holds inside `metadata`, where cpqa has always written them:
    read out of it, written back into it (when set)."""

    id: str
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _out_of_metadata(cls, data: Any) -> Any:
        metadata = data.get("metadata") if isinstance(data, dict) else None
        if not cls.in_metadata or not isinstance(metadata, dict) or not set(cls.in_metadata) & set(metadata):
            return data
        return {**data, **{k: metadata[k] for k in cls.in_metadata if k in metadata},
                "metadata": {k: v for k, v in metadata.items() if k not in cls.in_metadata}}

    @model_serializer(mode="wrap")
    def _into_metadata(self, handler) -> dict[str, Any]:
        data = handler(self)
        for key in self.in_metadata:
            value = data.pop(key, None)
            if value is not None:
                data["metadata"] = {**data["metadata"], key: value}
        return data


class Recording(Record):
    kind: ClassVar[str] = "recording"
    in_metadata: ClassVar[tuple[str, ...]] = ("speaker_turns", "diarization")

    audio: str
    """Path of the audio the pipeline reads: the 16 kHz mono file (the source itself when it is
    already 16 kHz mono WAV/FLAC, else a normalised copy inside the run)."""
    duration: float
    sample_rate: int
    channels: int
    source: str | None = None
    """The original file (path or URI) the recording was decoded from."""
    source_sample_rate: int | None = None
    source_channels: int | None = None
    speaker_turns: list[SpeakerTurn] | None = None
    """Who speaks when: given (an RTTM, a manifest's speakers) at ingest, or found by the diarize stage."""
    diarization: Diarization | None = None


class Word(BaseModel):
    model_config = ConfigDict(extra="forbid")

    word: str
    start: float
    end: float
    prob: float | None = None
    """The ASR's probability for the word (None where it gave none)."""
    emotion: str | None = None
    gender: str | None = None
    speaker: str | None = None


class Window(Part):
    """An analysis window: the label belongs to its central part [start, end]; the model saw
    `context_start`..`context_end`."""

    start: float
    end: float
    context_start: float | None = None
    context_end: float | None = None
    emotion: Label | None = None
    gender: Label | None = None
    valence: float | None = None
    arousal: float | None = None
    dominance: float | None = None


class Segment(Record):
    kind: ClassVar[str] = "segment"
    in_metadata: ClassVar[tuple[str, ...]] = ("condense", "selection")

    recording_id: str
    start: float
    end: float
    text: str = ""
    language: str | None = None
    speaker: str | None = None
    words: list[Word] = Field(default_factory=list)
    windows: list[Window] = Field(default_factory=list)
    labels: Labels = Field(default_factory=dict)
    condense: Condensation | None = None
    """What condensation decided (set on the segments it keeps)."""
    selection: Selection | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start

    @staticmethod
    def make_id(recording_id: str, n: int) -> str:
        return f"{recording_id}-{n:06d}"


class ClipWord(Word):
    """A word of a clip, its emotion, gender and speaker tags all set (`condense.tagging`)."""


class Clip(Record):
    kind: ClassVar[str] = "clip"

    recording_id: str
    start: float
    end: float
    audio: str
    segments: list[str] = Field(default_factory=list)
    words: list[ClipWord] = Field(default_factory=list)
    tagged_transcript: str = ""
    context: dict[str, str] = Field(default_factory=dict)
    selection: ClipSelection = Field(default_factory=ClipSelection)


QAType = Literal["C", "DE", "DG", "DS", "CE", "CG", "CS", "EMP"]


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str
    answer: str


class QAItem(Record):
    kind: ClassVar[str] = "qa"

    clip_id: str
    type: QAType
    turns: list[Turn]
    evidence: str | None = None
    generator: Generator = Field(default_factory=Generator)
    filters: QAFilters = Field(default_factory=QAFilters)


class LeftOut(BaseModel):
    """An input that produced no output, with a reason from `cpqa.reasons` and a human detail."""

    model_config = ConfigDict(extra="forbid")

    id: str
    reason: str
    detail: str = ""
    source: str | None = None


class Skip(LeftOut):
    """An input a stage failed on (a broken file, an LLM that never answered): skipped.jsonl, and
    the CLI warns. A deliberate leave-out is a `Drop`."""


class Drop(LeftOut):
    """An input a filter left out by design (nothing was wrong with it): excluded.jsonl, counted as
    `dropped/<reason>`, never warned about."""

    item: dict[str, Any] | None = None
    """The dropped record itself where a reader wants it back (a QA item, for review and export)."""


RECORD_TYPES: dict[str, type[Record]] = {
    cls.kind: cls for cls in (Recording, Segment, Clip, QAItem)
}
