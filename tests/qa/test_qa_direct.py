"""QA types v3: direct items cpqa phrases itself (`qa.direct_items: template`), CS on a reply
(a speaker and the one who responds right after them), evidence bounded per version."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from qa_synth import make_clip, outputs, responder, write_clips
from test_qa_stage import is_generation, make_recipe

from cpqa.executors.local import LocalExecutor
from cpqa.llm.testserver import OpenAITestServer
from cpqa.qa.claims import load_claim_words, unsupported_claims
from cpqa.qa.config import QAConfig
from cpqa.qa.facts import clip_facts
from cpqa.qa.filters import new_filters, strip_copied_tags
from cpqa.qa.prompts import generation_request, slot_instructions
from cpqa.qa.targets import reply_pairs, slot_targets
from cpqa.qa.types import Slot, load_qa_types
from cpqa.records import QAItem, Turn

pytestmark = pytest.mark.timeout(120)
ORDINALS = load_claim_words("v1").ordinals
V3 = load_qa_types("v3")
# The first speaker raises a point, the second takes it up at length, the third only backchannels.
TALK = [
    ("spk_a", "female", "neutral", "that just raises a point I wonder what our design people think about the menu"),
    ("spk_b", "male", "neutral", "I was thinking on the same lines instead of having too many buttons on it"),
    ("spk_c", "female", "happy", "mm yeah"),
    ("spk_a", "female", "neutral", "and a menu like on a mobile phone so people can browse"),
]
ONLY = {"C": 0, "DE": 0, "DG": 0, "DS": 0, "CE": 0, "CG": 0, "CS": 0, "EMP": 0}


def cs_instruction(stretches) -> str:
    facts = clip_facts(make_clip("talk-clip0000", stretches))
    slots = [Slot("CS")]
    return slot_instructions(facts, slots, slot_targets(facts, slots, V3, ORDINALS), V3)[0]


def test_cs_asks_how_a_speaker_responds_to_the_one_just_before():
    facts = clip_facts(make_clip("talk-clip0000", TALK))
    # "mm yeah" answers nothing, and the first speaker's next turn replies to the second past it
    assert [(a.alias, b.alias) for a, b in reply_pairs(facts)] == [("S1", "S2"), ("S2", "S1")]
    assert cs_instruction(TALK).startswith("Ask how the second speaker responds to what the first speaker says just "
                                           "before.")
    # a turn split by an emotion change is still one turn
    split = [TALK[0], ("spk_b", "male", "neutral", "I was thinking"), ("spk_b", "male", "happy", "on the same lines "
             "instead of too many buttons"), TALK[2]]
    # three short turns between a turn and the next are too many: no reply
    assert [(a.alias, b.alias) for a, b in reply_pairs(clip_facts(make_clip("s-clip0000", split)))] == [("S1", "S2")]
    far = [TALK[0], ("spk_c", "female", "happy", "mm"), ("spk_d", "male", "neutral", "yes"),
           ("spk_c", "female", "happy", "mm"), TALK[1]]
    assert reply_pairs(clip_facts(make_clip("f-clip0000", far))) == []
    # no exchange long enough: tell two speakers apart by what they say; one speaker: ask about others
    short = [TALK[0], ("spk_b", "male", "neutral", "yes"), TALK[3]]
    assert "which of two speakers" in cs_instruction(short)
    assert "besides the single speaker" in cs_instruction([TALK[0]])


def test_the_evidence_bound_is_the_versions():
    facts = clip_facts(make_clip("talk-clip0000", TALK))
    for version, chars in (("v2", 160), ("v3", 60)):
        types = load_qa_types(version)
        request = generation_request(facts, {}, [Slot("C")], ["Ask."], types, temperature=0, seed=0, max_tokens=99)
        item = request.json_schema["properties"]["items"]["prefixItems"][0]
        assert item["properties"]["evidence"]["maxLength"] == chars


def test_direct_items_are_phrased_by_cpqa_checked_and_the_generator_writes_the_rest(tmp_path):
    clips = write_clips(tmp_path / "clips.jsonl", [make_clip("talk-clip0000", TALK)])
    qa = {"counts": {**ONLY, "C": 1, "DE": 1, "DG": 1, "DS": 1, "CS": 1}, "multi_turn": 0, "direct_items": "template",
          "filters": {"text_only": {"action": "off"}}}
    with OpenAITestServer(responder=responder) as server:
        result = LocalExecutor().build(clips, tmp_path / "run", make_recipe(server, **qa))
        generations = [r.body for r in server.received if is_generation(r.body)]
        records, skipped = outputs(result.stages[-1].dir)
        calls = len(server.received)
        rerun = LocalExecutor().build(clips, tmp_path / "run", make_recipe(server, **qa))
        assert len(server.received) == calls and outputs(rerun.stages[-1].dir)[0] == records

    assert not skipped   # the generator gets the C and CS slots only (the stand-in's CS is asked again)
    schema = generations[0]["response_format"]["json_schema"]["schema"]
    assert [s["properties"]["type"]["const"] for s in schema["properties"]["items"]["prefixItems"]] == ["C", "CS"]
    assert "Ask how the second speaker responds" in generations[0]["messages"][-1]["content"]
    assert [r["id"] for r in records] == [f"talk-clip0000-qa{n:03d}" for n in range(5)]
    assert [r["type"] for r in records] == ["C", "DE", "DG", "DS", "CS"]
    by_type = {r["type"]: r for r in records}
    for code in ("DE", "DG", "DS"):
        item = by_type[code]
        assert item["filters"]["passed"], item["filters"]
        assert item["generator"]["backend"] == item["generator"]["model"] == "template"
        assert item["generator"]["prompt_version"] == "v3" and item["generator"]["attempt"] == 1
        assert [a["passed"] for a in item["generator"]["attempts"]] == [True]
    de, dg, ds = (by_type[code]["turns"][0] for code in ("DE", "DG", "DS"))
    assert "first speaker" in de["question"] and "neutral" not in de["question"] and de["answer"].endswith("neutral.")
    assert "first speaker" in dg["question"] and dg["answer"].endswith(("sounds female.", "has a female voice."))
    assert ds["answer"].startswith("Three ")
    assert by_type["DE"]["evidence"] == "that just raises a point I wonder what"
    assert by_type["DS"]["evidence"] is None
    assert by_type["C"]["generator"]["backend"] == "openai"


def test_phrased_direct_items_need_a_version_with_phrasings():
    with pytest.raises(ValidationError, match="phrasings"):
        QAConfig.model_validate({"direct_items": "template", "prompt_version": "v2"})
    assert QAConfig.model_validate({"direct_items": "template"}).prompt_version == "v3"


def test_evidence_keeps_the_words_not_a_copied_tag():
    assert strip_copied_tags("S1|female|neutral] that just raises a point. I wonder what [") == (
        "that just raises a point. I wonder what")
    assert strip_copied_tags("[S2|unknown gender|neutral] thinking on the same lines") == "thinking on the same lines"
    assert strip_copied_tags("the menu display") == "the menu display"
    assert strip_copied_tags("[S1|") is None and strip_copied_tags(None) is None


def test_an_empathetic_reply_needs_a_speaker_who_sounds_other_than_neutral():
    calm = [(speaker, gender, "neutral", text) for speaker, gender, _, text in TALK]
    facts = clip_facts(make_clip("calm-clip0000", calm))
    assert facts.unavailable("affect") == "no_emotion_beyond_neutral" and facts.unavailable("emotion") is None
    assert "affect" in V3.types["EMP"].labels and "affect" not in V3.types["CE"].labels
    # a happy "mm yeah" is no state to respond to
    assert clip_facts(make_clip("talk-clip0000", TALK)).unavailable("affect") == "no_emotion_beyond_neutral"
    # where someone does sound other than neutral at some length, the reply is to them, not to the longest speaker
    glad = [TALK[0], ("spk_b", "male", "happy", "oh that is wonderful news I love the idea of a menu"), *TALK[2:]]
    facts = clip_facts(make_clip("glad-clip0000", glad))
    emp, ce = slot_targets(facts, [Slot("EMP"), Slot("CE")], V3, ORDINALS)
    assert (emp.alias, emp.emotion) == ("S2", "happy") and ce.alias == "S1"


def test_a_failed_generation_keeps_the_phrased_direct_items(tmp_path):
    clips = write_clips(tmp_path / "clips.jsonl", [make_clip("talk-clip0000", TALK)])
    qa = {"counts": {**ONLY, "C": 1, "DE": 1, "DG": 1, "DS": 1}, "multi_turn": 0, "direct_items": "template",
          "filters": {"text_only": {"action": "off"}}}

    def broken(body) -> str:
        return "{ not json" if is_generation(body) else responder(body)

    with OpenAITestServer(responder=broken) as server:
        result = LocalExecutor().build(clips, tmp_path / "run", make_recipe(server, **qa))
    records, skipped = outputs(result.stages[-1].dir)
    assert not skipped and [r["type"] for r in records] == ["DE", "DG", "DS"]
    assert result.stages[-1].stats["counters"]["qa/generation_failed/invalid_output"] == 1


def test_a_phrased_direct_item_is_not_about_the_background():
    # stock words of the phrasings ("different", "heard", "feeling") said only around the clip
    # are no claim; a content item needs two background words to be about the background
    clip = make_clip("talk-clip0000", TALK, context={"before": "", "after": "A different feeling was heard."})
    facts = clip_facts(clip)
    cw = load_claim_words("v1")
    ds = QAItem(id="talk-clip0000-qa000", clip_id=clip.id, type="DS", filters=new_filters(),
                turns=[Turn(question="How many speakers can be heard?", answer="Three different people speak.")])
    c = QAItem(id="talk-clip0000-qa001", clip_id=clip.id, type="C", filters=new_filters(),
               turns=[Turn(question="What is the conversation about?", answer="A different menu, heard once.")])
    assert unsupported_claims(ds, facts, cw) == []
    assert unsupported_claims(c, facts, cw) == ['"different, heard" (said around the clip, not in it)']
