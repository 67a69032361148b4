"""Loading QA sources: runs, exported QA files, human CSV/JSONL sets; errors name the file and line."""

import json

import pytest
from evalgen import make_run

from cpqa.errors import CPQAError
from cpqa.manifest import write_jsonl
from cpqa.qa.filters import outcome
from cpqa.qa_source import dominant_emotion, load_items, run_qa_records
from cpqa.record_parts import QAFilters
from cpqa.records import Clip, ClipWord


def test_run_exported_file_and_human_set(qa_set):
    from_run = load_items(qa_set["run"])
    from_file = load_items(qa_set["qa"], clips=qa_set["clips"])
    assert [i.qa.id for i in from_run] == [i.qa.id for i in from_file] and len(from_run) == 9
    assert all(a.audio == b.audio and b.clip is not None for a, b in zip(from_run, from_file))
    assert {i.emotion for i in from_run} == {"happy", "angry", "sad"}
    bare = load_items(qa_set["qa"])  # no clips: audio from metadata, relative to the file
    assert all(i.clip is None and i.emotion == "unknown" for i in bare)
    assert bare[0].audio == str(qa_set["qa"].parent / "audio" / "clip0.flac")
    human = load_items(qa_set["human"])
    assert [i.qa.type for i in human] == ["DE"] * 3 and human[0].qa.clip_id == "clip0"
    assert human[0].qa.generator.model_dump() == {"model": "human"} and human[0].qa.id.startswith("human-")


def test_a_run_gives_its_final_qa_stage_items_and_its_drops_on_request(qa_set, tmp_path):
    items = [i.qa for i in load_items(qa_set["run"])]
    clips = [i.clip for i in load_items(qa_set["run"])]
    dropped = items[0].model_copy(update={"filters": QAFilters(passed=False, reasons=["type_cap"], flags=[],
                                                               details={"type_cap": "over the cap"})})
    run = make_run(tmp_path / "run", list({c.id: c for c in clips}.values()), items[1:], qa_stages=("qa", "qa_dataset"))
    (run / "06-qa-0000000000" / "records.jsonl").write_text("")  # the qa_dataset stage is the one read
    write_jsonl(run / "07-qa_dataset-0000000000" / "excluded.jsonl", [outcome(dropped)])
    loaded = load_items(run)
    assert [i.qa.id for i in loaded] == [q.id for q in items[1:]]
    assert [r["id"] for r in run_qa_records(run, include_dropped=True)] == [q.id for q in [*items[1:], dropped]]
    no_qa = make_run(tmp_path / "no-qa", clips[:1], [], qa_stages=())
    with pytest.raises(CPQAError, match="has no QA stage"):
        load_items(no_qa)


def test_human_jsonl_rows_mix_with_qa_items(tmp_path):
    path = tmp_path / "set.jsonl"
    rows = [{"audio": "a.wav", "question": "Who speaks?", "answer": "Two people.", "type": "DS", "emotion": "sad",
             "id": "h1"},
            {"id": "g1", "clip_id": "c", "type": "C", "turns": [{"question": "q", "answer": "a"}],
             "metadata": {"audio": "/abs/c.flac"}}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    items = load_items(path)
    assert [(i.qa.id, i.qa.type, i.emotion) for i in items] == [("h1", "DS", "sad"), ("g1", "C", "unknown")]
    assert items[0].audio == str(tmp_path / "a.wav") and items[1].audio == "/abs/c.flac"


@pytest.mark.parametrize("content, message", [
    ("audio,question,answer\na.wav,q,a\n", "set.csv:2: a human QA row needs type"),
    ("audio,question,answer,type\na.wav,q,a,XX\n", "set.csv:2: type 'XX'"),
    ("audio,question,answer,type\n", "holds no QA items"),
    ("id,audio,question,answer,type\nx,a.wav,q,a,C\nx,b.wav,q,a,C\n", "QA ids must be unique"),
])
def test_bad_human_csv(tmp_path, content, message):
    (tmp_path / "set.csv").write_text(content)
    with pytest.raises(CPQAError, match=message):
        load_items(tmp_path / "set.csv")


def test_bad_jsonl(tmp_path):
    (tmp_path / "set.jsonl").write_text('{"id": "x", "turns": []}\n')
    with pytest.raises(CPQAError, match=r"set.jsonl:1: not a QA item: clip_id"):
        load_items(tmp_path / "set.jsonl")
    (tmp_path / "set.jsonl").write_text("not json\n")
    with pytest.raises(CPQAError, match="not JSONL"):
        load_items(tmp_path / "set.jsonl")


def test_dominant_emotion_by_duration():
    words = [ClipWord(word="a", start=0, end=1, emotion="neutral"), ClipWord(word="b", start=1, end=3, emotion="sad"),
             ClipWord(word="c", start=3, end=9, emotion="unknown"), ClipWord(word="d", start=9, end=10, emotion="sad")]
    clip = Clip(id="c", recording_id="r", start=0, end=10, audio="c.flac", words=words)
    assert dominant_emotion(clip) == "sad" and dominant_emotion(None) == "unknown"
