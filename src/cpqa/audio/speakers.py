"""Speaker turns given with a recording (an RTTM file or a manifest's speaker column) onto
segments and words.

Ingest stores turns as `Recording.metadata["speaker_turns"] = [{start, end, speaker}, ...]`; the
annotate stage then gives every word the speaker whose turn overlaps it most, a segment without a
speaker its main speaker, and each segment a speaker count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CPQAError

TURNS_KEY = "speaker_turns"
TURNS_MODEL = "given-turns"


@dataclass(frozen=True)
class Turn:
    start: float
    end: float
    speaker: str


def read_rttm(path: str | Path, file_id: str | None = None) -> list[Turn]:
    """SPEAKER lines of an RTTM file (optionally of one file id), sorted by start."""
    turns = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields or fields[0] != "SPEAKER":
            continue
        try:
            if file_id is None or fields[1] == file_id:
                start, duration = float(fields[3]), float(fields[4])
                turns.append(Turn(start, start + duration, fields[7]))
        except (IndexError, ValueError) as exc:
            raise CPQAError(f"{path}:{lineno}: not an RTTM SPEAKER line: {line.strip()!r}") from exc
    return sorted(turns, key=lambda t: (t.start, t.end))


def turns_from_metadata(metadata: dict[str, Any]) -> list[Turn]:
    return [Turn(float(t["start"]), float(t["end"]), str(t["speaker"])) for t in metadata.get(TURNS_KEY) or []]


def overlaps(turns: list[Turn], start: float, end: float) -> dict[str, float]:
    """Seconds each speaker's turns overlap [start, end]."""
    out: dict[str, float] = {}
    for turn in turns:
        shared = min(end, turn.end) - max(start, turn.start)
        if shared > 0:
            out[turn.speaker] = out.get(turn.speaker, 0.0) + shared
    return out


def speaker_at(turns: list[Turn], start: float, end: float) -> str | None:
    """The speaker whose turns cover most of [start, end] (for a word; its midpoint if zero-length)."""
    if end <= start:
        start, end = start - 0.01, start + 0.01
    shares = overlaps(turns, start, end)
    return max(shares, key=shares.get) if shares else None
