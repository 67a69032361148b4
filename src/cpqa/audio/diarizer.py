"""Capability 'diarizer': what every diarization backend provides and shares (`cpqa.audio.diarize`)."""

from __future__ import annotations

from typing import Protocol

from pydantic import Field, model_validator

from ..stage import Config as BackendConfig
from .speakers import Turn


class Diarizer(Protocol):
    """capability 'diarizer': the speaker turns of a 16 kHz mono file, in seconds from its start."""

    model_name: str

    def diarize(self, path: str, duration: float) -> list[Turn]: ...


class SpeakerBounds(BackendConfig):
    """Speaker-count options both backends share."""

    num_speakers: int | None = Field(None, ge=1, description="The exact number of speakers, when known.")
    min_speakers: int | None = Field(None, ge=1, description="At least this many speakers.")
    max_speakers: int | None = Field(None, ge=1, description="At most this many speakers.")

    @model_validator(mode="after")
    def _consistent(self):
        low, high = self.min_speakers or 1, self.max_speakers
        if high is not None and low > high:
            raise ValueError(f"min_speakers {low} is above max_speakers {high}")
        if self.num_speakers is not None and (self.num_speakers < low or (high and self.num_speakers > high)):
            raise ValueError(f"num_speakers {self.num_speakers} is outside min/max_speakers")
        return self


def named_by_first_appearance(turns: list[Turn]) -> list[Turn]:
    """Turns sorted by time with speakers renamed SPK0, SPK1, ... in order of first appearance,
    so equal output means equal names whatever labels a backend used."""
    turns = sorted(turns, key=lambda t: (t.start, t.end, t.speaker))
    names: dict[str, str] = {}
    for t in turns:
        names.setdefault(t.speaker, f"SPK{len(names)}")
    return [Turn(start=t.start, end=t.end, speaker=names[t.speaker]) for t in turns]

