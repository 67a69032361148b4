"""Direct items written by cpqa itself from the QA types' `phrasings` (`qa.direct_items: template`).

A direct item (DE, DG, DS) asks for one label and answers with it, so an LLM adds nothing but the
wording, and a small one adds errors: asked for five items at once, the embedded 1.5B wrote a
contextual item in a direct item's place, or a speaker count as "3" in an emotion slot. Where the
recipe says so, a direct slot whose type has phrasings (and, for a speaker's label, a speaker a
listener can point to by order) is written from one of its question and answer snippets, chosen
by a stable hash of the item id: a dataset varies its wording, a rerun writes the same item. The
item goes through the same checks as a generated one. Its evidence is the first words of the
target speaker's longest turn (DE, DG: where the voice is heard at length); DS has none.
"""

from __future__ import annotations

from ..ordering import stable_hash
from ..record_parts import Generator
from ..records import Clip, QAItem, Turn
from .facts import ClipFacts
from .filters import new_filters
from .prompts import render_snippet
from .targets import Target
from .types import QATypeSpec, Slot

WRITER = "template"
"""The `generator.backend` and `generator.model` of a phrased item."""
EVIDENCE_WORDS = 8


def can_phrase(spec: QATypeSpec, slot: Slot, target: Target | None) -> bool:
    if spec.phrasings is None or slot.turns != 1:
        return False
    return spec.target != "speaker" or (target is not None and target.ordinal is not None)


def phrased_item(item_id: str, clip: Clip, facts: ClipFacts, spec: QATypeSpec, target: Target | None,
                 numbers: dict[str, int], prompt_version: str) -> QAItem:
    """The item `item_id` of type `spec` about `target`, from the type's phrasings; `numbers`
    (word → number, the label words' list) spells the speaker count."""
    assert spec.phrasings is not None
    questions, answers = spec.phrasings.questions, spec.phrasings.answers
    values = {"target": target, "facts": facts, "count_words": count_words(facts.speaker_count, numbers)}
    pick = stable_hash(item_id, digest_size=4)
    turn = Turn(question=render_snippet(questions[pick % len(questions)], **values),
                answer=render_snippet(answers[pick // len(questions) % len(answers)], **values))
    return QAItem(id=item_id, clip_id=clip.id, type=spec.code, turns=[turn], evidence=_evidence(facts, target),
                  generator=Generator(model=WRITER, backend=WRITER, prompt_version=prompt_version),
                  filters=new_filters(),
                  metadata={"audio": clip.audio, "recording_id": clip.recording_id, "start": clip.start, "end": clip.end})


def count_words(count: int | None, numbers: dict[str, int]) -> str:
    """'three' for 3 (the first word the list gives that number), else the digits."""
    if count is None:
        return ""
    return next((word for word, n in numbers.items() if n == count), str(count))


def _evidence(facts: ClipFacts, target: Target | None) -> str | None:
    if target is None:
        return None
    longest = max((said for alias, said in facts.turns if alias == target.alias), key=len, default=[])
    return " ".join(longest[:EVIDENCE_WORDS]) or None
