"""What a speech-LLM hears of a clip for one QA item, so that no item is ever about audio the model
does not hear (docs/design.md §5). One rule for `cpqa export`, `cpqa evaluate --long-audio` and `cpqa
finetune`, so training and evaluation hear the same.

A model hears `window_s` seconds at once (Qwen2-Audio: 30 s, its Whisper feature extractor's
window). A clip that fits is heard whole. A longer clip is cut into **heard windows**: ceil(duration
/ window_s) windows of window_s each, spread evenly from the clip's start to its end, so every window
is full and they overlap when the duration is not a multiple of window_s (a 45.8-s clip: 0-30 s and
15.8-45.8 s), which lets evidence near a boundary still fit one window.

**Where an item's evidence lies**, in seconds from the clip's start: `metadata.evidence_s` when an
export wrote it; else the item's `evidence` phrase found in the clip's words: the content words it
shares with them (lower case, letters and digits, function words aside), in the tightest stretch of
at most MAX_EVIDENCE_S that holds the most of them; placed when that stretch holds at least
MIN_EVIDENCE_WORDS of them and at least half of the phrase's content words. (Generators write the
evidence as a short phrase naming the moment, e.g. "when she says the train left without her".)

Policies (`LongAudio`):
- `split`: the item goes with the first window that holds its evidence;
- `drop`: the model hears the first window only (what a trainer that truncates hears); an item
  whose evidence lies past it is dropped;
- `chunk` (evaluation and fine-tuning): the whole clip in consecutive pieces of window_s, given to
  the model together, so every item is heard.
Under `split` and `drop` an item of a long clip whose evidence cannot be placed, or does not fit
one window, is dropped with its reason (DROPPED_*), never kept on a guess.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..records import Clip, ClipWord, QAItem

LongAudio = Literal["split", "drop", "chunk"]
LONG_AUDIO_POLICIES: tuple[str, ...] = ("split", "drop", "chunk")
QWEN2_AUDIO_WINDOW_S = 30.0
"""Qwen2-Audio hears 30 s at once (Whisper's feature extractor: 480,000 samples at 16 kHz)."""
TOLERANCE_S = 0.05
"""Slack for word times and durations at a window's edges (codec frames, rounding)."""
MAX_EVIDENCE_S = 10.0
MIN_EVIDENCE_WORDS = 2
EVIDENCE_KEY = "evidence_s"
"""QAItem metadata: [start, end] of the evidence in seconds from the start of the item's audio."""

DROPPED_NOT_PLACED = "evidence_not_placed"
DROPPED_BEYOND_WINDOW = "evidence_beyond_window"
DROPPED_ACROSS_WINDOWS = "evidence_across_windows"

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_FUNCTION_WORDS = frozenset("""a an the and or but so of to in on at by for with from as is are was were be been
being am do does did it its it's this that these those there here he she they we you i me him her them us my his
their our your what when where which who how why not no yes if then than about into out up down over just very
speaker speakers say says said saying talk talks talking voice tone clip moment part while""".split())
"""Words of an evidence phrase that name no spoken word (function words, and the generator's own
vocabulary for pointing at a moment)."""


@dataclass(frozen=True)
class Span:
    """Seconds from the start of the clip's audio."""

    start: float
    end: float

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    def holds(self, other: Span) -> bool:
        return self.start - TOLERANCE_S <= other.start and other.end <= self.end + TOLERANCE_S


@dataclass(frozen=True)
class Placement:
    """What the model hears for one item: all of the clip, one window of it, or its chunks; or
    nothing (`dropped` says why)."""

    window: Span | None
    index: int = 0
    """The window's number among the clip's heard windows (0 for a clip heard whole)."""
    cut: Literal["none", "window", "chunked", "dropped"] = "none"
    dropped: str | None = None
    evidence: Span | None = None


def heard_windows(duration_s: float, window_s: float) -> list[Span]:
    """The clip's heard windows (see the module docstring); one window for a clip that fits."""
    if duration_s <= window_s + TOLERANCE_S:
        return [Span(0.0, duration_s)]
    n = math.ceil(duration_s / window_s - 1e-9)
    hop = (duration_s - window_s) / (n - 1)
    return [Span(k * hop, k * hop + window_s) if k < n - 1 else Span(duration_s - window_s, duration_s) for k in range(n)]


def place(duration_s: float, evidence: Span | None, window_s: float | None, policy: LongAudio) -> Placement:
    """Where an item with `evidence` in a clip of `duration_s` is heard, under `policy`.
    `window_s` None: the model hears any length (the clip is heard whole)."""
    whole = Span(0.0, duration_s)
    if window_s is None or duration_s <= window_s + TOLERANCE_S:
        return Placement(whole, evidence=evidence)
    if policy == "chunk":
        return Placement(whole, cut="chunked", evidence=evidence)
    if evidence is None:
        return Placement(None, cut="dropped", dropped=DROPPED_NOT_PLACED)
    windows = heard_windows(duration_s, window_s)
    candidates = windows if policy == "split" else windows[:1]
    for index, window in enumerate(candidates):
        if window.holds(evidence):
            return Placement(window, index, "window", evidence=evidence)
    reason = DROPPED_ACROSS_WINDOWS if policy == "split" else DROPPED_BEYOND_WINDOW
    return Placement(None, cut="dropped", dropped=reason, evidence=evidence)


def evidence_span(qa: QAItem, clip: Clip | None) -> Span | None:
    """Where the item's evidence lies in its audio (see the module docstring); None when unknown."""
    given = qa.metadata.get(EVIDENCE_KEY)
    if given:
        return Span(float(given[0]), float(given[1]))
    if clip is None or not qa.evidence:
        return None
    return find_words(qa.evidence, [w.model_copy(update={"start": w.start - clip.start, "end": w.end - clip.start})
                                    for w in clip.words])


def find_words(phrase: str, words: Sequence[ClipWord]) -> Span | None:
    """The tightest stretch of `words` (times as given) holding most of the phrase's content words."""
    wanted = {t for t in _TOKEN.findall(phrase.lower()) if t not in _FUNCTION_WORDS}
    hits = [(w, token) for w in sorted(words, key=lambda w: w.start)
            for token in _TOKEN.findall(w.word.lower()) if token in wanted]
    best: tuple[int, float, int, int] | None = None  # (-distinct, duration, i, k)
    for i, (first, _) in enumerate(hits):
        seen: set[str] = set()
        for k in range(i, len(hits)):  # the shortest stretch from i reaching each count of distinct words
            if k > i and hits[k][0].end - first.start > MAX_EVIDENCE_S:
                break
            seen.add(hits[k][1])
            key = (-len(seen), hits[k][0].end - first.start, i, k)
            if best is None or key < best:
                best = key
    if best is None or -best[0] < max(MIN_EVIDENCE_WORDS, math.ceil(len(wanted) / 2)):
        return None
    _, _, i, k = best
    return Span(round(hits[i][0].start, 3), round(max(w.end for w, _ in hits[i:k + 1]), 3))


def words_in(clip: Clip, window: Span) -> list[ClipWord]:
    """The clip's words heard in `window` (their middle inside it)."""
    return [w for w in clip.words if window.start <= (w.start + w.end) / 2 - clip.start <= window.end]
