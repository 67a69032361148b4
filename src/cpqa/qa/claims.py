"""Every claim of a QA item checked against the clip's labels and words. Pure and rule-based; the
word lists are versioned data (`label_words_*.yaml` for label words, `claim_words_*.yaml` for
affect words beyond the labels, pronouns, ordinals, empathy words, label questions, reporting
verbs and function words), read at the stage's `filters.vocabulary_version`.

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
  ("Who says 'but on a mobile phone'?") must be the words of the speaker its answer names;
- words an answer reports a speaker saying ("the third speaker says '…'") must be said in the clip,
  by that speaker; content words said only around the clip (its background) are no claim a
  listener of the clip can check.
Words in a question's choice ("calm or angry", "a man or a woman") and negated words ("not
angry") are no claims. Each unsupported claim is named in the detail: `"confused" (no label
supports it)`.

Type checks are `cpqa.qa.type_check`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

from ..errors import CPQAError
from ..records import QAItem
from .facts import ClipFacts, SpeakerFacts
from .filters import Vocabulary, load_vocabulary, negated, speaker_counts, words
from .types import DIRECT_TYPES, load_yaml

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


def sentences(text: str) -> list[list[str]]:
    return [tokens for part in _SENTENCE.split(text) if (tokens := words(part))]


def _choice(tokens: list[str], i: int) -> bool:
    return "or" in tokens[max(0, i - CHOICE_SPAN):i + CHOICE_SPAN + 1]


def label_claims(tokens: list[str], lexicon: dict[str, frozenset[str]], cw: ClaimWords, question: bool) -> list[str]:
    return [t for i, t in enumerate(tokens) if t in lexicon and not negated(tokens, i, cw.vocab)
            and not (question and _choice(tokens, i))]


def _ordinal_speakers(tokens: list[str], cw: ClaimWords) -> list[int]:
    """Speaker numbers the sentence points to by order ("the second speaker", "S2")."""
    nouns = cw.vocab.speaker_nouns | cw.vocab.gendered_nouns | {"one"}
    found = [cw.ordinals[t] for i, t in enumerate(tokens) if t in cw.ordinals and set(tokens[i + 1:i + 3]) & nouns]
    return found + [int(m.group(1)) for t in tokens if (m := _CODE.match(t))]


def speakers_meant(tokens: list[str], facts: ClipFacts, cw: ClaimWords) -> list[SpeakerFacts]:
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
            for tokens in sentences(text):
                found.extend(_sentence_problems(tokens, facts, cw, question))
        if misquoted := _quote_attribution(turn.question, turn.answer, facts, cw):
            found.append(misquoted)
        found.extend(_reported_quotes(turn.answer, facts, cw))
    if from_background := _background_only(item, facts, cw):
        found.append(from_background)
    return list(dict.fromkeys(found))


BACKGROUND_WORDS = 2
"""Content words from the background an item needs before it is taken to be about the background:
one ("conversation", "feeling") is as likely the item's own wording."""


def _background_only(item: QAItem, facts: ClipFacts, cw: ClaimWords) -> str | None:
    """Content words of the item said around the clip but not in it ("the clip is about a mobile
    phone" where only the speech after the clip mentions one): the generator sees the background
    to understand the clip, and a listener of the clip cannot know it. A direct item names a label,
    not content; numbers and order words count speakers."""
    if not facts.background or item.type in DIRECT_TYPES:
        return None
    said = {stem(t) for t in words(facts.transcript)}
    around = {stem(t) for t in words(facts.background)
              if cw.is_content(t) and t not in cw.vocab.numbers and t not in cw.ordinals}
    text = " ".join(part for turn in item.turns for part in (turn.question, turn.answer))
    only = sorted({t for t in words(text) if cw.is_content(t) and stem(t) in around - said})
    if len({stem(t) for t in only}) >= BACKGROUND_WORDS:
        return f'"{", ".join(only)}" (said around the clip, not in it)'
    return None


def _quote_attribution(question: str, answer: str, facts: ClipFacts, cw: ClaimWords) -> str | None:
    """A question quoting the clip ("Who says 'But you know on a mobile phone'?") answered with a
    speaker ("The third speaker says this.") must name one who says those words; the detail when
    the words are someone else's. Quotes of fewer than QUOTE_WORDS words, or found nowhere (a
    paraphrase), are not judged."""
    quotes = _QUOTE.findall(question)
    first = sentences(answer)[:1] if quotes else []  # most questions quote nothing: no speech to read
    named = speakers_meant(first[0], facts, cw) if first else []
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
        named = speakers_meant(before, facts, cw)
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
    speakers = speakers_meant(tokens, facts, cw)
    emotion_words = label_claims(tokens, cw.affect, cw, question)
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
    for word in label_claims(tokens, cw.gender_nouns, cw, question):
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
    said = {stem(t) for st in facts.stretches if st.alias == alias for t in words(st.text) if cw.is_content(t)}
    claimed = sorted({stem(t) for t in tokens if cw.is_content(t) and t not in cw.ordinals
                      and t not in cw.vocab.speaker_nouns})
    if not said or len(claimed) < 2 or set(claimed) & said:
        return None
    return f'"{", ".join(claimed[:5])}" (not in what {alias} says)'


def stem(token: str) -> str:
    return token[:-1] if token.endswith("s") and len(token) > 3 else token
