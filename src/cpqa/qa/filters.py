"""Per-item QA filters and how their verdicts are recorded.

Every item carries its verdicts in `item.filters`:

    {"passed": false, "reasons": ["leakage"], "flags": ["text_answerable"],
     "details": {"leakage": "transcript: 'the transcript says'", ...}, "text_only": {...}}

A filter whose action is `drop` puts its reason in `reasons` and sets `passed` to false; `flag`
only lists it in `flags`; `off` does not run it. An item that did not pass is written as a `Drop`
carrying the whole item (excluded.jsonl, see `outcome`), so the review app can show it next to the
kept ones and a reviewer can judge the filters; the records hold passed items only.

The checks here are pure: schema (turn count, empty or too short text, repeated questions),
leakage (versioned regular expressions for transcript, label, tag and annotation talk) and label
consistency (a DE/DG/DS answer must name the clip's emotion, gender or speaker count, read with
the versioned word lists, and its question must not already name it). Near-duplicates and text-only answerability live in the stages.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from ..errors import CPQAError
from ..reasons import (
    ANSWER_IN_QUESTION,
    EVIDENCE_LEAKAGE,
    LABEL_MISMATCH,
    LABEL_UNVERIFIABLE,
)
from ..record_parts import QAFilters
from ..records import Drop, QAItem
from .facts import ClipFacts
from .types import load_yaml

FilterAction = Literal["drop", "flag", "off"]


_WORD = re.compile(r"[a-z0-9]+(?:['’-][a-z0-9]+)*")


def new_filters() -> QAFilters:
    """The verdicts of an item no filter has judged yet (all four fields written)."""
    return QAFilters(passed=True, reasons=[], flags=[], details={})


def record(item: QAItem, reason: str, action: FilterAction, detail: str) -> None:
    """Note one filter verdict on `item` according to `action`."""
    if action == "off":
        return
    if not item.filters.model_fields_set:
        item.filters = new_filters()
    filters = item.filters
    if action == "drop":
        filters.passed = False
        filters.reasons.append(reason)
    else:
        filters.flags.append(reason)
    filters.details[reason] = detail


def outcome(item: QAItem) -> QAItem | Drop:
    """The item when it passed the filters; else a `Drop` carrying it, under its first failed filter."""
    if item.filters.passed:
        return item
    reasons = item.filters.reasons
    detail = "; ".join(f"{reason}: {item.filters.details.get(reason, '')}" for reason in reasons)
    return Drop(id=item.id, reason=reasons[0], detail=detail, item=item.model_dump(mode="json"))


def verdict_counts(items: Iterable[QAItem]) -> Counter:
    """Stage counters of items and their verdicts: `qa/type/T`, `qa/passed/T`, `qa/dropped/REASON`,
    `qa/flagged/REASON`."""
    counts: Counter = Counter()
    for item in items:
        counts[f"qa/type/{item.type}"] += 1
        counts[f"qa/passed/{item.type}"] += int(item.filters.passed)
        counts.update(f"qa/dropped/{reason}" for reason in item.filters.reasons)
        counts.update(f"qa/flagged/{reason}" for reason in item.filters.flags)
    return counts


@dataclass(frozen=True)
class Vocabulary:
    """The versioned word lists and leakage patterns (`label_words_*.yaml`, `leakage_*.yaml`)."""

    version: str
    emotions: dict[str, frozenset[str]]
    """Word → the emotion labels it names."""
    genders: dict[str, frozenset[str]]
    speaker_nouns: frozenset[str]
    gendered_nouns: frozenset[str]
    numbers: dict[str, int]
    alone: frozenset[str]
    negations: frozenset[str]
    leakage: tuple[tuple[str, re.Pattern], ...]

    def gender(self, tag: str | None) -> str | None:
        """The canonical gender of a word tag ('female', 'Woman' → female); None when unknown."""
        labels = self.genders.get((tag or "").strip().lower())
        return next(iter(labels)) if labels and len(labels) == 1 else None


def _index(groups: dict[str, list[str]]) -> dict[str, frozenset[str]]:
    index: dict[str, set[str]] = {}
    for label, words in groups.items():
        for word in words:
            index.setdefault(str(word).lower(), set()).add(label)
    return {word: frozenset(labels) for word, labels in index.items()}


@lru_cache(maxsize=8)
def load_vocabulary(version: str) -> Vocabulary:
    words = load_yaml(f"label_words_{version}.yaml")
    leakage = load_yaml(f"leakage_{version}.yaml")
    speakers = words["speakers"]
    patterns = []
    for name, pattern in leakage["patterns"].items():
        try:
            patterns.append((name, re.compile(pattern, re.IGNORECASE)))
        except re.error as exc:
            raise CPQAError(f"leakage_{version}.yaml: pattern '{name}' is not a valid regular expression: {exc}") from exc
    return Vocabulary(
        version=version, emotions=_index(words["emotions"]), genders=_index(words["genders"]),
        speaker_nouns=frozenset(speakers["nouns"]), gendered_nouns=frozenset(speakers["gendered_nouns"]),
        numbers={str(k): int(v) for k, v in speakers["numbers"].items()}, alone=frozenset(speakers["alone"]),
        negations=frozenset(words["negations"]), leakage=tuple(patterns),
    )


def words(text: str) -> list[str]:
    """Lower-case word tokens; a possessive 's is cut ("woman's" → woman)."""
    return [re.sub(r"['’]s$", "", t) for t in _WORD.findall(text.lower())]


def negated(tokens: list[str], i: int, vocab: Vocabulary) -> bool:
    return any(t in vocab.negations or t.endswith(("n't", "n’t")) for t in tokens[max(0, i - 3):i])


def named_labels(text: str, lexicon: dict[str, frozenset[str]], vocab: Vocabulary) -> list[frozenset[str]]:
    """The labels each (non-negated) label word of `text` names, one set per occurrence."""
    tokens = words(text)
    return [lexicon[t] for i, t in enumerate(tokens) if t in lexicon and not negated(tokens, i, vocab)]


def outside_choices(text: str, lexicon: dict[str, frozenset[str]]) -> str:
    """`text` without the choices it offers ("male or female", "happy, sad or angry"): a label
    named there asks, one named elsewhere ("is the female voice ...") already tells."""
    tokens = words(text)
    keep = [True] * len(tokens)
    for i, token in enumerate(tokens):
        if token == "or" and 0 < i < len(tokens) - 1 and tokens[i - 1] in lexicon and tokens[i + 1] in lexicon:
            keep[i - 1] = keep[i] = keep[i + 1] = False
            j = i - 2
            while j >= 0 and tokens[j] in lexicon:  # "happy sad or angry" (commas are gone)
                keep[j] = False
                j -= 1
    return " ".join(t for t, k in zip(tokens, keep) if k)


def speaker_counts(text: str, vocab: Vocabulary, bare_number: bool = True) -> set[int]:
    """The numbers of speakers `text` states: counts before a speaker noun ("two voices"), counts
    before gendered nouns added up ("one man and one woman": 2), "alone"/"monologue" (1), or else
    (with `bare_number`, for an answer to a count question) the one number the text holds ("Three.")."""
    tokens = words(text)

    def number(token: str) -> int | None:
        if token.isdigit():
            return int(token) if 0 < int(token) < 100 else None
        return vocab.numbers.get(token)

    stated: set[int] = set()
    gendered = 0
    for i, token in enumerate(tokens):
        n = number(token)
        if n is None:
            continue
        # The noun follows at once or after one word that is not itself a number ("two distinct voices").
        after = tokens[i + 1:i + 3]
        nouns = after[:1] if len(after) < 2 or number(after[0]) is not None else after
        if any(t in vocab.speaker_nouns for t in nouns):
            stated.add(n)
        elif any(t in vocab.gendered_nouns for t in nouns):
            gendered += n
    if gendered:
        stated.add(gendered)
    if not stated and any(t in vocab.alone for t in tokens):
        stated.add(1)
    if not stated and bare_number:
        numbers = {n for t in tokens if (n := number(t)) is not None}
        if len(numbers) == 1:
            stated = numbers
    return stated


def schema_problem(item: QAItem, expected_turns: int, min_question_words: int) -> str | None:
    """What is wrong with the item's shape, or None."""
    if len(item.turns) != expected_turns:
        return f"{len(item.turns)} turns, expected {expected_turns}"
    questions = [" ".join(words(t.question)) for t in item.turns]
    for n, (turn, question) in enumerate(zip(item.turns, questions), 1):
        if len(question.split()) < min_question_words:
            return f"turn {n}: the question has fewer than {min_question_words} words"
        if not words(turn.answer):
            return f"turn {n}: the answer is empty"
        if question == " ".join(words(turn.answer)):
            return f"turn {n}: the answer repeats the question"
    if len(set(questions)) < len(questions):
        return "a question is repeated"
    return None


def leaks(item: QAItem, vocab: Vocabulary) -> list[str]:
    """'name: matched text' for each leakage pattern found in a question or an answer."""
    return leaks_in([text for turn in item.turns for text in (turn.question, turn.answer)], vocab)


_COPIED_TAG = re.compile(r"\[?\bS\d{1,2}\|[^\]\n]*\]?|\[[^\]\n]*\|[^\]\n]*\]?|[\[\]]")
"""A transcript tag ("[S1|female|neutral]") copied whole or in part, and stray brackets."""


def strip_copied_tags(evidence: str | None) -> str | None:
    """The evidence without transcript tags: told to copy the words spoken, a small model copies
    the tag before them too ("S1|female|neutral] that just raises a point"); the words stay."""
    if not evidence:
        return evidence
    return " ".join(_COPIED_TAG.sub(" ", evidence).split()) or None


def cut_leaking_evidence(item: QAItem, vocab: Vocabulary) -> None:
    """The evidence ships with the item, so it must not give the labels away either ("as indicated
    by the speaker count in the summary"); it is a pointer to the moment, not the item, so a leaking
    one is cut (the item falls back to the whole clip) and flagged, and the item stands."""
    if item.evidence and (found := leaks_in([item.evidence], vocab)):
        record(item, EVIDENCE_LEAKAGE, "flag", f"{'; '.join(found)} in {item.evidence!r}")
        item.evidence = None


def leaks_in(texts: list[str], vocab: Vocabulary) -> list[str]:
    found = []
    for name, pattern in vocab.leakage:
        if match := next((m for text in texts if (m := pattern.search(text))), None):
            found.append(f"{name}: {match.group(0)!r}")
    return found


def label_problem(item: QAItem, facts: ClipFacts, vocab: Vocabulary) -> tuple[str, str] | None:
    """(reason, detail) when a DE/DG/DS item's first answer disagrees with the clip's labels or
    names none, or when its question already names what the answer says; None otherwise (and for
    the types that state no label)."""
    turn = item.turns[0]
    if item.type in ("DE", "DG"):
        lexicon, check = ((vocab.emotions, _emotion_problem) if item.type == "DE"
                          else (vocab.genders, _gender_problem))
        problem = check(turn.answer, facts, vocab)
        asked = named_labels(outside_choices(turn.question, lexicon), lexicon, vocab)
        said = named_labels(turn.answer, lexicon, vocab)
    elif item.type == "DS":
        problem = _count_problem(turn.answer, facts, vocab)
        asked, said = ([frozenset(speaker_counts(text, vocab))] for text in (turn.question, turn.answer))
    else:
        return None
    if problem is not None:
        return problem
    asked_labels, said_labels = frozenset().union(*asked), frozenset().union(*said)
    if asked_labels and asked_labels <= said_labels:
        return ANSWER_IN_QUESTION, f"the question already names {', '.join(sorted(map(str, asked_labels)))}"
    return None


def _emotion_problem(answer: str, facts: ClipFacts, vocab: Vocabulary) -> tuple[str, str] | None:
    named = named_labels(answer, vocab.emotions, vocab)
    if not named:
        return LABEL_UNVERIFIABLE, "the answer names no emotion (it must say which emotion the voice conveys)"
    present = set(facts.emotions)
    stray = sorted({label for labels in named if not labels & present for label in labels})
    if stray:
        return LABEL_MISMATCH, f"the answer says {', '.join(stray)}; the clip sounds {', '.join(sorted(present)) or 'unlabelled'}"
    if not any(labels & facts.speaker_emotions for labels in named):
        return LABEL_MISMATCH, (f"the answer names no dominant emotion of the clip or a speaker "
                                f"({', '.join(sorted(facts.speaker_emotions))})")
    return None


def _gender_problem(answer: str, facts: ClipFacts, vocab: Vocabulary) -> tuple[str, str] | None:
    named = named_labels(answer, vocab.genders, vocab)
    if not named:
        return LABEL_UNVERIFIABLE, "the answer names no gender (it must say whether the voice is a man's or a woman's)"
    stray = sorted({label for labels in named if not labels & facts.genders for label in labels})
    if stray:
        return LABEL_MISMATCH, f"the answer says {', '.join(stray)}; the voices are {', '.join(sorted(facts.genders))}"
    return None


def _count_problem(answer: str, facts: ClipFacts, vocab: Vocabulary) -> tuple[str, str] | None:
    counts = speaker_counts(answer, vocab)
    if not counts:
        return LABEL_UNVERIFIABLE, "the answer states no number of speakers"
    if max(counts) != facts.speaker_count:
        return LABEL_MISMATCH, f"the answer says {max(counts)} speakers; the clip has {facts.speaker_count}"
    return None
