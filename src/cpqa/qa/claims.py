"""Every claim of a QA item checked against the clip's labels, and whether the item tests what its
type says. Pure and rule-based; the word lists are versioned data (`label_words_*.yaml` for label
words, `claim_words_*.yaml` for affect words beyond the labels, pronouns, ordinals, empathy words,
label questions and function words), read at the stage's `filters.vocabulary_version`.

**Claims** (`unsupported_claims`, drop reason `unsupported_claim`): in every question and answer,
sentence by sentence,
- each emotion or affect word ("angry", "upset", "calm", "confused") must name a label that a
  confident tag of the speaker it is about carries at the moment it is about. The speaker is the
  one the sentence points to: by order ("the second speaker": S2), by gender ("the woman", "he":
  the speakers of that voice), else any speaker. The moment is the stretches of those speakers
  holding the sentence's content words ("when she talks about the car"), else the speakers'
  salient emotions (dominant, or at least `facts.OTHER_EMOTION_SHARE` of their speech).
  'no clear emotion' supports nothing, and an affect word mapped to no label ("confused") is
  always unsupported;
- each gender noun ("the woman", "a male voice") needs a speaker of that confident gender;
- each stated speaker count ("two people", "one man and one woman") must be the clip's, and an
  ordinal speaker ("the third speaker") must exist.
- what a speaker named by order is said to say must be in their words, and a quote in a question
  ("Who says 'but on a mobile phone'?") must be the words of the speaker its answer names.
Words in a question's choice ("calm or angry", "a man or a woman") and negated words ("not
angry") are no claims. Each unsupported claim is named in the detail: `"confused" (no label
supports it)`.

**Type checks** (`type_problem`, drop reason `wrong_type`): C asks about content only (no emotion,
gender or speaker-count question); DS asks how many people speak; CE names an emotion in its
answer, CG a gender, CS tells speakers apart (a count, an ordinal, who/other/both ...), and
CE/CG/CS/EMP share a content word with the clip; an EMP reply uses a word fitting the sentiment of
the speaker it answers (condensation's sentiment mapping: "sorry" for an angry speaker,
"congratulations" for a happy one). Multi-turn items are type-checked on their first turn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

from ..emotions import SENTIMENT_OF
from ..errors import CPQAError
from ..records import QAItem
from .facts import ClipFacts, SpeakerFacts
from .filters import Vocabulary, load_vocabulary, negated, speaker_counts, words
from .types import load_yaml

_SENTENCE = re.compile(r"[.!?;:]+(?:\s+|$)")
_CODE = re.compile(r"^s(\d{1,2})$")
_QUOTE = re.compile(r"""(?:^|(?<=\s))['"‘“](.+?)['"’”](?=[\s?.,!;:]|$)""")
QUOTE_WORDS = 4
"""The words of a quote matched against who says them."""
REPORT_SPAN = 6
"""The words before a quote read for who it reports ("the third speaker says")."""
CHOICE_SPAN = 2
"""A label word within this many words of 'or' in a question is one of the offered choices."""


@dataclass(frozen=True)
class ClaimWords:
    """`claim_words_*.yaml`, with the label words of the same version."""

    vocab: Vocabulary
    affect: dict[str, frozenset[str]]
    """Every emotion or affect word → the labels that can support it (empty: none can)."""
    pronouns: frozenset[str]
    ordinals: dict[str, int]
    speaker_structure: frozenset[str]
    empathy: dict[str, frozenset[str]]
    asks: dict[str, re.Pattern]
    function_words: frozenset[str]
    reported_speech: frozenset[str]
    suggested_speech: frozenset[str]

    @cached_property
    def gender_nouns(self) -> dict[str, frozenset[str]]:
        return {w: labels for w, labels in self.vocab.genders.items() if w not in self.pronouns}

    def is_content(self, token: str) -> bool:
        return (len(token) > 2 and not token.isdigit() and token not in self.function_words
                and token not in self.affect and token not in self.vocab.genders)


@lru_cache(maxsize=8)
def load_claim_words(version: str) -> ClaimWords:
    vocab = load_vocabulary(version)
    data = load_yaml(f"claim_words_{version}.yaml")
    affect = {str(w).lower(): frozenset(labels or ()) for w, labels in data["affect"].items()}
    if both := sorted(set(affect) & set(vocab.emotions)):
        raise CPQAError(f"claim_words_{version}.yaml: {both} are already emotion words of label_words_{version}.yaml")
    unknown = {label for labels in affect.values() for label in labels} - {label for ls in vocab.emotions.values() for label in ls}
    if unknown:
        raise CPQAError(f"claim_words_{version}.yaml: affect words map to unknown labels {sorted(unknown)}")
    asks = {}
    for name, pattern in data["asks"].items():
        try:
            asks[name] = re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            raise CPQAError(f"claim_words_{version}.yaml: ask '{name}' is not a valid regular expression: {exc}") from exc
    return ClaimWords(
        vocab=vocab, affect={**vocab.emotions, **affect}, pronouns=frozenset(data["pronouns"]),
        ordinals={str(k): int(v) for k, v in data["ordinals"].items()},
        speaker_structure=frozenset(data["speaker_structure"]),
        empathy={k: frozenset(v) for k, v in data["empathy"].items()}, asks=asks,
        function_words=frozenset(str(w) for w in data["function_words"]),
        reported_speech=frozenset(data["reported_speech"]), suggested_speech=frozenset(data["suggested_speech"]),
    )


def _sentences(text: str) -> list[list[str]]:
    return [tokens for part in _SENTENCE.split(text) if (tokens := words(part))]


def _choice(tokens: list[str], i: int) -> bool:
    return "or" in tokens[max(0, i - CHOICE_SPAN):i + CHOICE_SPAN + 1]


def _claims(tokens: list[str], lexicon: dict[str, frozenset[str]], cw: ClaimWords, question: bool) -> list[str]:
    return [t for i, t in enumerate(tokens) if t in lexicon and not negated(tokens, i, cw.vocab)
            and not (question and _choice(tokens, i))]


def _ordinal_speakers(tokens: list[str], cw: ClaimWords) -> list[int]:
    """Speaker numbers the sentence points to by order ("the second speaker", "S2")."""
    nouns = cw.vocab.speaker_nouns | cw.vocab.gendered_nouns | {"one"}
    found = [cw.ordinals[t] for i, t in enumerate(tokens) if t in cw.ordinals and set(tokens[i + 1:i + 3]) & nouns]
    return found + [int(m.group(1)) for t in tokens if (m := _CODE.match(t))]


def _about(tokens: list[str], facts: ClipFacts, cw: ClaimWords) -> list[SpeakerFacts]:
    """The speakers a sentence is about: by order, else by gender word, else all of them."""
    by_alias = {s.alias: s for s in facts.speakers}
    if ordinals := _ordinal_speakers(tokens, cw):
        return [by_alias[f"S{n}"] for n in ordinals if f"S{n}" in by_alias]
    genders = {label for t in tokens for label in cw.vocab.genders.get(t, ())}
    if genders:
        return [s for s in facts.speakers if s.gender in genders]
    return list(facts.speakers)


def _emotion_support(tokens: list[str], speakers: list[SpeakerFacts], facts: ClipFacts,
                     cw: ClaimWords) -> tuple[set[str], bool]:
    """The labels that can support an emotion claim of the sentence, and whether they are those of
    the moments its content words point to (else the speakers' salient emotions)."""
    aliases = {s.alias for s in speakers}
    content = {t for t in tokens if cw.is_content(t)}
    moments = [st for st in facts.stretches if st.alias in aliases and content & set(words(st.text))]
    if moments:
        return {st.emotion for st in moments if st.emotion}, True
    return set().union(*(s.salient_emotions for s in speakers)), False


def _who(speakers: list[SpeakerFacts], facts: ClipFacts) -> str:
    if len(speakers) == len(facts.speakers):
        return "any speaker"
    return " or ".join(f"{s.alias} ({s.gender or 'gender unknown'})" for s in speakers) or "no such speaker"


def unsupported_claims(item: QAItem, facts: ClipFacts, cw: ClaimWords) -> list[str]:
    """One detail per claim of the item that no confident label supports."""
    found: list[str] = []
    for turn in item.turns:
        for text, question in ((turn.question, True), (turn.answer, False)):
            for tokens in _sentences(text):
                found.extend(_sentence_problems(tokens, facts, cw, question))
        if misquoted := _quote_attribution(turn.question, turn.answer, facts, cw):
            found.append(misquoted)
        found.extend(_reported_quotes(turn.answer, facts, cw))
    return list(dict.fromkeys(found))


def _quote_attribution(question: str, answer: str, facts: ClipFacts, cw: ClaimWords) -> str | None:
    """A question quoting the clip ("Who says 'But you know on a mobile phone'?") answered with a
    speaker ("The third speaker says this.") must name one who says those words; the detail when
    the words are someone else's. Quotes of fewer than QUOTE_WORDS words, or found nowhere (a
    paraphrase), are not judged."""
    quotes = _QUOTE.findall(question)
    first = _sentences(answer)[:1] if quotes else []  # most questions quote nothing: no speech to read
    named = _about(first[0], facts, cw) if first else []
    if not named or len(named) == len(facts.speakers):
        return None
    spoken = _spoken(facts)
    for quote in quotes:
        piece = max(re.split(r"…|\.\.\.", quote), key=len)
        if len(tokens := words(piece)[:QUOTE_WORDS]) < QUOTE_WORDS:
            continue
        quoted = " ".join(tokens)
        sayers = sorted(alias for alias, text in spoken.items() if f" {quoted} " in f" {text} ")
        if sayers and not {s.alias for s in named} & set(sayers):
            return f'"{piece.strip()[:60]}" (said by {" and ".join(sayers)}, not {_who(named, facts)})'
    return None


def _reported_quotes(answer: str, facts: ClipFacts, cw: ClaimWords) -> list[str]:
    """Words an answer reports a speaker of the clip saying ("The third speaker says 'The woman
    says...'") must be said in the clip, and by the speaker it names: the detail of each quote
    found nowhere (invented speech) or only in another speaker's words. A quote after a would-be
    reply ("a caring listener could say '…'") is not reported speech."""
    problems, spoken = [], _spoken(facts)
    for match in _QUOTE.finditer(answer):
        before = words(answer[:match.start()])[-REPORT_SPAN:]
        if not set(before) & cw.reported_speech or set(before) & cw.suggested_speech:
            continue
        piece = max(re.split(r"…|\.\.\.", match.group(1)), key=len)
        if len(tokens := words(piece)[:QUOTE_WORDS]) < 2:
            continue
        quoted = " ".join(tokens)
        sayers = sorted(alias for alias, text in spoken.items() if f" {quoted} " in f" {text} ")
        named = _about(before, facts, cw)
        if not sayers:
            problems.append(f'"{piece.strip()[:60]}" (no one in the clip says these words)')
        elif len(named) < len(facts.speakers) and not {s.alias for s in named} & set(sayers):
            problems.append(f'"{piece.strip()[:60]}" (said by {" and ".join(sayers)}, not {_who(named, facts)})')
    return problems


def _spoken(facts: ClipFacts) -> dict[str, str]:
    """Each speaker's words, normalised as `words` gives them, in one string."""
    return {s.alias: " ".join(words(" ".join(st.text for st in facts.stretches if st.alias == s.alias)))
            for s in facts.speakers}


def _sentence_problems(tokens: list[str], facts: ClipFacts, cw: ClaimWords, question: bool) -> list[str]:
    problems = []
    speakers = _about(tokens, facts, cw)
    emotion_words = _claims(tokens, cw.affect, cw, question)
    if emotion_words:
        support, at_moment = _emotion_support(tokens, speakers, facts, cw)
        heard = ", ".join(sorted(support)) or "no clear emotion"
        where = " at that moment" if at_moment else ""
        for word in emotion_words:
            labels = cw.affect[word]
            if not labels:
                problems.append(f'"{word}" (no label supports it)')
            elif not labels & support:
                problems.append(f'"{word}" (not heard from {_who(speakers, facts)}{where}: {heard})')
    for word in _claims(tokens, cw.gender_nouns, cw, question):
        if not cw.gender_nouns[word] & facts.genders:
            voices = ", ".join(sorted(facts.genders)) or "none"
            problems.append(f'"{word}" (no voice in the clip is known to be that; known voices: {voices})')
    known = facts.speaker_count
    for n in speaker_counts(" ".join(tokens), cw.vocab, bare_number=False):
        if n != known:
            problems.append(f'"{n} speakers" ({f"the clip has {known}" if known else "the number of speakers is unknown"})')
    for n in _ordinal_speakers(tokens, cw):
        if n > (known or 1):
            problems.append(f'"speaker {n}" ({f"the clip has {known}" if known else "the number of speakers is unknown"})')
    if not question and (misattributed := _misattributed(tokens, facts, cw)):
        problems.append(misattributed)
    return problems


def _misattributed(tokens: list[str], facts: ClipFacts, cw: ClaimWords) -> str | None:
    """A sentence saying what a speaker named by order said or did ("the third speaker suggests a
    menu display") must share a content word with that speaker's own words; the detail when it
    shares none (at least two content words said of the speaker, or nothing to judge). A sentence
    about how the speaker sounds is left to the label checks."""
    named = _ordinal_speakers(tokens, cw)
    sentence = " ".join(tokens)
    if not named or any(cw.asks[label].search(sentence) for label in ("emotion", "gender")) or any(
            t in cw.affect or t in cw.vocab.genders for t in tokens):
        return None  # how the speaker sounds, checked against the labels above, not what they said
    alias = f"S{named[0]}"  # the sentence's subject: the first speaker it names
    said = {_stem(t) for st in facts.stretches if st.alias == alias for t in words(st.text) if cw.is_content(t)}
    claimed = sorted({_stem(t) for t in tokens if cw.is_content(t) and t not in cw.ordinals
                      and t not in cw.vocab.speaker_nouns})
    if not said or len(claimed) < 2 or set(claimed) & said:
        return None
    return f'"{", ".join(claimed[:5])}" (not in what {alias} says)'


def type_problem(item: QAItem, facts: ClipFacts, cw: ClaimWords) -> str | None:
    """Why the item does not test what its type says, or None."""
    turn = item.turns[0]
    question, answer = turn.question, turn.answer
    both = f"{question} {answer}"
    if item.type == "C":
        for q in (t.question for t in item.turns):
            if asked := [name for name, pattern in cw.asks.items() if pattern.search(q)] or (
                    ["emotion"] if _claims(words(q), cw.affect, cw, question=False) else []):
                return f"a content question asks about {', '.join(asked)}: {q!r}"
        return None
    if item.type == "DS" and not cw.asks["speakers"].search(question):
        return "the question does not ask how many people speak"
    if item.type == "CE" and not any(cw.affect[w] for w in _claims(words(answer), cw.affect, cw, question=False)):
        return "the answer names no emotion"
    if item.type == "CG" and not _claims(words(answer), cw.vocab.genders, cw, question=False):
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
    addressed = [s for tokens in _sentences(question) for s in _about(tokens, facts, cw)] or facts.speakers
    states = sorted({s.dominant_emotion for s in addressed if s.dominant_emotion})
    fitting = frozenset().union(*(cw.empathy.get(SENTIMENT_OF.get(e, ""), frozenset()) for e in states))
    if states and not set(words(answer)) & fitting:
        return f"the reply does not answer how the speaker sounds ({', '.join(states)})"
    return None


def _stem(token: str) -> str:
    return token[:-1] if token.endswith("s") and len(token) > 3 else token


def _shares_content(text: str, facts: ClipFacts, cw: ClaimWords) -> bool:
    said = {_stem(t) for t in words(facts.transcript) if cw.is_content(t)}
    return any(_stem(t) in said for t in words(text) if cw.is_content(t))
