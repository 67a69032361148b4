"""Speaker turns given with a recording (an RTTM file or a manifest's speaker column) onto
segments and words.

Ingest stores turns as `Recording.speaker_turns` (`record_parts.SpeakerTurn`: start, end, speaker); the
annotate stage then gives every word the speaker whose turn overlaps it most (a change of speaker
moved back to the sentence end or pause just before it, across the recording's segments:
`snap_changes`), a segment without a
speaker its main speaker, and each segment a speaker count.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import CPQAError
from ..record_parts import SpeakerTurn as Turn
from ..records import Word

TURNS_MODEL = "given-turns"
SNAP_WORDS = 2
"""Words a speaker change may move back (a diarizer hears a new voice late: its embeddings span a
second or more, so the new speaker's first words go to the one before)."""
SNAP_GAP_S = 0.2
"""A pause this much longer than the one at the change marks where the new speaker starts."""


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


def snap_changes(words: list[Word]) -> list[Word]:
    """The words (in time order) with each change of speaker moved back, by at most `SNAP_WORDS`
    words, to a sentence end or a pause (`SNAP_GAP_S` longer than the one at the change) just
    before it, unless the change is at a sentence end already: on the AMI excerpt the diarizer gave
    "I was" of "I was thinking on the same lines" to the speaker before. Only the speaker of the
    words moved changes (their times, text and other tags stay)."""
    out = list(words)
    for change in range(1, len(out)):
        before, after = out[change - 1], out[change]
        if before.speaker == after.speaker or after.speaker is None or _ends_sentence(before):
            continue
        gap = max(after.start - before.end, 0.0)  # words may overlap at a change
        for start in range(change - 1, max(change - SNAP_WORDS, 1) - 1, -1):
            previous = out[start - 1]
            if previous.speaker != before.speaker or any(w.speaker != before.speaker for w in out[start:change]):
                break
            if _ends_sentence(previous) or out[start].start - previous.end >= gap + SNAP_GAP_S:
                out[start:change] = [w.model_copy(update={"speaker": after.speaker}) for w in out[start:change]]
                break
    return out


def _ends_sentence(word: Word) -> bool:
    """The word closes a sentence ("display."; a trailing-off "they're..." does not)."""
    return word.word.endswith((".", "?", "!")) and not word.word.endswith(("...", "…"))
