"""Which speaker each planned item asks about, and what its labels say of them (QA types v2).

A small generator asked for "a question about a speaker's voice gender" picks the speaker itself,
often one whose gender cpqa does not know ("the man" in a clip whose only known voices are
female), and every such attempt is dropped. From v2 each slot of a type that needs a label names
its speaker, one whose label is confident, by their code in the tagged transcript and how a
listener points to them (by order, "the second speaker", as the claim check reads order words;
past the ordinals the word lists know, by what they say), with the label the answer must give.
No words of the speech enter the instruction: speech stays between the prompt's data markers.
Speakers are taken in order of speaking time (the most evidence first), the k-th slot of a type
the k-th eligible speaker (round robin), so several slots of a type spread over the speakers. A
`reply` target is a speaker and the one who replies next, both at some length
(`MIN_REPLY_WORDS`, short turns between them skipped), the longest such exchange first.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

from .facts import ClipFacts, SpeakerFacts, affected
from .types import QATypes, Slot

MIN_REPLY_WORDS = 8
"""Words a turn and the reply after it each need before an item asks how the second speaker
responds to the first (a "Mm." answers nothing)."""
MAX_SKIPPED_TURNS = 2
"""Shorter turns (backchannels, a word or two cut off) that may come between a turn and its reply."""


@dataclass(frozen=True)
class Target:
    """The speaker a slot asks about, as the generator is told of them."""

    alias: str
    """Their code in the tagged transcript (S2)."""
    ordinal: str | None
    """How a listener points to them by order ('the second speaker'); None past the known ordinals."""
    gender: str | None
    emotion: str | None
    """Their dominant confident emotion."""
    partner: Target | None = None
    """The other speaker of a pair (a type whose `target` is `pair`: told apart from this one)."""

    @property
    def who(self) -> str:
        """The speaker as an instruction names them: by order, else by their code, which the item
        must not repeat (a small model copies a code it is given as a name: "the speaker tagged S1")."""
        return self.ordinal or f"the speaker {self.alias} of the summary (point to them by what they say, never by the code)"


def slot_targets(facts: ClipFacts, slots: list[Slot], qa_types: QATypes,
                 ordinals: dict[str, int]) -> list[Target | None]:
    """One target per slot: a speaker whose labels the type needs are confident, a pair of
    speakers, or None (the type's `target` is `none`, or the clip has too few speakers)."""
    names = {n: word for word, n in ordinals.items()}
    by_seconds = sorted(facts.speakers, key=lambda s: -s.seconds)
    taken: dict[str, int] = defaultdict(int)
    replies = reply_pairs(facts)
    out: list[Target | None] = []
    for slot in slots:
        spec = qa_types.types[slot.code]
        eligible = [s for s in by_seconds if ("emotion" not in spec.labels or s.dominant_emotion)
                    and ("affect" not in spec.labels or affected(s)) and ("gender" not in spec.labels or s.gender)]
        k = taken[slot.code]
        taken[slot.code] += 1
        if spec.target == "speaker" and eligible:
            out.append(_target(eligible[k % len(eligible)], names))
        elif spec.target == "reply" and replies:
            speaker, replier = replies[k % len(replies)]
            out.append(replace(_target(speaker, names), partner=_target(replier, names)))
        elif spec.target == "pair" and len(eligible) > 1:
            pair = sorted([eligible[k % len(eligible)], eligible[(k + 1) % len(eligible)]], key=_number)
            out.append(replace(_target(pair[0], names), partner=_target(pair[1], names)))
        else:
            out.append(None)
    return out


def reply_pairs(facts: ClipFacts) -> list[tuple[SpeakerFacts, SpeakerFacts]]:
    """(speaker, the speaker who replies) for each turn of at least `MIN_REPLY_WORDS` words and the
    next such turn of another speaker, with at most `MAX_SKIPPED_TURNS` shorter turns between them
    (a turn: a speaker's stretches in a row); a pair once, by its longest exchange (the shorter
    turn's words), longest first."""
    by_alias = {s.alias: s for s in facts.speakers}
    best: dict[tuple[str, str], int] = {}
    last: tuple[str, int, int] | None = None  # the latest turn long enough: alias, words, position
    for position, (alias, said) in enumerate(facts.turns):
        words = len(said)
        if words < MIN_REPLY_WORDS:
            continue
        if last and last[0] != alias and position - last[2] - 1 <= MAX_SKIPPED_TURNS:
            best[last[0], alias] = max(best.get((last[0], alias), 0), min(last[1], words))
        last = (alias, words, position)
    ranked = sorted(best, key=lambda key: (-best[key], key))
    return [(by_alias[a], by_alias[b]) for a, b in ranked]


def _number(speaker: SpeakerFacts) -> int:
    return int(speaker.alias[1:])


def _target(speaker: SpeakerFacts, names: dict[int, str]) -> Target:
    number = _number(speaker)
    return Target(alias=speaker.alias, ordinal=f"the {names[number]} speaker" if number in names else None,
                  gender=speaker.gender, emotion=speaker.dominant_emotion)
