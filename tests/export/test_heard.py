"""What the model hears: exports cut clips longer than the model's window into heard windows and keep
each item with the window its evidence lies in (or drop it, counted), `cpqa evaluate` hears the same
windows; audio paths survive a moved run and relative output folders; LLaMA-Factory's dataset_info
maps only the columns the rows carry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf
from exportgen import read_jsonl
from longgen import EXPECTED
from typer.testing import CliRunner

from cpqa.evaluate.heard import Span, evidence_span, find_words, heard_windows, place
from cpqa.export import export
from cpqa.records import ClipWord, QAItem, Turn

pytestmark = pytest.mark.timeout(120)


def rows_of(out: Path) -> list[dict]:
    return [r for p in sorted(out.glob("*.jsonl")) for r in read_jsonl(p)]


def seconds(path: str | Path) -> float:
    info = sf.info(str(path))
    return info.frames / info.samplerate


# ---- the rule -------------------------------------------------------------------------------------

def test_heard_windows_are_full_and_cover_the_clip():
    assert heard_windows(20.0, 30.0) == [Span(0.0, 20.0)]
    first, last = heard_windows(45.8, 30.0)
    assert (first.start, first.end) == (0.0, 30.0) and last.start == pytest.approx(15.8) and last.end == 45.8
    windows = heard_windows(61.0, 30.0)
    assert len(windows) == 3 and all(w.duration_s == pytest.approx(30.0) for w in windows) and windows[-1].end == 61.0


def test_placement_by_policy():
    late, across = Span(40.0, 41.0), Span(29.0, 31.0)
    assert place(45.8, late, 30.0, "split").window.start == pytest.approx(15.8)
    assert place(45.8, late, 30.0, "drop").dropped == "evidence_beyond_window"
    assert place(65.0, Span(29.5, 36.0), 30.0, "split").index == 1  # the first window holding all of it
    assert place(60.0, Span(28.0, 33.5), 30.0, "split").dropped == "evidence_across_windows"  # 0-30, 30-60
    assert place(45.8, None, 30.0, "split").dropped == "evidence_not_placed"
    assert place(45.8, None, 30.0, "chunk").cut == "chunked"
    assert place(20.0, None, 30.0, "drop").cut == "none"  # a clip that fits is heard whole
    assert place(45.8, across, None, "split").cut == "none"  # no window: any length is heard


def test_evidence_is_found_in_the_words():
    words = [ClipWord(word=w, start=i, end=i + 0.5) for i, w in enumerate(
        "the train left the station before we got there and the train came back".split())]
    assert find_words("when she says the train came back", words) == Span(11.0, 13.5)
    assert find_words("the speaker's calm voice", words) is None
    assert find_words("the train", words) is None  # one content word is no place
    qa = QAItem(id="q", clip_id="c", type="C", turns=[Turn(question="q", answer="a")], metadata={"evidence_s": [3, 4]})
    assert evidence_span(qa, None) == Span(3.0, 4.0)


# ---- exports --------------------------------------------------------------------------------------

@pytest.mark.parametrize("policy", ["split", "drop"])
def test_no_exported_item_is_about_audio_past_the_window(long_run, tmp_path, policy):
    result = export(long_run, "jsonl", tmp_path / "out", splits={"train": 1}, window_s=30, long_audio=policy)
    assert result.summary["heard"] == {"window_s": 30, "long_audio": policy, **EXPECTED[policy]}
    rows = rows_of(tmp_path / "out")
    assert len(rows) == EXPECTED[policy]["items_whole"] + EXPECTED[policy]["items_in_windows"]
    clips = {r["id"]: r for r in read_jsonl(long_run / "05-clips-a" / "records.jsonl")}
    for row in rows:
        audio, meta = tmp_path / "out" / row["metadata"]["audio"], row["metadata"]
        duration = seconds(audio)
        assert duration <= 30.0 + 1e-3 and meta["duration_s"] == pytest.approx(duration, abs=1e-3)
        clip = clips[row["clip_id"]]
        if "heard_window" in meta:  # the window file is that stretch of the clip's audio
            start, end = meta["heard_window"]
            whole, _ = sf.read(long_run / clip["audio"])
            part, _ = sf.read(audio)
            assert part == pytest.approx(whole[round(start * 16000):round(start * 16000) + len(part)], abs=1e-4)
            assert end - start == pytest.approx(duration, abs=1e-3)
            if policy == "drop":
                assert start == 0.0
        if meta.get("evidence_s"):  # the evidence's words lie inside what the model hears
            lo, hi = meta["evidence_s"]
            assert 0.0 <= lo < hi <= duration + 0.05
            offset = meta.get("heard_window", [0.0])[0]
            said = row["evidence"].split("'")[1].split()
            assert {w["word"] for w in clip["words"] if lo + offset <= w["start"] < hi + offset} == set(said)
    kept = {r["id"] for r in rows}
    assert not any(i.endswith(("-vague", "-none")) for i in kept if i.startswith("long"))
    assert ("long-clip0000-late" in kept) == (policy == "split")


def test_training_formats_hear_30_s_and_the_cli_prints_the_counts(long_run, tmp_path):
    import typer

    from cpqa.cli.export import export_cmd

    app = typer.Typer()
    app.command("export")(export_cmd)
    app.command("other")(lambda: None)
    out = tmp_path / "swift"
    result = CliRunner().invoke(app, ["export", str(long_run), "--format", "ms-swift", "-o", str(out),
                                      "--splits", "train=1"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert ("heard window 30 s (split): 4 item(s) heard whole; 6 item(s) of 2 longer clip(s) split into 4 "
            "window(s); dropped: evidence_not_placed: 4") in " ".join(result.output.split())
    rows = rows_of(out)
    assert len(rows) == 10 and all(seconds(r["audios"][0]) <= 30.0 + 1e-3 for r in rows)
    assert all(Path(r["audios"][0]).is_absolute() for r in rows)
    readme = (out / "README.md").read_text()
    assert "At most 30 s" in readme and "evidence_not_placed: 4" in readme
    assert json.loads((out / "export.json").read_text())["heard"]["windows_written"] == 4
    # the hf dataset embeds the same windows and leaves no window files behind
    pytest.importorskip("datasets")
    hf = export(long_run, "hf", tmp_path / "hf", splits={"train": 1})
    assert hf.summary["heard"]["items_in_windows"] == 6 and not (tmp_path / "hf" / "audio").exists()
    assert not list((tmp_path / "hf").glob(".heard-*"))


# ---- paths ----------------------------------------------------------------------------------------

def test_a_copied_run_exports_audio_paths_inside_the_copy(long_run, tmp_path):
    copy = tmp_path / "elsewhere" / "run"
    shutil.copytree(long_run, copy)
    clip = read_jsonl(copy / "05-clips-a" / "records.jsonl")[0]
    assert not Path(clip["audio"]).is_absolute()  # as the clips stage writes it
    export(copy, "ms-swift", tmp_path / "out", splits={"train": 1}, window_s=60)
    audios = [r["audios"][0] for r in rows_of(tmp_path / "out")]
    assert audios and all(a.startswith(str(copy.resolve()) + "/") and Path(a).is_file() for a in audios)


def test_copy_into_a_relative_output_folder(run_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):  # exporting again into the same folder replaces the earlier export
        result = export(run_dir, "qwen2-audio", "rel/out", audio_paths="copy", splits={"train": 1})
        assert (tmp_path / "rel" / "out" / "export.json").is_file() and "audio" in result.summary["files"]
    shutil.move(tmp_path / "rel" / "out", tmp_path / "moved")
    for row in rows_of(tmp_path / "moved"):
        audio = row["conversation"][1]["content"][0]["audio_url"]  # after the system message
        assert audio.startswith("audio/") and (tmp_path / "moved" / audio).is_file()
    assert "ROOT_IMAGE_DIR" in (export(run_dir, "ms-swift", "swift", audio_paths="relative").out / "README.md").read_text()


def test_llamafactory_maps_only_the_columns_its_rows_carry(run_dir, tmp_path):
    for system, mapped in (("", False), ("Be brief.", True)):
        out = tmp_path / f"lf-{bool(system)}"
        export(run_dir, "llamafactory", out, system=system)
        info = json.loads((out / "dataset_info.json").read_text())
        for dataset in info.values():
            assert ("system" in dataset["columns"]) == mapped
            rows = read_jsonl(out / dataset["file_name"])
            assert all(column in row for row in rows for column in dataset["columns"].values())


# ---- evaluation hears the same windows -----------------------------------------------------------

def test_evaluate_hears_the_window_its_evidence_lies_in(long_run, tmp_path):
    from cpqa.evaluate import evaluate
    from cpqa.llm.testserver import OpenAITestServer

    def endpoint(server, model):
        return {"name": "openai", "model": model, "base_url": server.url, "api_key_env": None, "max_retries": 1}

    with OpenAITestServer(responder=lambda body: "Rating: 3" if body["model"] == "judge" else "Words.") as server:
        result = evaluate(long_run, tmp_path / "eval", model={"name": "cascade", "llm": endpoint(server, "answerer")},
                          judge=endpoint(server, "judge"))
        asked = [r.body["messages"][1]["content"] for r in server.received if r.body["model"] == "answerer"]
    s = result.summary
    assert s["n_items"] == 10 and s["long_audio"]["windowed_units"] == 6
    assert s["long_audio"]["dropped_items"] == {"evidence_not_placed": 4}
    clip = read_jsonl(long_run / "05-clips-a" / "records.jsonl")[0]
    first, last = clip["words"][0]["word"], clip["words"][-1]["word"]
    late = next(p for p in asked if "(late)" in p and last in p)  # the 45.8-s clip's late item: 15.8-45.8 s
    assert first not in late
