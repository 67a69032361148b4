"""Word tags and the tagged transcript a QA generator reads.

Every word gets an emotion, a gender and a speaker:
- emotion: the label of the kept (consistent) window holding the word's midpoint, else the emotion
  condense attributed to the segment, else the word's own tag, else 'unknown' — so a word in a
  window the consistency rule rejected carries the utterance's reliable label, not the rejected one;
- gender: the word's tag, else the segment's (its label, else the manifest's), else 'unknown';
- speaker: the word's tag, else the segment's speaker, else 'unknown'.

A segment with text but no word times gets one word per token spread evenly over the segment
(`interpolated=True` from `tag_words`). Times stay seconds from the start of the recording.

The tagged transcript groups runs of words with the same tags, one line per speaker turn, and
names speakers S1, S2, … in order of appearance (the mapping goes into the clip's metadata):
`[S1|female|happy] so we did it [S1|female|surprised] really`
`[S2|male|neutral] okay`
"""

from __future__ import annotations

from ..records import ClipWord, Segment
from . import accessors
from .analysis import UNKNOWN, gender_of, speaker_of


def tag_words(segment: Segment) -> tuple[list[ClipWord], bool]:
    """The segment's words with all three tags; True when the times were interpolated."""
    attributed = (segment.metadata.get("condense") or {}).get("emotion")
    windows = [(w.start, w.end, accessors.emotion(w.emotion).label) for w in segment.windows]
    gender = gender_of(segment)
    speaker = speaker_of(segment)
    words = segment.words
    interpolated = not words and bool(segment.text.strip())
    if interpolated:
        tokens = segment.text.split()
        step = segment.duration / len(tokens)
        spans = [(tok, round(segment.start + i * step, 3), round(segment.start + (i + 1) * step, 3), None, None, None)
                 for i, tok in enumerate(tokens)]
    else:
        spans = [(w.word, w.start, w.end, w.emotion, w.gender, w.speaker) for w in words]
    tagged = []
    for word, start, end, w_emotion, w_gender, w_speaker in spans:
        mid = (start + end) / 2
        in_window = next((label for s, e, label in windows if s <= mid < e and label), None)
        tagged.append(ClipWord(
            word=word.strip(), start=start, end=end,
            emotion=in_window or attributed or w_emotion or UNKNOWN,
            gender=w_gender or gender, speaker=w_speaker or speaker,
        ))
    return [w for w in tagged if w.word], interpolated


def speaker_aliases(words: list[ClipWord]) -> dict[str, str]:
    """Original speaker id → S1, S2, … in order of first appearance."""
    aliases: dict[str, str] = {}
    for w in words:
        if w.speaker not in aliases:
            aliases[w.speaker] = f"S{len(aliases) + 1}"
    return aliases


def tagged_transcript(words: list[ClipWord], aliases: dict[str, str]) -> str:
    lines: list[str] = []
    parts: list[str] = []
    tag = None
    speaker = None
    for w in words:
        current = (aliases[w.speaker], w.gender, w.emotion)
        if current != tag:
            if speaker is not None and w.speaker != speaker:
                lines.append(" ".join(parts))
                parts = []
            parts.append(f"[{current[0]}|{current[1]}|{current[2]}]")
            tag, speaker = current, w.speaker
        parts.append(w.word)
    if parts:
        lines.append(" ".join(parts))
    return "\n".join(lines)
