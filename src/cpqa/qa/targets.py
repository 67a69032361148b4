"""Which speaker each planned item asks about, and what its labels say of them (QA types v2).

A small generator asked for "a question about a speaker's voice gender" picks the speaker itself,
often one whose gender cpqa does not know ("the man" in a clip whose only known voices are
female), and every such attempt is dropped. From v2 each slot of a type that needs a label names
its speaker, one whose label is confident, by their code in the tagged transcript and how a
listener points to them (by order, "the second speaker", as the claim check reads order words;
past the ordinals the word lists know, by what they say), with the label the answer must give.
No words of the speech enter the instruction: speech stays between the prompt's data markers.
Speakers are taken in order of speaking time (the most evidence first), the k-th slot of a type
the k-th eligible speaker (round robin), so several slots of a type spread over the speakers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .facts import ClipFacts, SpeakerFacts
from .types import QATypes, Slot

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


def slot_targets(facts: ClipFacts, slots: list[Slot], qa_types: QATypes,
                 ordinals: dict[str, int]) -> list[Target | None]:
    """One target per slot (None for types that need no speaker's label: C, DS, CS)."""
    names = {n: word for word, n in ordinals.items()}
    by_seconds = sorted(facts.speakers, key=lambda s: -s.seconds)
    taken: dict[str, int] = defaultdict(int)
    out: list[Target | None] = []
    for slot in slots:
        labels = qa_types.types[slot.code].labels
        eligible = [s for s in by_seconds
                    if ("emotion" not in labels or s.dominant_emotion) and ("gender" not in labels or s.gender)]
        if not eligible or not {"emotion", "gender"} & set(labels):
            out.append(None)
            continue
        speaker = eligible[taken[slot.code] % len(eligible)]
        taken[slot.code] += 1
        out.append(_target(speaker, names))
    return out


def _target(speaker: SpeakerFacts, names: dict[int, str]) -> Target:
    number = int(speaker.alias[1:])
    return Target(alias=speaker.alias, ordinal=f"the {names[number]} speaker" if number in names else None,
                  gender=speaker.gender, emotion=speaker.dominant_emotion)
