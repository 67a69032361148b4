"""Text-only answerability of direct items (DE, DG, DS) rated by rule: their reference answer is a
label, so the text-only answer is read with the claim word lists and no judge is asked; other
types, and direct items whose reference states no single label, still go to the judge."""

from __future__ import annotations

import pytest

from cpqa.llm import LLMResult
from cpqa.qa.answerability import TextOnlyCheck
from cpqa.qa.claims import load_claim_words
from cpqa.qa.facts import ClipFacts
from cpqa.qa.filters import new_filters
from cpqa.qa.types import load_qa_types
from cpqa.records import QAItem, Turn

pytestmark = pytest.mark.timeout(60)

FACTS = ClipFacts(clip_id="c", tagged_transcript="[S1|female|neutral] where is the car",
                  transcript="where is the car")


class Answerer:
    """Gives each question's scripted text-only answer (the question text is in the request)."""

    def __init__(self, answers: dict[str, str]):
        self.answers = answers
        self.requests = []

    def generate_many_sync(self, requests):
        self.requests += requests
        return [LLMResult(text=next(a for q, a in self.answers.items() if q in r.messages[-1]["content"]))
                for r in requests]


class Judge:
    """Rates every candidate 4; records what it was asked."""

    def __init__(self):
        self.requests = []

    def generate_many_sync(self, requests):
        self.requests += requests
        return [LLMResult(text="Rating: 4") for _ in requests]


def check(cases: list[tuple[str, str, str, str]], claim_words=True) -> tuple[list[QAItem], dict, Judge]:
    """Run the check on (type, question, reference, text-only answer) cases."""
    items = [QAItem(id=f"c-qa{n:03d}", clip_id="c", type=code, turns=[Turn(question=q, answer=ref)],
                    filters=new_filters()) for n, (code, q, ref, _) in enumerate(cases)]
    answerer, judge = Answerer({q: a for _, q, _, a in cases}), Judge()
    cw = load_claim_words("v1") if claim_words else None
    counts = TextOnlyCheck(answerer, judge, load_qa_types("v2"), "flag", threshold=4, max_tokens=64,
                           claim_words=cw).run([(item, FACTS) for item in items])
    assert len(answerer.requests) == len(items)
    return items, dict(counts), judge


def test_direct_items_are_rated_by_rule_and_the_judge_is_not_asked():
    cases = [
        ("DE", "How does the speaker sound in this clip?", "The speaker sounds neutral.", "The speaker sounds neutral."),
        ("DE", "What emotion does the voice convey here?", "The speaker sounds neutral.", "curiosity and wonder"),
        ("DE", "Which emotion is heard in the speaker's voice?", "Neutral.", "I can't tell from the transcript."),
        ("DE", "What is the mood of the speaker's voice?", "The speaker is calm.", "Neutral or maybe angry."),
        ("DS", "How many people speak in this clip?", "Three people speak.", "3 speakers"),
        ("DS", "How many speakers take part in the talk?", "Three people speak.", "two"),
        ("DG", "Is the voice a man or a woman?", "The speaker is female.", "It sounds like a man."),
        ("DG", "What is the gender of the speaker?", "A woman speaks.", "The speaker is a woman."),
    ]
    items, counts, judge = check(cases)
    assert judge.requests == []
    assert [i.filters.text_only["rating"] for i in items] == [5, 0, 0, 0, 5, 0, 0, 5]
    assert all(i.filters.text_only["judge"] == "rules" for i in items)
    assert items[0].filters.text_only == {"answer": "The speaker sounds neutral.", "rating": 5, "judge": "rules"}
    assert [i.filters.flags for i in items] == [["text_answerable"], [], [], [], ["text_answerable"], [], [],
                                                ["text_answerable"]]
    assert "by rule" in items[0].filters.details["text_answerable"]
    assert "3 speakers" in items[4].filters.details["text_answerable"]
    assert counts["text_only/rule_judged"] == 8 and counts["text_only/answerable"] == 3
    assert (counts["text_only/asked/DE"], counts["text_only/answered/DE"], counts["text_only/kept/DE"],
            counts["text_only/kept_answered/DE"]) == (4, 1, 4, 1)
    assert (counts["text_only/answered/DS"], counts["text_only/answered/DG"]) == (1, 1)


def test_other_types_and_unreadable_references_go_to_the_judge():
    cases = [
        ("CE", "Why does the woman sound so upset tonight?", "She is angry about the car.", "She is angry."),
        ("DE", "How does the speaker sound in this clip?", "The speaker sounds neutral.", "Neutral."),
        ("DE", "What emotion does the voice convey here?", "She sounds upset.", "Upset."),  # angry or sad
    ]
    items, counts, judge = check(cases)
    judged = [r.messages[-1]["content"] for r in judge.requests]
    assert len(judged) == 2 and cases[0][1] in judged[0] and cases[2][1] in judged[1]
    assert items[0].filters.text_only == {"answer": "She is angry.", "rating": 4}  # the judge's, as before
    assert items[1].filters.text_only["judge"] == "rules"
    assert items[2].filters.text_only == {"answer": "Upset.", "rating": 4}
    assert counts["text_only/rule_judged"] == 1 and counts["text_only/answerable"] == 3


def test_without_claim_words_every_item_goes_to_the_judge():
    cases = [("DE", "How does the speaker sound in this clip?", "The speaker sounds neutral.", "Neutral."),
             ("DS", "How many people speak in this clip?", "Three people speak.", "two")]
    items, counts, judge = check(cases, claim_words=False)
    assert len(judge.requests) == 2
    assert [i.filters.text_only for i in items] == [{"answer": "Neutral.", "rating": 4}, {"answer": "two", "rating": 4}]
    assert "text_only/rule_judged" not in counts
