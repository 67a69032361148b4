"""Whether a QA item tests what its type says (`type_problem`, drop reason `wrong_type`), rule-based
on the word lists of `cpqa.qa.claims`.

C asks about content only (no emotion, gender or speaker-count question); DS asks how many people
speak; CE names an emotion in its answer, CG a gender, CS tells speakers apart (a count, an
ordinal, who/other/both ...), and CE/CG/CS/EMP share a content word with the clip; an EMP reply
uses a word fitting the sentiment of the speaker it answers (condensation's sentiment mapping:
"sorry" for an angry speaker, "congratulations" for a happy one). Multi-turn items are
type-checked on their first turn. A contextual question that repeats the instruction it was
written to copies it (`repeated_instruction`).
"""

from __future__ import annotations

from ..emotions import SENTIMENT_OF
from ..records import QAItem
from .claims import ClaimWords, label_claims, sentences, speakers_meant, stem
from .facts import ClipFacts
from .filters import speaker_counts, words


def type_problem(item: QAItem, facts: ClipFacts, cw: ClaimWords) -> str | None:
    """Why the item does not test what its type says, or None."""
    turn = item.turns[0]
    question, answer = turn.question, turn.answer
    both = f"{question} {answer}"
    if item.type == "C":
        for q in (t.question for t in item.turns):
            if asked := [name for name, pattern in cw.asks.items() if pattern.search(q)] or (
                    ["emotion"] if label_claims(words(q), cw.affect, cw, question=False) else []):
                return f"a content question asks about {', '.join(asked)}: {q!r}"
        return None
    if item.type == "DS" and not cw.asks["speakers"].search(question):
        return "the question does not ask how many people speak"
    if item.type == "CE" and not any(cw.affect[w] for w in label_claims(words(answer), cw.affect, cw, question=False)):
        return "the answer names no emotion"
    if item.type == "CG" and not label_claims(words(answer), cw.vocab.genders, cw, question=False):
        return "the answer names no voice (the man, the woman, he, she)"
    if item.type == "CS" and not (speaker_counts(both, cw.vocab, bare_number=False) or cw.asks["speakers"].search(both)
                                  or set(words(both)) & cw.speaker_structure):
        return "the item does not tell speakers apart (no count, no order, no who/other/both)"
    if item.type == "EMP" and (problem := _empathy_problem(question, answer, facts, cw)):
        return problem
    if item.type in ("CE", "CG", "CS", "EMP") and not _shares_content(both, facts, cw):
        return "the item refers to nothing said in the clip"
    return None


ECHO_WORDS = 5
"""A question sharing a run of this many words with its instruction copies it."""
ECHO_CHECKED = frozenset({"C", "CE", "CG", "CS"})
"""Types whose question must be about the clip's content. Direct types (DE, DG, DS) and EMP ("what
could a listener say back?") have a stock question as their right form."""
_SPEAKER_REFERENCE = frozenset({"the", "a", "an", "or", "and"})


def repeated_instruction(item: QAItem, instruction: str, cw: ClaimWords) -> str | None:
    """Why the item's question repeats the instruction it was written to instead of asking about
    the clip ("Which of the two says, asks or suggests a thing they talk about?"), or None. Words
    that point to speakers (order words, "speaker", articles) are skipped: naming the speakers
    the instruction names is right."""
    if item.type not in ECHO_CHECKED:
        return None

    def tokens(text: str) -> list[str]:
        return [t for t in words(text) if t not in cw.ordinals and t not in cw.vocab.speaker_nouns
                and t not in _SPEAKER_REFERENCE]

    told = tokens(instruction)
    runs = {tuple(told[i:i + ECHO_WORDS]) for i in range(len(told) - ECHO_WORDS + 1)}
    asked = tokens(item.turns[0].question)
    for i in range(len(asked) - ECHO_WORDS + 1):
        if tuple(asked[i:i + ECHO_WORDS]) in runs:
            return f'the question repeats its instruction ("{" ".join(asked[i:i + ECHO_WORDS])}")'
    return None


def _empathy_problem(question: str, answer: str, facts: ClipFacts, cw: ClaimWords) -> str | None:
    addressed = [s for tokens in sentences(question) for s in speakers_meant(tokens, facts, cw)] or facts.speakers
    states = sorted({s.dominant_emotion for s in addressed if s.dominant_emotion})
    fitting = frozenset().union(*(cw.empathy.get(SENTIMENT_OF.get(e, ""), frozenset()) for e in states))
    if states and not set(words(answer)) & fitting:
        return f"the reply does not answer how the speaker sounds ({', '.join(states)})"
    return None


def _shares_content(text: str, facts: ClipFacts, cw: ClaimWords) -> bool:
    said = {stem(t) for t in words(facts.transcript) if cw.is_content(t)}
    return any(stem(t) in said for t in words(text) if cw.is_content(t))
