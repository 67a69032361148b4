"""Clip-level labels a QA generator and the label-consistency filter read, from a clip's tagged
words: who speaks (S1, S2, … as in the tagged transcript), each speaker's voice gender and
emotions, the clip's dominant emotion, the number of speakers, and its moments (stretches of one
speaker's words under one emotion tag) that the claim checker (`cpqa.qa.claims`) reads.

Shares are of speech time (word durations). Emotions 'unknown', 'other' and 'no clear emotion'
(the emotion model abstained, or condensation did not confirm it) are no label, nor is the gender
'unknown gender'. The number of speakers is unknown (None) when any word has no speaker (no
diarization ran).

`unavailable(label)` says why a clip cannot carry questions about a label (the QA stage counts it
under `qa/types_unavailable_because/<why>`): `no_reliable_emotion` (no word carries a confirmed
emotion), `no_confident_gender` (some speaker's voice gender is unknown or abstained: a gender
question could be about them), `no_speaker_turns` (no diarization or given turns).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from ..condense.tagging import speaker_aliases
from ..records import Clip, ClipWord
from ..vocabulary import NOT_A_LABEL

NO_RELIABLE_EMOTION = "no_reliable_emotion"
NO_CONFIDENT_GENDER = "no_confident_gender"
NO_SPEAKER_TURNS = "no_speaker_turns"
NO_EMOTION_BEYOND_NEUTRAL = "no_emotion_beyond_neutral"
MIN_WORD_S = 0.01
_TAG = re.compile(r"\[[^\]\n]*\|[^\]\n]*\]\s*")
OTHER_EMOTION_SHARE = 0.15
"""An emotion a speaker shows for at least this share of their speech is worth mentioning."""


@dataclass(frozen=True)
class SpeakerFacts:
    alias: str
    gender: str | None
    dominant_emotion: str | None
    emotions: dict[str, float]
    """Emotion → share of this speaker's labelled speech time."""
    seconds: float

    @property
    def other_emotions(self) -> list[str]:
        return [e for e, share in self.emotions.items() if e != self.dominant_emotion and share >= OTHER_EMOTION_SHARE]

    @property
    def salient_emotions(self) -> set[str]:
        """The emotions the generator is told of: the dominant one and the other ones worth mentioning."""
        return {e for e in [self.dominant_emotion, *self.other_emotions] if e}


@dataclass(frozen=True)
class Stretch:
    """A moment of the clip: a run of one speaker's words under one emotion tag (None: no label)."""

    alias: str
    emotion: str | None
    text: str


@dataclass(frozen=True)
class ClipFacts:
    clip_id: str
    tagged_transcript: str
    transcript: str
    """The words alone: what a text-only model would get from ASR."""
    speakers: list[SpeakerFacts] = field(default_factory=list)
    speaker_count: int | None = None
    emotions: dict[str, float] = field(default_factory=dict)
    """Emotion → share of the clip's labelled speech time."""
    dominant_emotion: str | None = None
    stretches: list[Stretch] = field(default_factory=list)
    """The clip's moments in order, as the tagged transcript groups them."""
    background: str = ""
    """What is said just before and after the clip (its context): given to the generator to
    understand the clip, never to ask about."""

    @property
    def turns(self) -> list[tuple[str, list[str]]]:
        """(alias, words) of each turn: a speaker's stretches in a row, in order."""
        out: list[tuple[str, list[str]]] = []
        for stretch in self.stretches:
            if out and out[-1][0] == stretch.alias:
                out[-1][1].extend(stretch.text.split())
            else:
                out.append((stretch.alias, stretch.text.split()))
        return out

    @property
    def genders(self) -> set[str]:
        return {s.gender for s in self.speakers if s.gender}

    @property
    def speaker_emotions(self) -> set[str]:
        """The clip's dominant emotion and each speaker's."""
        return {e for e in [self.dominant_emotion, *(s.dominant_emotion for s in self.speakers)] if e}

    def unavailable(self, label: str) -> str | None:
        """Why the clip cannot carry questions about `label` (emotion, gender, speakers, affect:
        a speaker who sounds mostly other than neutral); None when it carries the label well
        enough to ask about it."""
        carried, why = {
            "emotion": (bool(self.emotions), NO_RELIABLE_EMOTION),
            "affect": (any(affected(s) for s in self.speakers), NO_EMOTION_BEYOND_NEUTRAL),
            # a question may be about any speaker whose gender is confident; the claim check holds it there
            "gender": (any(s.gender for s in self.speakers), NO_CONFIDENT_GENDER),
            "speakers": (self.speaker_count is not None, NO_SPEAKER_TURNS),
        }[label]
        return None if carried else why


AFFECT_MIN_S = 1.0
"""Speech a speaker needs before a reply to how they sound is asked for (a happy "mm yeah" is no
state to respond to)."""


def affected(speaker: SpeakerFacts) -> bool:
    """The speaker sounds mostly some emotion other than neutral, for long enough: there is a state
    to respond to."""
    return speaker.dominant_emotion not in (None, "neutral") and speaker.seconds >= AFFECT_MIN_S


def _label(value: str | None) -> str | None:
    value = (value or "").strip().lower()
    return None if value in NOT_A_LABEL else value


def _shares(seconds: Counter) -> dict[str, float]:
    total = sum(seconds.values())
    return {k: round(v / total, 3) for k, v in seconds.most_common()} if total else {}


def clip_facts(clip: Clip, normalise_gender=_label) -> ClipFacts:
    """`normalise_gender` maps a gender tag to a canonical name (None: no label)."""
    words: list[ClipWord] = clip.words
    aliases = speaker_aliases(words)
    by_speaker: dict[str, list[ClipWord]] = defaultdict(list)
    for w in words:
        by_speaker[w.speaker].append(w)
    clip_emotions: Counter = Counter()
    speakers = []
    for speaker, alias in aliases.items():
        emotions: Counter = Counter()
        genders: Counter = Counter()
        seconds = 0.0
        for w in by_speaker[speaker]:
            duration = max(MIN_WORD_S, w.end - w.start)
            seconds += duration
            if emotion := _label(w.emotion):
                emotions[emotion] += duration
            if gender := normalise_gender(w.gender):
                genders[gender] += duration
        clip_emotions.update(emotions)
        shares = _shares(emotions)
        speakers.append(SpeakerFacts(alias=alias, gender=genders.most_common(1)[0][0] if genders else None,
                                     dominant_emotion=next(iter(shares), None), emotions=shares,
                                     seconds=round(seconds, 2)))
    diarized = bool(words) and all(_label(w.speaker) for w in words)
    # A clip built by hand may carry only its tagged transcript: its words are the untagged text.
    transcript = " ".join(w.word for w in words) if words else " ".join(_TAG.sub("", clip.tagged_transcript).split())
    shares = _shares(clip_emotions)
    return ClipFacts(
        clip_id=clip.id, tagged_transcript=clip.tagged_transcript, transcript=transcript,
        speakers=speakers, speaker_count=len(aliases) if diarized else None, emotions=shares,
        dominant_emotion=next(iter(shares), None), stretches=_stretches(words, aliases),
        background=" ".join(clip.context.get(k, "") for k in ("before", "after")).strip(),
    )


def _stretches(words: list[ClipWord], aliases: dict[str, str]) -> list[Stretch]:
    runs: list[tuple[str, str | None, list[str]]] = []
    for w in words:
        key = (aliases[w.speaker], _label(w.emotion))
        if runs and runs[-1][:2] == key:
            runs[-1][2].append(w.word)
        else:
            runs.append((*key, [w.word]))
    return [Stretch(alias=alias, emotion=emotion, text=" ".join(tokens)) for alias, emotion, tokens in runs]
