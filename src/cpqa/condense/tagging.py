"""Word tags and the tagged transcript a QA generator reads.

Every word gets an emotion, a gender and a speaker, and a tag never shows a class no label
vouches for:
- emotion: only in a segment condensation kept as reliable for emotion
  (`Segment.condense.reliable_for` holds 'emotion'): the label of the kept (consistent)
  window holding the word's midpoint, else 'no clear emotion' where the emotion model abstained
  on the word's window, else the emotion condense attributed to the segment. Every other word —
  in a segment kept for other labels, or in speech condensation did not keep — says
  `no clear emotion` (`vocabulary.NO_CLEAR_EMOTION`): a window the consistency rule
  rejected, or a label that never recurred, is never shown as a class;
- gender: the word's own tag (annotate gives each word its speaker's pooled gender, or 'unknown
  gender' where that abstained), else the segment's (its pooled label, else the manifest's),
  else 'unknown gender' (that label abstained, or there is none);
- speaker: the word's tag, else the segment's speaker, else 'unknown'.

A segment with text but no word times gets one word per token spread evenly over the segment
(`interpolated=True` from `tag_words`). Times stay seconds from the start of the recording.

The tagged transcript groups runs of words with the same tags, one line per speaker turn, and
names speakers S1, S2, … in order of appearance (the mapping goes into the clip's metadata):
`[S1|female|happy] so we did it [S1|female|no clear emotion] really`
`[S2|male|no clear emotion] okay`
"""

from __future__ import annotations

from ..reasons import EMOTION_ABSTAINED
from ..records import ClipWord, Segment
from ..vocabulary import NO_CLEAR_EMOTION, UNKNOWN_GENDER
from .reliability import segment_gender, speaker_of


def tag_words(segment: Segment) -> tuple[list[ClipWord], bool]:
    """The segment's words with all three tags; True when the times were interpolated."""
    condense = segment.condense
    reliable = condense is not None and "emotion" in condense.reliable_for
    attributed = condense.emotion if reliable else None
    windows = [(w.start, w.end, w.emotion.category if w.emotion else None) for w in segment.windows] if reliable else []
    abstained = [(w.start, w.end) for w in condense.dropped_windows
                 if w.reason == EMOTION_ABSTAINED] if reliable else []
    gender = segment_gender(segment)
    speaker = speaker_of(segment)
    words = segment.words
    interpolated = not words and bool(segment.text.strip())
    if interpolated:
        tokens = segment.text.split()
        step = segment.duration / len(tokens)
        spans = [(tok, round(segment.start + i * step, 3), round(segment.start + (i + 1) * step, 3), None, None, None)
                 for i, tok in enumerate(tokens)]
    else:
        spans = [(w.word, w.start, w.end, w.gender, w.speaker, w.prob) for w in words]
    tagged = []
    for word, start, end, w_gender, w_speaker, prob in spans:
        mid = (start + end) / 2
        in_window = next((label for s, e, label in windows if s <= mid < e and label), None)
        unclear = any(s <= mid < e for s, e in abstained)
        tagged.append(ClipWord(
            word=word.strip(), start=start, end=end, prob=prob,
            emotion=in_window or (NO_CLEAR_EMOTION if unclear else attributed) or NO_CLEAR_EMOTION,
            gender=w_gender or gender or UNKNOWN_GENDER, speaker=w_speaker or speaker,
        ))
    return [w for w in tagged if w.word], interpolated


def speaker_aliases(words: list[ClipWord]) -> dict[str, str]:
    """Original speaker id → S1, S2, … in order of first appearance."""
    aliases: dict[str, str] = {}
    for w in words:
        if w.speaker not in aliases:
            aliases[w.speaker] = f"S{len(aliases) + 1}"
    return aliases


UNSURE_WORDS = "…"
"""What the transcript shows for a run of words the ASR was unsure of."""


def tagged_transcript(words: list[ClipWord], aliases: dict[str, str], min_word_prob: float = 0.0) -> str:
    """The compact text a QA generator reads. Words the ASR gave a probability below
    `min_word_prob` show as UNSURE_WORDS (one per run), so no question is built on a mishearing."""
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
        unsure = w.prob is not None and w.prob < min_word_prob
        if not (unsure and parts[-1] == UNSURE_WORDS):
            parts.append(UNSURE_WORDS if unsure else w.word)
    if parts:
        lines.append(" ".join(parts))
    return "\n".join(lines)
