"""Speech without a reliable emotion: abstentions flow through condensation, clips and QA planning
as "no clear emotion", never as a class, and a calm meeting still yields clips for the QA types
that need no emotion (C, DG, DS, CG, CS)."""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pytest
import soundfile as sf
from condense_synth import ABSTAINED, condense, make_recipe, segment

from cpqa.condense.clips import ClipsConfig, ClipsStage
from cpqa.condense.condense import CondenseStage
from cpqa.condense.config import CondenseConfig
from cpqa.executors.local import LocalExecutor
from cpqa.llm.testserver import OpenAITestServer
from cpqa.manifest import iter_jsonl
from cpqa.qa.generate import QAStage
from cpqa.recipe import StageSpec
from cpqa.vocabulary import NO_CLEAR_EMOTION

pytestmark = pytest.mark.timeout(180)

ANSWERS = {
    "C": ("What do the speakers want to change about the remote?", "They want bigger buttons on the remote."),
    "DG": ("Is the first speaker a man or a woman?", "The first speaker is a man."),
    "DS": ("How many people take part in this conversation?", "Two people are talking."),
    "CG": ("What does the man suggest about the buttons?", "He suggests making them larger."),
    "CS": ("Who answers the first speaker's idea about the remote?", "The second speaker answers it."),
    "DE": ("Which emotion does the first voice convey?", "The voice sounds sad."),
    "CE": ("Why does the first speaker sound sad?", "Because the design failed."),
    "EMP": ("What could one say to comfort the speaker?", "That sounds hard; the next design will work."),
}


def fill(body: dict) -> str:
    """A generator that fills the requested slots (the text-only check is off, so nothing else asks)."""
    schema = body["response_format"]["json_schema"]["schema"]
    items = []
    for slot in schema["properties"]["items"]["prefixItems"]:
        code = slot["properties"]["type"]["const"]
        n_turns = len(slot["properties"]["turns"]["prefixItems"])
        turns = [dict(zip(("question", "answer"), ANSWERS[code]))]
        turns += [{"question": f"And what happens next in the meeting ({k})?", "answer": "They agree on a plan."}
                  for k in range(1, n_turns)]
        items.append({"type": code, "evidence": "the middle of the meeting", "turns": turns})
    return json.dumps({"items": items})


def turns(speakers: list[tuple[str, str]], duration_s: float = 55.0) -> list[list]:
    """Alternating 5 s turns of the speakers (speaker, gender) with 0.5 s gaps."""
    out, t, k = [], 0.5, 0
    while t + 5.0 <= duration_s:
        speaker, gender = speakers[k % len(speakers)]
        out.append([t, t + 5.0, speaker, gender])
        t, k = t + 5.5, k + 1
    return out


@pytest.fixture(scope="module")
def calm_corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calm")
    audio = folder / "meeting.flac"
    sf.write(audio, np.random.default_rng(0).normal(0, 0.01, 60 * 16000).astype(np.float32), 16000, format="FLAC")
    entries = [
        {"id": "calm-clear", "audio": str(audio), "duration": 60.0,
         "metadata": {"kind": "calm", "turns": turns([("A", "male"), ("B", "female")])}},
        # speaker C's pooled gender abstained ("" in the turn)
        {"id": "calm-unclear", "audio": str(audio), "duration": 60.0,
         "metadata": {"kind": "calm", "turns": turns([("C", ""), ("D", "male")])}},
    ]
    path = folder / "corpus.json"
    path.write_text(json.dumps(entries))
    return path


@pytest.fixture(scope="module")
def built(calm_corpus, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    logs = []
    handler = logging.Handler()
    handler.emit = lambda record: logs.append(record.getMessage())
    logger = logging.getLogger("cpqa.condense.condense")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with OpenAITestServer(responder=fill) as server:
            llm = {"name": "openai", "model": "test-model", "base_url": server.url, "api_key_env": None,
                   "timeout_s": 5, "max_retries": 0}
            qa = QAStage.Config.model_validate({"llm": llm, "batch_size": 4, "filters": {
                "duplicates": "off", "text_only": {"action": "off"}}})
            recipe = make_recipe(
                StageSpec("condense", "condense", CondenseStage, CondenseConfig(batch_size=8)),
                StageSpec("clips", "clips", ClipsStage, ClipsConfig(batch_size=4)),
                StageSpec("qa", "qa", QAStage, qa))
            result = LocalExecutor().build(calm_corpus, run, recipe)
    finally:
        logger.removeHandler(handler)
    stages = {s.name: s for s in result.stages}
    return stages, logs


def records(stage, name="records.jsonl") -> list[dict]:
    return list(iter_jsonl(stage.dir / name))


def test_a_calm_meeting_is_kept_for_its_other_labels_and_the_yield_says_it_holds_no_reliable_emotion(built):
    stages, logs = built
    annotated = records(stages["annotate"])
    kept = records(stages["condense"])
    assert len(kept) == len(annotated) and not records(stages["condense"], "excluded.jsonl")
    for seg in kept:
        c = seg["metadata"]["condense"]
        assert c["emotion"] is None and c["sentiment"] is None and seg["windows"] == []  # nothing attributed
        assert c["no_emotion_reason"] == "all_windows_abstained" and not c["recording_has_reliable_emotion"]
        assert {w["reason"] for w in c["dropped_windows"]} == {"emotion_abstained"}
        expected = ["content", "speakers"] if seg["speaker"] == "C" else ["content", "gender", "speakers"]
        assert c["reliable_for"] == c["kept_for"] == expected
    counters = stages["condense"].stats["counters"]
    n_windows = sum(len(s["windows"]) for s in annotated)
    assert counters["windows_dropped/emotion_abstained"] == n_windows and "windows/kept" not in counters
    assert counters["no_reliable_emotion/all_windows_abstained"] == len(annotated)
    assert counters["recordings_before/without_reliable_emotion"] == counters["recordings_after/without_reliable_emotion"] == 2
    assert counters["recordings_before/with_reliable_emotion"] == 0
    assert counters["reliable_after/emotion"] == 0 and counters["reliable_after/content"] == len(kept)
    assert counters["emotion_after/none"] == len(kept)
    assert not any(k.startswith("emotion_after/") and k != "emotion_after/none" for k in counters)
    notes = [m for m in logs if "holds no reliable emotion" in m]
    assert len(notes) == 2 and any(m.startswith("condense: recording calm-unclear") and "content: 10" in m for m in notes)


def test_calm_clips_are_tagged_no_clear_emotion_with_pooled_genders(built):
    stages, _ = built
    clips = {c["recording_id"]: c for c in records(stages["clips"])}
    assert set(clips) == {"calm-clear", "calm-unclear"}
    for clip in clips.values():
        assert {w["emotion"] for w in clip["words"]} == {NO_CLEAR_EMOTION}
        assert clip["selection"]["emotions"] == {} and "emotion" not in clip["selection"]["reliable_for_any"]
    assert clips["calm-clear"]["selection"]["reliable_for_all"] == ["content", "gender", "speakers"]
    assert clips["calm-unclear"]["selection"]["reliable_for_all"] == ["content", "speakers"]
    assert clips["calm-unclear"]["selection"]["reliable_for_any"] == ["content", "gender", "speakers"]
    tags = set(re.findall(r"\[([^]]*)\]", clips["calm-clear"]["tagged_transcript"]))
    assert tags == {"S1|male|no clear emotion", "S2|female|no clear emotion"}
    tags = set(re.findall(r"\[([^]]*)\]", clips["calm-unclear"]["tagged_transcript"]))
    assert tags == {"S1|unknown gender|no clear emotion", "S2|male|no clear emotion"}


def test_calm_clips_get_only_the_qa_types_that_need_no_emotion(built):
    stages, _ = built
    items = records(stages["qa"])
    types = {}
    for item in items:
        types.setdefault(item["clip_id"].rsplit("-clip", 1)[0], []).append(item["type"])
    assert types == {"calm-clear": ["C", "DG", "DS", "CG", "CS", "C"],   # the multi-turn item rotates to C
                     "calm-unclear": ["C", "DG", "DS", "CG", "CS", "C"]}  # gender questions about S2, the man
    assert all(item["filters"]["passed"] for item in items), [item["filters"] for item in items]
    counters = stages["qa"].stats["counters"]
    assert counters["qa/types_unavailable_because/no_reliable_emotion"] == 6     # DE, CE, EMP on both clips
    assert "qa/types_unavailable_because/no_confident_gender" not in counters  # one confident voice suffices
    assert all(counters[f"qa/types_unavailable/{code}"] == 2 for code in ("DE", "CE", "EMP"))


def test_abstained_segments_stay_outside_the_emotion_balance():
    emotional = [segment("r", i, 10.0 * i, [(label, valence)] * 2, speaker=f"s{i}")
                 for i, (label, valence) in enumerate([("happy", 0.8)] * 3 + [("sad", 0.2)] + [("neutral", 0.45)] * 2)]
    abstained = [segment("r", 10 + i, 100.0 + 10 * i, [(ABSTAINED, 0.8)] * 2, speaker=f"s{i}") for i in range(4)]
    kept, dropped, counters = condense(*emotional, *abstained)
    by_id = {s.id: s.condense for s in kept}
    assert all(s.id in by_id and by_id[s.id].emotion is None for s in abstained)
    assert {by_id[s.id].emotion for s in emotional if s.id in by_id} == {"happy", "sad", "neutral"}
    assert {s.reason for s in dropped} == {"balance"} and len(dropped) == 3   # happy and neutral cut to sad's one
    assert all(NO_CLEAR_EMOTION not in s.detail and "None" not in s.detail for s in dropped)
    assert counters["emotion_after/happy"] == counters["emotion_after/sad"] == counters["emotion_after/neutral"] == 1
    assert counters["emotion_after/none"] == 4 and counters["recordings_after/with_reliable_emotion"] == 1
