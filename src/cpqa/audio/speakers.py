"""Speaker turns given with a recording (an RTTM file or a manifest's speaker column) onto
segments and words.

Ingest stores turns as `Recording.speaker_turns` (`record_parts.SpeakerTurn`: start, end, speaker); the
annotate stage then gives every word the speaker whose turn overlaps it most, a segment without a
speaker its main speaker, and each segment a speaker count.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import CPQAError
from ..record_parts import SpeakerTurn as Turn

TURNS_MODEL = "given-turns"


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
                turns.append(Turn(start=start, end=start + duration, speaker=fields[7]))
        except (IndexError, ValueError) as exc:
            raise CPQAError(f"{path}:{lineno}: not an RTTM SPEAKER line: {line.strip()!r}") from exc
    return sorted(turns, key=lambda t: (t.start, t.end))


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
