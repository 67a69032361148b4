"""The speech-LLM check: a model hearing the clip answers the direct questions, its label is compared
with the reference answer's, disagreement is flagged (or dropped), agreement per type is counted for
`cpqa status`, answers are cached so a rerun asks nothing, and without a model nothing changes."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from qa_synth import ARGUMENT, make_clip, outputs, write_clips

from cpqa.evaluate.protocol import SpeechAnswer, SpeechLLM
from cpqa.qa.filters import load_vocabulary, new_filters
from cpqa.qa.generate import QAStage
from cpqa.qa.speech_check import SpeechCheck, SpeechCheckConfig, agreement_rows, agreement_table
from cpqa.records import Clip, ClipWord, QAItem, Turn
from cpqa.requirements import Package

pytestmark = pytest.mark.timeout(120)

EAR = "test_qa_speech_check:ScriptedEar"
# What the scripted model answers, by a word of the question.
HEARS = {"feel": "She sounds angry to me.", "man or a woman": "That is a woman speaking.",
         "how many": "I cannot tell from this recording."}


class ScriptedEar(SpeechLLM):
    """A speech-LLM stand-in: fixed answers by question; every query it gets is logged."""

    name = "scripted-ear"
    log: list = []

    def answer_many(self, queries):
        ScriptedEar.log += queries
        return [SpeechAnswer(text=next((a for k, a in HEARS.items() if k in q.question.lower()), "Hmm."),
                             model="ear-1") if q.audio and q.audio[0].size else SpeechAnswer.failure("silent", "")
                for q in queries]


@pytest.fixture(autouse=True)
def fresh_log():
    ScriptedEar.log = []


def write_audio(run_dir, name: str, seconds: float) -> str:
    run_dir.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(0).normal(0, 0.05, int(seconds * 16000)).astype(np.float32)
    sf.write(run_dir / name, noise, 16000, format="FLAC")
    return name


def item(n: int, code: str, question: str, answer: str, clip_id: str = "c", evidence: str | None = None) -> QAItem:
    return QAItem(id=f"{clip_id}-qa{n:03d}", clip_id=clip_id, type=code, turns=[Turn(question=question, answer=answer)],
                  evidence=evidence, filters=new_filters())


def targets(run_dir) -> list[tuple[QAItem, Clip]]:
    clip = Clip(id="c", recording_id="r", start=0.0, end=3.0, audio=write_audio(run_dir, "c.flac", 3.0), words=[])
    return [(qa, clip) for qa in [
        item(0, "DE", "How does the woman feel about the car?", "She sounds angry and frustrated."),
        item(1, "DG", "Is the person who apologises a man or a woman?", "It is a man."),
        item(2, "DS", "How many people take part in this talk?", "Two people are talking."),
        item(3, "C", "What does the woman feel about the car trip?", "She needs it tonight."),
        item(4, "DE", "How does the man feel when he apologises?", "He speaks about the brakes."),
    ]]


def check(run_dir, **options) -> SpeechCheck:
    return SpeechCheck(SpeechCheckConfig.model_validate({"model": {"name": EAR}, **options}), run_dir,
                       load_vocabulary("v1"))


def test_agreement_and_disagreement_are_noted_per_item_and_counted_per_type(tmp_path):
    pairs = targets(tmp_path)
    counts = check(tmp_path).run(pairs)
    de, dg, ds, c, vague = (qa for qa, _ in pairs)
    assert de.filters.speech_llm["verdict"] == "agreed" and de.filters.flags == []
    assert de.filters.speech_llm["heard"] == {"cut": "none", "heard_s": 3.0, "start": 0.0, "end": 3.0}
    assert dg.filters.speech_llm | {"heard": None} == {
        "model": "ear-1", "answer": "That is a woman speaking.", "verdict": "disagreed", "labels": ["female"],
        "heard": None}
    assert dg.filters.flags == ["speech_llm_disagrees"] and dg.filters.passed
    assert "ear-1 heard female: 'That is a woman speaking.'" == dg.filters.details["speech_llm_disagrees"]
    assert ds.filters.speech_llm["verdict"] == "unclear" and ds.filters.flags == []
    assert "speech_llm" not in c.filters and "speech_llm" not in vague.filters  # not direct; no reference label
    assert len(ScriptedEar.log) == 3
    assert {k: v for k, v in counts.items()} == {
        "speech_llm/asked/DE": 1, "speech_llm/agreed/DE": 1, "speech_llm/asked/DG": 1, "speech_llm/disagreed/DG": 1,
        "speech_llm/asked/DS": 1, "speech_llm/unclear/DS": 1, "speech_llm/no_reference/DE": 1}
    rows = {r["type"]: r for r in agreement_rows(counts)}
    assert (rows["DE"]["agreement"], rows["DG"]["agreement"], rows["DS"]["agreement"]) == (1.0, 0.0, 0.0)
    assert agreement_table([rows["DG"]]) == [["DG", "1", "0 (0%)", "1", "0"]]


def test_drop_fails_the_item_it_disagrees_with(tmp_path):
    pairs = targets(tmp_path)
    check(tmp_path, action="drop", types=["DG"]).run(pairs)
    assert [qa.filters.passed for qa, _ in pairs] == [True, False, True, True, True]
    assert pairs[1][0].filters.reasons == ["speech_llm_disagrees"]
    assert len(ScriptedEar.log) == 1  # only the configured type is asked


def test_a_rerun_asks_the_model_nothing(tmp_path):
    first = targets(tmp_path)
    check(tmp_path).run(first)
    asked = len(ScriptedEar.log)
    again = targets(tmp_path)
    counts = check(tmp_path).run(again)
    assert len(ScriptedEar.log) == asked == 3
    assert [qa.filters for qa, _ in again] == [qa.filters for qa, _ in first]
    assert counts["speech_llm/agreed/DE"] == 1


def test_failures_and_unplaceable_evidence_become_counters(tmp_path):
    words = [ClipWord(word=w, start=50.0 + i * 0.4, end=50.3 + i * 0.4, speaker="s") for i, w in
             enumerate("the train left without her again".split())]
    long = Clip(id="L", recording_id="r", start=0.0, end=70.0, audio=write_audio(tmp_path, "L.flac", 70.0),
                words=words)
    missing = Clip(id="m", recording_id="r", start=0.0, end=3.0, audio="nowhere.flac", words=[])
    placed = item(0, "DE", "How does she feel when the train left?", "She sounds sad.", "L",
                  evidence="when she says the train left without her")
    lost = item(1, "DG", "Is the person a man or a woman?", "A woman.", "L", evidence="somewhere in the middle")
    unread = item(0, "DE", "How does she feel now?", "She sounds sad.", "m")
    counts = check(tmp_path).run([(placed, long), (lost, long), (unread, missing)])
    assert placed.filters.speech_llm["heard"]["cut"] == "window" and placed.filters.speech_llm["heard"]["end"] > 50
    assert ScriptedEar.log[0].audio[0].size == 30 * 16000
    assert lost.filters.speech_llm == {"not_heard": "evidence_not_placed"}
    assert unread.filters.speech_llm["error"].startswith("audio_")
    assert counts["speech_llm/not_heard/evidence_not_placed"] == 1 and counts["speech_llm/disagreed/DE"] == 1
    assert sum(v for k, v in counts.items() if k.startswith("speech_llm/failed/audio_")) == 1
    assert len(ScriptedEar.log) == 1


def test_config_is_off_by_default_and_validated():
    config = QAStage.Config.model_validate({"llm": {"name": "openai", "model": "m"}})
    assert config.filters.speech_llm.model is None and config.filters.speech_llm.action == "flag"
    with pytest.raises(ValueError, match="only the direct types"):
        SpeechCheckConfig.model_validate({"model": {"name": EAR}, "types": ["CE"]})
    with pytest.raises(ValueError, match="hears at most 30 s"):
        SpeechCheckConfig.model_validate({"model": {"name": "qwen2-audio"}, "max_audio_s": 40})
    with pytest.raises(ValueError, match="unknown speechllm"):
        SpeechCheckConfig.model_validate({"model": {"name": "nope"}})
    qwen = QAStage.Config.model_validate({"llm": {"name": "openai", "model": "m"},
                                          "filters": {"speech_llm": {"model": {"name": "qwen2-audio"}}}})
    assert Package("transformers", "gpu") in qwen.requirements()  # checked before the build starts


def build(tmp_path, server, speech_llm: dict | None):
    from test_qa_stage import make_recipe

    from cpqa.executors.local import LocalExecutor

    clip = make_clip("rec-clip0000", ARGUMENT)
    write_audio(tmp_path / "run", clip.audio, clip.end)
    clips_file = write_clips(tmp_path / "clips.jsonl", [clip])
    filters = {"text_only": {"action": "off"}, **({"speech_llm": speech_llm} if speech_llm else {})}
    return LocalExecutor().build(clips_file, tmp_path / "run", make_recipe(server, multi_turn=0, filters=filters))


def test_the_qa_stage_runs_the_check_and_status_shows_the_agreement(tmp_path):
    import shutil

    from qa_synth import responder
    from typer.testing import CliRunner

    from cpqa.cli import app
    from cpqa.llm.testserver import OpenAITestServer
    from cpqa.report.html import build_report
    from cpqa.status import run_status

    with OpenAITestServer(responder=responder) as server:
        result = build(tmp_path, server, {"model": {"name": EAR}})
        records, _ = outputs(result.stages[-1].dir)
        counters = result.stages[-1].stats["counters"]
        checked = {r["type"]: r["filters"]["speech_llm"] for r in records if "speech_llm" in r["filters"]}
        assert {code: v["verdict"] for code, v in checked.items()} == {  # the generator says "a man"
            "DE": "unclear", "DG": "disagreed", "DS": "unclear"}
        asked = len(ScriptedEar.log)
        assert asked == 3 == sum(v for k, v in counters.items() if k.startswith("speech_llm/asked/"))
        assert counters["qa/flagged/speech_llm_disagrees"] == counters["speech_llm/disagreed/DG"] == 1
        rows = run_status(tmp_path / "run")["speech_llm"]
        assert {r["type"] for r in rows} == set(checked)
        shown = CliRunner().invoke(app, ["status", str(tmp_path / "run")], env={"COLUMNS": "200"})
        assert shown.exit_code == 0 and "speech-LLM check" in shown.output and "0 (0%)" in shown.output
        page = build_report(tmp_path / "run").read_text(encoding="utf-8")
        assert "Independent check by a speech-LLM" in page and "<td>DG</td><td>1</td><td>0 (0%)</td>" in page
        # A rerun of the stage from scratch (its output gone, the run's caches kept) asks nothing.
        shutil.rmtree(result.stages[-1].dir)
        again = build(tmp_path, server, {"model": {"name": EAR}})
    assert len(ScriptedEar.log) == asked
    assert outputs(again.stages[-1].dir)[0] == records


def test_without_a_model_nothing_changes(tmp_path):
    from qa_synth import responder

    from cpqa.llm.testserver import OpenAITestServer
    from cpqa.status import run_status

    with OpenAITestServer(responder=responder) as server:
        result = build(tmp_path, server, None)
    records, _ = outputs(result.stages[-1].dir)
    assert records and all("speech_llm" not in r["filters"] for r in records)
    assert not any(k.startswith("speech_llm/") for k in result.stages[-1].stats["counters"])
    assert not (tmp_path / "run" / "cache" / "speechllm.sqlite").exists() and ScriptedEar.log == []
    assert run_status(tmp_path / "run")["speech_llm"] == []


def test_the_cascade_adapter_answers_through_the_check(tmp_path):
    from test_qa_stage import llm_options

    from cpqa.llm.testserver import OpenAITestServer

    clip = make_clip("rec-clip0000", ARGUMENT)
    write_audio(tmp_path, clip.audio, clip.end)
    de = item(0, "DE", "How does the first speaker feel about the car?", "She sounds angry.", clip.id)
    seen = []

    def hears_happy(body):
        seen.append(body["messages"][-1]["content"])
        return "The speaker sounds happy."

    with OpenAITestServer(responder=hears_happy) as server:
        spec = {"name": "cascade", "llm": llm_options(server)}
        counts = SpeechCheck(SpeechCheckConfig.model_validate({"model": spec}), tmp_path, load_vocabulary("v1")).run(
            [(de, clip)])
    assert de.filters.speech_llm["verdict"] == "disagreed" and de.filters.speech_llm["labels"] == ["happy"]
    assert de.filters.speech_llm["model"].startswith("cascade(transcript")
    assert "garage tomorrow" in seen[0]  # the cascade read the clip's words
    assert counts["speech_llm/disagreed/DE"] == 1
