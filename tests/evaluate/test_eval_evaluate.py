"""`evaluate` end to end on real clip audio: the cascade baselines answer through the LLM layer's
test server, which also judges; caching, long-clip policies, skips and user errors."""

import base64
import io
import json

import pytest
import soundfile as sf
from evalgen import endpoint, long_clip

from cpqa.errors import CPQAError
from cpqa.evaluate import evaluate
from cpqa.evaluate.judge import RATING_REMINDER
from cpqa.llm.testserver import Fail, Reply
from cpqa.manifest import iter_jsonl, write_jsonl
from cpqa.records import QAItem, Turn

pytestmark = pytest.mark.timeout(120)


def cascade(server, name="cascade", **options):
    return {"name": name, "llm": endpoint(server, "answerer"), **options}


def calls(server, model):
    return sum(r.body["model"] == model for r in server.received)


def test_cascade_on_a_run_with_a_scripted_judge(qa_set, server, tmp_path):
    result = evaluate(qa_set["run"], tmp_path / "eval", model=cascade(server), judge=endpoint(server, "judge"))
    s = result.summary
    # 3 clips × (C, DE, two-turn DG) = 9 items, 12 units; the judge rates C 2, DE 4, DG 5 and
    # never rates the DG follow-up (a malformed reply: a failure, not a score).
    assert (s["n_items"], s["n_units"]) == (9, 12)
    assert {t: g["score"] for t, g in s["per_type"].items()} == {"C": 40, "DE": 80, "DG": 100}
    assert s["score"] == pytest.approx((3 * 40 + 3 * 80 + 3 * 100) / 9)
    assert s["uas"] == pytest.approx((40 + 80 + 100) / 3)
    assert s["success_rate"] == pytest.approx(9 / 12)
    assert s["judge_failures"] == {"no_rating": 3}
    assert set(s["per_emotion"]) == {"happy", "angry", "sad"}
    assert s["judge"]["model"] == "judge" and s["judge"]["temperature"] == 0 and s["judge"]["rubric_version"] == "1"
    assert s["long_audio"] == {"policy": "split", "max_audio_s": 30.0, "windowed_units": 0, "chunked_units": 0,
                               "dropped_items": {}}
    assert (result.speechllm_queries, result.judge_requests) == (12, 15)  # 3 asked again for a final rating

    rows = list(iter_jsonl(tmp_path / "eval" / "predictions.jsonl"))
    follow_up = next(r for r in rows if r["turn"] == 1)
    assert follow_up["judge"]["ratings"] == [] and follow_up["judge"]["score"] is None
    assert follow_up["judge"]["replies"] == ["The answer seems fine, I would rate it highly.\n[asked for the final "
                                             "rating line]\nI would rather not give a number."]
    de = next(r for r in rows if r["type"] == "DE")
    assert de["answer"] == "The speaker sounds happy." and de["model"].startswith("cascade(transcript")
    assert de["judge"] | {"replies": None} == {
        "model": "judge", "rubric": "reference", "rubric_version": "1", "temperature": 0.0, "ratings": [4],
        "score": 80.0, "success": 1.0, "runs": 1, "failures": [], "replies": None}
    # the text LLM read the clip's words, the follow-up came with the first turn as history
    asked = [r.body["messages"] for r in server.received if r.body["model"] == "answerer"]
    assert any("Kids are talking by the door" in m[1]["content"] for m in asked)
    assert any(len(m) == 4 and m[2]["content"] == "The speaker is male." for m in asked)
    items = list(iter_jsonl(tmp_path / "eval" / "items.jsonl"))
    assert len(items) == 9 and json.loads((tmp_path / "eval" / "results.json").read_text())["uas"] == s["uas"]


def test_reruns_and_rejudging_never_ask_the_speech_llm_again(qa_set, server, tmp_path):
    out = tmp_path / "eval"
    evaluate(qa_set["run"], out, model=cascade(server), judge=endpoint(server, "judge"))
    answered, judged = calls(server, "answerer"), calls(server, "judge")

    again = evaluate(qa_set["run"], out, model=cascade(server), judge=endpoint(server, "judge"))
    assert (again.speechllm_queries, again.judge_requests) == (0, 0)
    assert (calls(server, "answerer"), calls(server, "judge")) == (answered, judged)

    rejudged = evaluate(qa_set["run"], out, model=cascade(server), judge=endpoint(server, "judge"),
                        rubric="paralinguistic", n_judge_runs=2, judge_temperature=0.5)
    assert rejudged.speechllm_queries == 0 and calls(server, "answerer") == answered
    assert rejudged.judge_requests == 24 and rejudged.summary["score"] == pytest.approx(60)
    assert rejudged.summary["success_rate"] == 1.0
    row = next(iter_jsonl(out / "predictions.jsonl"))
    assert row["judge"]["ratings"] == [3, 3] and row["judge"]["rubric"] == "paralinguistic"

    # a second evaluation sharing the cache: its answers are reused too
    shared = evaluate(qa_set["run"], tmp_path / "other", model=cascade(server), judge=endpoint(server, "judge"),
                      cache_dir=out)
    assert (shared.speechllm_queries, shared.judge_requests) == (0, 0)


def test_exported_file_with_clips_and_the_labels_cascade(qa_set, server, tmp_path):
    result = evaluate(qa_set["qa"], tmp_path / "eval", model=cascade(server, "cascade-labels"),
                      judge=endpoint(server, "judge"), clips=qa_set["clips"])
    assert result.summary["n_items"] == 9 and result.summary["answer_failures"] == {}
    prompts = [r.body["messages"][1]["content"] for r in server.received if r.body["model"] == "answerer"]
    assert any("[S1|female|happy]" in p or "[S1|male|happy]" in p for p in prompts)
    assert result.summary["model"]["model"].startswith("cascade(transcript+labels")


def test_human_set_without_clips(qa_set, server, tmp_path):
    # no clip words: the transcript comes from ASR (the dummy backend names words w0, w1, ...)
    result = evaluate(qa_set["human"], tmp_path / "eval", model=cascade(server, asr={"name": "dummy"}),
                      judge=endpoint(server, "judge"))
    assert result.summary["n_items"] == 3 and set(result.summary["per_type"]) == {"DE"}
    assert all("w0 w1" in r.body["messages"][1]["content"] for r in server.received if r.body["model"] == "answerer")
    assert set(result.summary["per_emotion"]) == {"unknown"}
    # the labels cascade has no labels to read here: every item is a recorded skip, nothing crashes
    labels = evaluate(qa_set["human"], tmp_path / "labels", model=cascade(server, "cascade-labels"),
                      judge=endpoint(server, "judge"))
    assert labels.summary["answer_failures"] == {"no_labels": 3} and labels.summary["score"] is None


def test_missing_audio_is_a_recorded_skip(qa_set, server, tmp_path):
    items = [QAItem(id="ok", clip_id="clip0", type="C", turns=[Turn(question="What did clip0 say?", answer="x")],
                    metadata={"audio": str(qa_set["qa"].parent / "audio" / "clip0.flac")}),
             QAItem(id="gone", clip_id="gone", type="C", turns=[Turn(question="What?", answer="x")],
                    metadata={"audio": "nowhere.flac"})]
    write_jsonl(tmp_path / "qa.jsonl", items)
    result = evaluate(tmp_path / "qa.jsonl", tmp_path / "eval", model=cascade(server, asr={"name": "dummy"}),
                      judge=endpoint(server, "judge"))
    assert result.summary["answer_failures"] == {"audio_missing_file": 1}
    assert result.summary["n_scored"] == 1
    gone = next(r for r in iter_jsonl(tmp_path / "eval" / "predictions.jsonl") if r["qa_id"] == "gone")
    assert gone["skipped"] and "nowhere.flac" in gone["error"] and gone["judge"] is None


def test_each_clip_is_decoded_once_whatever_the_item_order(qa_set, server, tmp_path, monkeypatch):
    import cpqa.evaluate.answering as answering

    decoded = []
    load = answering.load_16k_mono
    monkeypatch.setattr(answering, "load_16k_mono", lambda path: decoded.append(path) or load(path))
    items = list(iter_jsonl(qa_set["qa"]))
    interleaved = sorted(items, key=lambda q: q["type"])  # the set lists items clip by clip
    assert [q["clip_id"] for q in interleaved][:3] == ["clip0", "clip1", "clip2"]  # clips alternate
    write_jsonl(qa_set["qa"].parent / "interleaved.jsonl", interleaved)
    result = evaluate(qa_set["qa"].parent / "interleaved.jsonl", tmp_path / "eval", model=cascade(server),
                      judge=endpoint(server, "judge"), clips=qa_set["clips"])
    assert result.speechllm_queries == 12
    assert sorted(decoded) == sorted(set(decoded)) and len(decoded) == 3


def _long_set(qa_set, real_data, tmp_path):
    audio = long_clip(real_data, tmp_path)
    duration = sf.info(audio).duration
    item = QAItem(id="long", clip_id="long", type="C", turns=[Turn(question="What is said?", answer="x")],
                  metadata={"audio": str(audio), "evidence_s": [duration - 1.5, duration - 0.5]})  # near the end
    write_jsonl(tmp_path / "long.jsonl", [item])
    return tmp_path / "long.jsonl", duration


def _wav_seconds(part) -> float:
    data, rate = sf.read(io.BytesIO(base64.b64decode(part["input_audio"]["data"])))
    assert rate == 16000 and part["input_audio"]["format"] == "wav"
    return len(data) / rate


def test_long_clip_policies_with_the_openai_audio_adapter(qa_set, real_data, server, tmp_path):
    qa_file, duration = _long_set(qa_set, real_data, tmp_path)
    model = {"name": "openai-audio", **{k: v for k, v in endpoint(server, "speech").items() if k != "name"}}
    split = evaluate(qa_file, tmp_path / "t", model=model, judge=endpoint(server, "judge"), max_audio_s=4)
    assert split.summary["long_audio"] == {"policy": "split", "max_audio_s": 4, "windowed_units": 1,
                                           "chunked_units": 0, "dropped_items": {}}
    row = next(iter_jsonl(tmp_path / "t" / "predictions.jsonl"))
    assert row["audio"] == {"duration_s": pytest.approx(duration, abs=1e-3), "heard_s": 4.0, "cut": "window",
                            "pieces": 1}
    # the evidence lies past the first window: `drop` asks nothing (and says so before any call)
    with pytest.raises(CPQAError, match="evidence_beyond_window"):
        evaluate(qa_file, tmp_path / "d", model=model, judge=endpoint(server, "judge"), max_audio_s=4,
                 long_audio="drop")
    chunked = evaluate(qa_file, tmp_path / "c", model=model, judge=endpoint(server, "judge"), max_audio_s=4,
                       long_audio="chunk")
    assert chunked.summary["long_audio"]["chunked_units"] == 1 and chunked.speechllm_queries == 1
    sent = [r.body for r in server.received if r.body["model"] == "speech"]
    first_parts, chunk_parts = sent[0]["messages"][0]["content"], sent[1]["messages"][0]["content"]
    assert [p["type"] for p in first_parts] == ["input_audio", "text"] and _wav_seconds(first_parts[0]) == 4.0
    heard_window = sf.read(io.BytesIO(base64.b64decode(first_parts[0]["input_audio"]["data"])))[0]
    whole = sf.read(qa_file.parent / "audio" / "long.flac")[0]
    assert heard_window == pytest.approx(whole[-len(heard_window):], abs=1e-3)  # the last window: the evidence's
    seconds = [_wav_seconds(p) for p in chunk_parts if p["type"] == "input_audio"]
    assert len(seconds) == 3 and sum(seconds) == pytest.approx(duration, abs=1e-3) and max(seconds) == 4.0


def test_items_about_unheard_audio_are_never_asked(qa_set, server, tmp_path):
    """Clips longer than the window and items naming no evidence: nothing to place them by, so not asked."""
    with pytest.raises(CPQAError, match="evidence_not_placed.*chunk"):
        evaluate(qa_set["run"], tmp_path / "eval", model=cascade(server), judge=endpoint(server, "judge"),
                 max_audio_s=1.0)
    assert server.received == []


def test_openai_audio_retries_and_keeps_clips_apart(qa_set, tmp_path):
    from cpqa.llm.testserver import OpenAITestServer

    def script(body, attempt):
        return Fail(429, retry_after=0.01) if body["model"] == "speech" and attempt == 1 else Reply()

    def responder(body):
        if body["model"] == "judge":
            return "Rating: 5"
        return f"heard {len(body['messages'][0]['content'][0]['input_audio']['data'])} chars"

    with OpenAITestServer(script, responder=responder) as server:
        model = {"name": "openai-audio", **{k: v for k, v in endpoint(server, "speech").items() if k != "name"}}
        result = evaluate(qa_set["qa"], tmp_path / "eval", model=model, judge=endpoint(server, "judge"))
    assert result.summary["answer_failures"] == {} and result.speechllm_queries == 12
    answers = {r["clip_id"]: r["answer"] for r in iter_jsonl(tmp_path / "eval" / "predictions.jsonl")}
    assert len(set(answers.values())) == 3  # same questions on different clips are different requests


def test_user_errors_fail_before_any_call(qa_set, server, tmp_path):
    judge = endpoint(server, "judge")
    cases = [
        ({"model": "whisper-gpt"}, "unknown speechllm backend"),
        ({"model": cascade(server), "rubric": "strict"}, "unknown rubric"),
        ({"model": {"name": "cascade", "temprature": 1}}, "invalid speechllm options"),
        ({"model": "qwen2-audio", "max_audio_s": 60}, "hears at most 30 s"),
        ({"model": cascade(server), "long_audio": "truncate"}, "long_audio"),
        ({"model": cascade(server), "n_judge_runs": 0}, "n_judge_runs"),
    ]
    for kwargs, message in cases:
        with pytest.raises(CPQAError, match=message):
            evaluate(qa_set["run"], tmp_path / "eval", judge=judge, **kwargs)
    with pytest.raises(CPQAError, match="neither a cpqa run"):
        evaluate(tmp_path / "missing", tmp_path / "eval", model=cascade(server), judge=judge)
    assert server.received == []


def test_a_rating_stated_first_is_asked_again_and_counted(qa_set, tmp_path):
    def rating_first(body):
        if body["model"] != "judge":
            return "The speaker sounds happy."
        if body["messages"][-1]["content"] == RATING_REMINDER:
            return "Rating: 4"
        return "Rating: 4\nThe answer matches the reference on the main point."

    from cpqa.llm.testserver import OpenAITestServer

    with OpenAITestServer(responder=rating_first) as server:
        result = evaluate(qa_set["run"], tmp_path / "eval", model=cascade(server), judge=endpoint(server, "judge"))
    assert result.summary["success_rate"] == 1.0 and result.summary["score"] == 80.0
    assert result.judge_requests == 2 * result.summary["n_units"]
