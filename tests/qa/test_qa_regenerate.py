"""Verify and regenerate through the qa stage against the OpenAI-compatible test server: an item
with an invented tone word is dropped with that word as its reason and asked for again in the
same conversation; attempts are bounded and recorded; a rerun makes no new call; a clip whose
labels abstain keeps no item claiming an emotion."""

from __future__ import annotations

import json

import pytest
from qa_synth import ARGUMENT, make_clip, outputs, responder, write_clips
from test_qa_stage import is_generation, make_recipe

from cpqa.executors.local import LocalExecutor
from cpqa.llm.testserver import OpenAITestServer
from cpqa.qa.claims import load_claim_words
from cpqa.qa.filters import words
from cpqa.vocabulary import NO_CLEAR_EMOTION

pytestmark = pytest.mark.timeout(120)
CONFUSED = "She sounds angry and confused because the car broke down before her shift."
QUIET = {"multi_turn": 0, "counts": {"C": 0, "DE": 0, "DG": 0, "DS": 0, "CE": 1, "CG": 1, "CS": 0, "EMP": 0},
         "filters": {"text_only": {"action": "off"}}}


def ce_answering(answer):
    """The stand-in's replies with the CE answer `answer(body)` (None: the stand-in's own)."""
    def respond(body) -> str:
        reply = json.loads(responder(body))
        for entry in reply["items"]:
            if entry["type"] == "CE" and (text := answer(body)) is not None:
                entry["turns"][0]["answer"] = text
        return json.dumps(reply)
    return respond


# 'confused' in the first request, fixed once told why (a follow-up holds more than system and user)
confused_until_told = ce_answering(lambda body: None if len(body["messages"]) > 2 else CONFUSED)
always_confused = ce_answering(lambda body: CONFUSED)
confused_anew = ce_answering(lambda body: f"{CONFUSED} ({len(body['messages'])})")  # in other words each time


def test_an_invented_tone_word_is_dropped_named_and_regenerated_and_a_rerun_is_free(tmp_path):
    clips = write_clips(tmp_path / "clips.jsonl", [make_clip("rec-clip0000", ARGUMENT)])
    with OpenAITestServer(responder=confused_until_told) as server:
        result = LocalExecutor().build(clips, tmp_path / "run", make_recipe(server, **QUIET))
        sent = [r.body for r in server.received if is_generation(r.body)]
        # A changed filter setting reruns the stage: every request, follow-ups included, is cached.
        rerun = LocalExecutor().build(clips, tmp_path / "run", make_recipe(server, **{**QUIET, "filters": {
            **QUIET["filters"], "min_question_words": 4}}))
        assert len(server.received) == len(sent)
    records, skipped = outputs(result.stages[-1].dir)
    assert not skipped and [r["type"] for r in records] == ["CE", "CG"]
    ce, cg = records
    assert ce["filters"]["passed"] and ce["turns"][0]["answer"] != CONFUSED
    first, second = ce["generator"]["attempts"]
    assert first["turns"][0]["answer"] == CONFUSED and not first["passed"]
    assert first["reasons"] == ["unsupported_claim"]
    assert first["details"] == {"unsupported_claim": '"confused" (no label supports it)'}
    assert second["passed"] and second["reasons"] == [] and ce["generator"]["attempt"] == 2
    assert [a["attempt"] for a in cg["generator"]["attempts"]] == [1]       # it passed at once
    # The follow-up continues the conversation, names the failed item and its reason, and asks for it alone.
    assert len(sent) == 2 and sent[1]["messages"][:2] == sent[0]["messages"]
    assert sent[1]["messages"][2]["role"] == "assistant"
    assert json.loads(sent[1]["messages"][2]["content"])["items"][0]["turns"][0]["answer"] == CONFUSED
    assert CONFUSED in sent[1]["messages"][3]["content"] and '"confused" (no label supports it)' in sent[1]["messages"][3]["content"]
    schema = sent[1]["response_format"]["json_schema"]["schema"]["properties"]["items"]["prefixItems"]
    assert [s["properties"]["type"]["const"] for s in schema] == ["CE"]
    counters = result.stages[-1].stats["counters"]
    assert counters["qa/regenerated/CE"] == 1 and counters["qa/recovered/CE"] == 1 and "qa/unrecovered/CE" not in counters
    assert outputs(rerun.stages[-1].dir)[0] == records


def three_attempts_at_ce(tmp_path, respond) -> tuple[dict, dict[str, float], int]:
    """The CE item of the argument clip allowed three attempts against `respond`, the stage's
    counters and the generation requests made."""
    clips = write_clips(tmp_path / "clips.jsonl", [make_clip("rec-clip0000", ARGUMENT)])
    with OpenAITestServer(responder=respond) as server:
        result = LocalExecutor().build(clips, tmp_path / "run", make_recipe(server, max_attempts=3, **QUIET))
        generated = sum(is_generation(r.body) for r in server.received)
    return outputs(result.stages[-1].dir)[0][0], result.stages[-1].stats["counters"], generated


def test_attempts_are_bounded_and_each_is_kept(tmp_path):
    ce, counters, generated = three_attempts_at_ce(tmp_path, confused_anew)
    assert generated == 3
    assert not ce["filters"]["passed"] and ce["filters"]["reasons"] == ["unsupported_claim"]
    assert [(a["attempt"], a["reasons"]) for a in ce["generator"]["attempts"]] == [
        (1, ["unsupported_claim"]), (2, ["unsupported_claim"]), (3, ["unsupported_claim"])]
    assert counters["qa/unrecovered/CE"] == 1


def test_a_word_for_word_repeat_ends_the_slot_before_the_bound(tmp_path):
    ce, _, generated = three_attempts_at_ce(tmp_path, always_confused)
    assert generated == 2
    assert [a["turns"] for a in ce["generator"]["attempts"]] == [[{"question": ce["turns"][0]["question"],
                                                                  "answer": CONFUSED}]] * 2


def test_a_clip_whose_labels_abstain_keeps_no_item_claiming_an_emotion(tmp_path):
    # One speaker sounds neutral, the other's emotion is unclear; the stand-in claims anger anyway.
    unclear = [(s, g, "neutral" if s == "spk_b" else NO_CLEAR_EMOTION, t) for s, g, _, t in ARGUMENT]
    silent = [(s, g, NO_CLEAR_EMOTION, t) for s, g, _, t in ARGUMENT]
    clips = write_clips(tmp_path / "clips.jsonl", [make_clip("mix-clip0000", unclear), make_clip("calm-clip0000", silent)])
    with OpenAITestServer(responder=responder) as server:
        result = LocalExecutor().build(clips, tmp_path / "run",
                                       make_recipe(server, multi_turn=0, filters={"text_only": {"action": "off"}}))
    records, _ = outputs(result.stages[-1].dir)
    affect = load_claim_words("v1").affect
    kept = [r for r in records if r["filters"]["passed"]]
    assert kept and {r["clip_id"] for r in kept} == {"mix-clip0000", "calm-clip0000"}
    for r in kept:
        claimed = {label for t in r["turns"] for w in words(f"{t['question']} {t['answer']}") for label in affect.get(w, ())}
        assert claimed <= ({"neutral"} if r["clip_id"] == "mix-clip0000" else set()), (r["id"], claimed)
    # The stand-in's emotion items were asked again, and dropped with the words that no label supports.
    de = next(r for r in records if r["clip_id"] == "mix-clip0000" and r["type"] == "DE")
    assert not de["filters"]["passed"] and len(de["generator"]["attempts"]) == 2  # the repeat ends it
    assert '"angry" (not heard from S1 (female): no clear emotion)' in de["filters"]["details"]["unsupported_claim"]
    assert not any(r["type"] in ("DE", "CE", "EMP") for r in records if r["clip_id"] == "calm-clip0000")


@pytest.mark.parametrize("rating, passed", [(1, False), (4, True)])
def test_a_configured_type_judge_rates_what_the_rules_passed(tmp_path, rating, passed):
    def judge(body) -> str:
        if "tests what its type asks for" in body["messages"][-1]["content"]:
            return f"Rating: {rating}"
        return responder(body)

    only_emp = {**QUIET, "counts": {**{k: 0 for k in QUIET["counts"]}, "EMP": 1}, "max_attempts": 2,
                "filters": {**QUIET["filters"], "type_judge": "drop"}}
    clips = write_clips(tmp_path / "clips.jsonl", [make_clip("rec-clip0000", ARGUMENT)])
    with OpenAITestServer(responder=judge) as server:
        result = LocalExecutor().build(clips, tmp_path / "run", make_recipe(server, **only_emp))
        judged = [r.body for r in server.received if "tests what its type asks for" in r.body["messages"][-1]["content"]]
        generated = sum(is_generation(r.body) for r in server.received)
    emp = outputs(result.stages[-1].dir)[0][0]
    assert emp["filters"]["type_judge"] == {"rating": rating} and emp["filters"]["passed"] is passed
    assert "S1: female voice, mostly angry" in judged[0]["messages"][0]["content"]
    assert len(judged) == 1   # the stand-in writes the same item again: its rating comes from the cache
    if passed:
        assert generated == 1 and len(emp["generator"]["attempts"]) == 1
    else:   # the judge's verdict went back to the generator like any wrong type
        assert generated == 2 and emp["filters"]["details"]["wrong_type"] == "the judge rated it 1/5 as Empathetic response"
        assert [a["reasons"] for a in emp["generator"]["attempts"]] == [["wrong_type"], ["wrong_type"]]


def test_regeneration_samples_at_the_retry_temperature(tmp_path):
    """A greedy first attempt, then follow-ups sampled (greedy decoding tends to write a refused item
    again word for word); each attempt's item records the temperature it was written at."""
    clips = write_clips(tmp_path / "clips.jsonl", [make_clip("rec-clip0000", ARGUMENT)])
    with OpenAITestServer(responder=confused_until_told) as server:
        result = LocalExecutor().build(clips, tmp_path / "run",
                                       make_recipe(server, temperature=0, retry_temperature=0.9, **QUIET))
        sent = [r.body for r in server.received if is_generation(r.body)]
    assert [(body["temperature"], body["seed"]) for body in sent] == [(0, 0), (0.9, 1)]
    records, _ = outputs(result.stages[-1].dir)
    # CE rewritten, CG passed at once
    assert [(r["generator"]["temperature"], r["generator"]["seed"]) for r in records] == [(0.9, 1), (0, 0)]
