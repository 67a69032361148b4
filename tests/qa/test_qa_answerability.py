"""Text-only answerability per type: what flag, drop and retype do to an item, and the per-type
counters before and after the filter that `cpqa status` and the report read."""

from __future__ import annotations

import pytest

from cpqa.llm import LLMResult
from cpqa.qa.answerability import TextOnlyCheck, answerability_rows, answerability_table
from cpqa.qa.facts import ClipFacts
from cpqa.qa.filters import new_filters
from cpqa.qa.generate import QAStage
from cpqa.qa.types import load_qa_types
from cpqa.records import QAItem, Turn

pytestmark = pytest.mark.timeout(60)

# question → the judge's rating of the text-only answer (4 is the threshold)
QUESTIONS = {
    ("DE", "How does the woman sound when she asks about the car?"): 5,
    ("DE", "How does the man sound when he apologises?"): 2,
    ("CE", "Why does the woman sound so upset tonight?"): 4,
    ("DS", "How many people take part in this talk?"): 1,
}


class Scripted:
    """An LLM backend stand-in: text-only answers are fixed, judge ratings come from QUESTIONS."""

    def __init__(self):
        self.requests = []

    def generate_many_sync(self, requests):
        self.requests += requests
        out = []
        for request in requests:
            content = request.messages[-1]["content"]
            rating = next((r for (_, q), r in QUESTIONS.items() if q in content), None)
            if "Rating: N" in content:
                out.append(LLMResult(text=f"Rating: {rating}"))
            elif "apologises" in content:
                out.append(LLMResult.failure("timeout", "no reply in 0.5 s"))
            else:
                out.append(LLMResult(text="From the words: she is upset."))
        return out


def items() -> list[QAItem]:
    return [QAItem(id=f"c-qa{n:03d}", clip_id="c", type=code, turns=[Turn(question=q, answer="An answer here.")],
                   filters=new_filters()) for n, (code, q) in enumerate(QUESTIONS)]


def run(action: str) -> tuple[list[QAItem], dict]:
    facts = ClipFacts(clip_id="c", tagged_transcript="[S1|female|angry] where is the car",
                      transcript="where is the car")
    targets = [(item, facts) for item in items()]
    backend = Scripted()
    counts = TextOnlyCheck(backend, backend, load_qa_types("v2"), action, threshold=4, max_tokens=64).run(targets)
    return [item for item, _ in targets], dict(counts)


def test_flag_keeps_text_answerable_items_and_counts_them_per_type():
    out, counts = run("flag")
    assert [i.filters.flags for i in out] == [["text_answerable"], [], ["text_answerable"], []]
    assert all(i.filters.passed for i in out)
    assert out[1].filters.text_only == {"error": "timeout"}  # the answerer failed: asked, not answered
    assert {k: v for k, v in counts.items() if k.count("/") == 2} == {
        "text_only/asked/DE": 2, "text_only/answered/DE": 1, "text_only/kept/DE": 2, "text_only/kept_answered/DE": 1,
        "text_only/asked/CE": 1, "text_only/answered/CE": 1, "text_only/kept/CE": 1, "text_only/kept_answered/CE": 1,
        "text_only/asked/DS": 1, "text_only/kept/DS": 1, "text_only/kept_answered/DS": 0}
    rows = {r["type"]: r for r in answerability_rows(counts)}
    assert list(rows) == ["DE", "DS", "CE"]  # QA_TYPES order; C was never checked
    assert rows["DE"]["answered_share"] == 0.5 and rows["DE"]["kept_answered_share"] == 0.5
    assert rows["DS"]["answered_share"] == 0.0


def test_drop_fails_them_and_the_share_after_the_filter_falls_to_zero():
    out, counts = run("drop")
    assert [i.filters.passed for i in out] == [False, True, False, True]
    assert out[0].filters.reasons == ["text_answerable"]
    assert "rated 5/5" in out[0].filters.details["text_answerable"]
    rows = {r["type"]: r for r in answerability_rows(counts)}
    assert (rows["DE"]["answered_share"], rows["DE"]["kept"], rows["DE"]["kept_answered_share"]) == (0.5, 1, 0.0)
    assert (rows["CE"]["answered_share"], rows["CE"]["kept"], rows["CE"]["kept_answered_share"]) == (1.0, 0, None)
    assert ["CE", "1", "1 (100%)", "0", "-"] in answerability_table(list(rows.values()))


def test_retype_keeps_them_as_content_items_with_their_written_type():
    out, counts = run("retype")
    assert [i.type for i in out] == ["C", "DE", "C", "DS"]
    assert [i.filters.retyped_from for i in out] == ["DE", None, "CE", None]
    assert all(i.filters.passed for i in out) and out[0].filters.flags == ["text_answerable"]
    assert "re-typed DE → C" in out[0].filters.details["text_answerable"]
    rows = {r["type"]: r for r in answerability_rows(counts)}
    assert (rows["C"]["asked"], rows["C"]["kept"], rows["C"]["kept_answered"]) == (0, 2, 2)
    assert rows["C"]["answered_share"] is None  # before the filter, a C item is never asked
    assert (rows["DE"]["kept"], rows["DE"]["kept_answered_share"]) == (1, 0.0)


def test_the_recipe_chooses_the_action():
    def config(action: str):
        return QAStage.Config.model_validate({"llm": {"name": "openai", "model": "m"},
                                              "filters": {"text_only": {"action": action}}})

    assert config("retype").filters.text_only.action == "retype"
    with pytest.raises(ValueError, match="retype"):
        config("rewrite")


def test_the_qa_stage_retypes_and_counts_per_type(tmp_path):
    from qa_synth import ARGUMENT, make_clip, outputs, responder, write_clips
    from test_qa_stage import make_recipe

    from cpqa.executors.local import LocalExecutor
    from cpqa.llm.testserver import OpenAITestServer
    from cpqa.status import text_only_answerability

    def generous_judge(body):
        return "Rating: 5" if "Rating: N" in body["messages"][-1]["content"] else responder(body)

    clips_file = write_clips(tmp_path / "clips.jsonl", [make_clip("rec-clip0000", ARGUMENT)])
    with OpenAITestServer(responder=generous_judge) as server:
        result = LocalExecutor().build(clips_file, tmp_path / "run", make_recipe(
            server, multi_turn=0, filters={"text_only": {"action": "retype"}}))
    records, _ = outputs(result.stages[-1].dir)
    counters = result.stages[-1].stats["counters"]
    retyped = [r for r in records if r["filters"].get("retyped_from")]
    assert retyped and all(r["type"] == "C" and r["filters"]["passed"] for r in retyped)
    assert len(retyped) == counters["text_only/answerable"] == sum(
        v for k, v in counters.items() if k.startswith("text_only/answered/"))
    rows = {r["type"]: r for r in text_only_answerability([{"counters": counters}])}
    assert rows["C"]["kept"] == rows["C"]["kept_answered"] == len(retyped)
    assert counters["qa/type/C"] == 1 + len(retyped)  # the generated content item and the re-typed ones
    # the judge says 5/5 to every answer it sees; a direct answer is rated by rule (this one names no label)
    assert all(row["answered_share"] == (0.0 if code in ("DE", "DG", "DS") else 1.0)
               for code, row in rows.items() if code != "C")
