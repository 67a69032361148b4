"""`cpqa.export` on a synthetic run of real speech (exportgen): every format loads with its
consumer's loader where it installs here, and otherwise has the shape its documentation gives (each
test names the fields it checks); every referenced audio file exists and decodes; splits share no
recording and no speaker; the explicit variant has the labels in the prompt."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf
from exportgen import read_jsonl
from typer.testing import CliRunner

from cpqa.errors import CPQAError
from cpqa.export import export, parse_splits
from cpqa.export.conversation import LABELS_TAG
from cpqa.export.splits import assign_splits, recording_groups

pytestmark = pytest.mark.timeout(120)


def decodes(path: str | Path) -> None:
    samples, rate = sf.read(path)
    assert rate == 16000 and len(samples) > 1600


def split_files(out: Path) -> dict[str, list[dict]]:
    return {p.stem: read_jsonl(p) for p in sorted(out.glob("*.jsonl"))}


# ---- splits ---------------------------------------------------------------------------------------

def test_union_find_groups_recordings_that_share_a_speaker():
    groups = recording_groups([("r1", ["s1"]), ("r2", ["s2"]), ("r3", ["s1", "s3"]), ("r4", ["s3"]), ("r5", [])])
    assert groups == {"r1": "r1", "r3": "r1", "r4": "r1", "r2": "r2", "r5": "r5"}
    assert recording_groups([("r1", ["s1"]), ("r2", ["s1"])], by_speaker=False) == {"r1": "r1", "r2": "r2"}


def test_assignment_is_deterministic_and_close_to_the_shares():
    weights = {f"r{i:03d}": 1 + i % 4 for i in range(300)}
    groups = {r: r for r in weights}
    ratios = {"train": 0.8, "dev": 0.1, "test": 0.1}
    split_of = assign_splits(weights, groups, ratios)
    assert split_of == assign_splits(dict(reversed(list(weights.items()))), groups, ratios)
    total = sum(weights.values())
    for name, ratio in ratios.items():
        share = sum(n for r, n in weights.items() if split_of[r] == name) / total
        assert abs(share - ratio) < 0.02
    assert assign_splits(weights, groups, ratios, seed="other") != split_of


def test_splits_share_no_recording_and_no_speaker(run_dir, tmp_path):
    result = export(run_dir, "jsonl", tmp_path / "out")
    splits = split_files(tmp_path / "out")
    assert set(splits) == {"train", "dev", "test"}
    recordings = {name: {r["metadata"]["recording_id"] for r in rows} for name, rows in splits.items()}
    speakers = {name: {s for r in rows for s in r["metadata"]["speakers"]} for name, rows in splits.items()}
    names = list(splits)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not recordings[a] & recordings[b], (a, b)
            assert not speakers[a] & speakers[b], (a, b)
    # the linked recordings stayed together: rec-a/rec-b share actor 09; rec-c/rec-d share actor 11
    split_of = {r["metadata"]["recording_id"]: name for name, rows in splits.items() for r in rows}
    assert split_of["rec-a"] == split_of["rec-b"] and split_of["rec-c"] == split_of["rec-d"]
    summary = json.loads((tmp_path / "out" / "export.json").read_text())
    assert summary == result.summary
    assert {n: s["items"] for n, s in summary["splits"].items()} == {n: len(rows) for n, rows in splits.items()}
    assert summary["skipped"] == {"filtered": 1} and summary["qa_stage"] == "qa"
    # a second export of the same run gives the same splits; another seed other splits
    export(run_dir, "jsonl", tmp_path / "again")
    assert split_files(tmp_path / "again") == splits


# ---- formats --------------------------------------------------------------------------------------

def test_hf_loads_with_datasets_and_decodes_with_soundfile(run_dir, tmp_path):
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "hf"
    result = export(run_dir, "hf", out, explicit=True)
    on_disk = datasets.load_from_disk(str(out / "dataset"))
    parquet = datasets.load_dataset("parquet", data_files={s: str(out / "data" / f"{s}-*.parquet") for s in on_disk},
                                    cache_dir=str(tmp_path / "cache"))
    assert set(on_disk) == set(parquet) == set(result.summary["splits"])
    for ds in (on_disk, parquet):
        for split, rows in ds.items():
            assert rows.num_rows == result.summary["splits"][split]["items"]
            assert isinstance(rows.features["audio"], datasets.Audio) and rows.features["audio"].sampling_rate == 16000
            assert {"id", "clip_id", "recording_id", "speakers", "type", "question", "answer", "turns", "labels",
                    "system", "duration_s"} <= set(rows.column_names)
            # datasets>=4 decodes audio with torchcodec only: read the embedded bytes with soundfile
            raw = rows.cast_column("audio", datasets.Audio(decode=False))
            for row in raw:
                samples, rate = sf.read(io.BytesIO(row["audio"]["bytes"]))
                assert rate == 16000 and abs(len(samples) / rate - row["duration_s"]) < 0.01
                assert row["question"].startswith(LABELS_TAG) and row["labels"]["emotion"]
                assert row["turns"][0] == {"question": row["question"], "answer": row["answer"]}
    multi = next(r for r in on_disk["train"].remove_columns("audio") if r["type"] == "DG")
    # the Parquet features are in the form datasets<4 reads too (lists as [feature], not List)
    import pyarrow.parquet as pq

    metadata = pq.read_schema(next((out / "data").glob("train-*.parquet"))).metadata[b"huggingface"].decode()
    assert '"List"' not in metadata and '"Audio"' in metadata
    assert len(multi["turns"]) == 2 and multi["labels"]["num_speakers"] >= 1


def test_ms_swift_messages_with_audio_tags(run_dir, tmp_path):
    """Checked against ms-swift's "Custom dataset" page (standard format, Multimodal section):
    `messages` is a list of {role, content} with role system/user/assistant (system optional and
    first), `<audio>` marks where each audio goes, `audios` lists the paths (absolute preferred),
    one per `<audio>` tag."""
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "swift"
    export(run_dir, "ms-swift", out)
    for split, rows in split_files(out).items():
        loaded = datasets.load_dataset("json", data_files=str(out / f"{split}.jsonl"), split="train",
                                       cache_dir=str(tmp_path / "cache"))
        assert loaded.num_rows == len(rows) and set(loaded.column_names) == {"messages", "audios"}
        for row in rows:
            roles = [m["role"] for m in row["messages"]]
            assert roles[0] == "system" and roles[1:] == ["user", "assistant"] * ((len(roles) - 1) // 2)
            assert all(isinstance(m["content"], str) for m in row["messages"])
            tags = sum(m["content"].count("<audio>") for m in row["messages"])
            assert tags == len(row["audios"]) == 1 and row["messages"][1]["content"].startswith("<audio>")
            assert Path(row["audios"][0]).is_absolute()
            decodes(row["audios"][0])
            assert LABELS_TAG not in row["messages"][1]["content"]


def test_llamafactory_sharegpt_and_dataset_info(run_dir, tmp_path):
    """Checked against LLaMA-Factory's data/README (sharegpt format, Multimodal Audio Dataset):
    `conversations` of {from, value} with human at odd and gpt at even positions, optional `system`,
    `audios` paths with as many `<audio>` tags in the conversations; the dataset_info.json entry has
    file_name, formatting "sharegpt" and columns messages/system/audios. Relative media paths are
    resolved against the dataset folder (LLaMA-Factory's media_dir defaults to dataset_dir)."""
    out = tmp_path / "lf"
    export(run_dir, "llamafactory", out, audio_paths="relative", multi_turn="first")
    info = json.loads((out / "dataset_info.json").read_text())
    splits = split_files(out)
    assert set(info) == {f"cpqa_{s}" for s in splits}
    for split, rows in splits.items():
        entry = info[f"cpqa_{split}"]
        assert entry["formatting"] == "sharegpt" and (out / entry["file_name"]).is_file()
        assert entry["columns"] == {"messages": "conversations", "system": "system", "audios": "audios"}
        for row in rows:
            sides = [m["from"] for m in row["conversations"]]
            assert sides == ["human", "gpt"]  # multi_turn="first": one turn each
            assert sum(m["value"].count("<audio>") for m in row["conversations"]) == len(row["audios"]) == 1
            assert not Path(row["audios"][0]).is_absolute()
            decodes(out / row["audios"][0])
            assert row["system"] == "You are a helpful assistant."


def test_qwen2_audio_chat_format(run_dir, tmp_path):
    """Checked against the Qwen2-Audio-7B-Instruct model card's chat format: a list of {role,
    content}; system and assistant content is a string; user content is a list of parts
    {"type": "audio", "audio_url": ...} and {"type": "text", "text": ...}; the audio opens the first
    user turn and later user turns are text only."""
    out = tmp_path / "qwen"
    export(run_dir, "qwen2-audio", out, audio_paths="copy", system=None, explicit=True)
    rows = [r for rows in split_files(out).values() for r in rows]
    assert any(len(r["conversation"]) == 4 for r in rows)
    for row in rows:
        conv = row["conversation"]
        assert [m["role"] for m in conv] == ["user", "assistant"] * (len(conv) // 2)
        first, *later = [m for m in conv if m["role"] == "user"]
        assert [p["type"] for p in first["content"]] == ["audio", "text"]
        assert first["content"][1]["text"].startswith(LABELS_TAG)
        assert all([p["type"] for p in m["content"]] == ["text"] for m in later)
        assert all(LABELS_TAG not in m["content"][0]["text"] for m in later)
        assert all(isinstance(m["content"], str) for m in conv if m["role"] == "assistant")
        audio = first["content"][0]["audio_url"]
        assert audio.startswith("audio/")
        decodes(out / audio)
    # copied audio makes the export stand alone
    moved = tmp_path / "moved"
    shutil.move(out, moved)
    decodes(moved / rows[0]["conversation"][0]["content"][0]["audio_url"])


def test_jsonl_records_are_what_evaluate_reads_and_export_again(run_dir, tmp_path):
    from cpqa.qa_source import load_items

    out = tmp_path / "plain"
    export(run_dir, "jsonl", out, audio_paths="relative")
    first = split_files(out)
    for split in first:
        items = load_items(out / f"{split}.jsonl")
        assert all(Path(i.audio).is_file() for i in items)
        decodes(items[0].audio)
    # re-exported from the file alone: recordings, speakers and labels travel in the metadata
    again = export(out / "train.jsonl", "jsonl", tmp_path / "again", splits={"train": 1})
    rows = read_jsonl(tmp_path / "again" / "train.jsonl")
    assert again.summary["source_kind"] == "file" and len(rows) == len(first["train"])
    by_id = {r["id"]: r for r in first["train"]}
    for row in rows:
        old = by_id[row["id"]]["metadata"]
        assert {k: row["metadata"][k] for k in ("recording_id", "speakers", "labels")} == \
               {k: old[k] for k in ("recording_id", "speakers", "labels")}


def test_failed_items_missing_audio_and_include_failed(run_dir, tmp_path):
    qa = read_jsonl(next(run_dir.glob("*-qa-*")) / "records.jsonl")
    ids = {r["id"] for rows in split_files(export(run_dir, "jsonl", tmp_path / "a").out).values() for r in rows}
    assert "rec-e-clip0000-de" not in ids and len(ids) == len(qa) - 1
    ids = {r["id"] for rows in split_files(export(run_dir, "jsonl", tmp_path / "b", include_failed=True).out).values()
           for r in rows}
    assert len(ids) == len(qa)
    # a QA file whose audio is gone: the item is left out with its reason
    rows = read_jsonl(tmp_path / "a" / "train.jsonl")
    rows[0]["metadata"]["audio"] = str(tmp_path / "gone.flac")
    (tmp_path / "broken.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = export(tmp_path / "broken.jsonl", "ms-swift", tmp_path / "c")
    assert result.summary["skipped"] == {"audio_missing": 1}


def test_user_errors(run_dir, tmp_path):
    with pytest.raises(CPQAError, match="unknown export format"):
        export(run_dir, "csv", tmp_path / "x")
    with pytest.raises(CPQAError, match="export options"):
        export(run_dir, "jsonl", tmp_path / "x", splits={"train": -1})
    with pytest.raises(CPQAError, match="export options"):
        export(run_dir, "jsonl", tmp_path / "x", colour="blue")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("precious")
    with pytest.raises(CPQAError, match="not an earlier export"):
        export(run_dir, "jsonl", tmp_path / "busy")
    with pytest.raises(CPQAError, match="neither"):
        export(tmp_path / "nothing", "jsonl", tmp_path / "y")
    assert parse_splits("0.9,0.1") == {"train": 0.9, "dev": 0.1}
    assert parse_splits("train=0.7, test=0.3") == {"train": 0.7, "test": 0.3}
    with pytest.raises(CPQAError, match="--splits"):
        parse_splits("train=most")


def test_cli_export(run_dir, tmp_path):
    import typer

    from cpqa.cli.export import export_cmd

    app = typer.Typer()
    app.command("export")(export_cmd)
    app.command("other")(lambda: None)  # two commands, so typer keeps the command name as it will be mounted
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["export", str(run_dir), "--format", "ms-swift", "-o", str(out), "--explicit",
                                      "--splits", "train=0.5,test=0.5", "--audio-paths", "copy"])
    assert result.exit_code == 0, result.output
    assert set(split_files(out)) == {"train", "test"} and (out / "audio").is_dir()
    assert "train" in result.output and "items" in result.output
    bad = CliRunner().invoke(app, ["export", str(run_dir), "--format", "csv", "-o", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "unknown export format" in bad.output


def test_recording_local_speaker_ids_warn_and_split_by_recording(run_dir, tmp_path, caplog):
    """Diarization labels (SPEAKER_00 in every recording) would join every recording into one group."""
    export(run_dir, "jsonl", tmp_path / "plain", splits={"train": 1})
    rows = read_jsonl(tmp_path / "plain" / "train.jsonl")
    for row in rows:
        row["metadata"]["speakers"] = ["SPEAKER_00"]
    (tmp_path / "diarized.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level("WARNING", logger="cpqa.export"):
        linked = export(tmp_path / "diarized.jsonl", "jsonl", tmp_path / "linked")
    assert list(linked.summary["splits"]) == ["train"] and "split_by_speaker=False" in caplog.text
    apart = export(tmp_path / "diarized.jsonl", "jsonl", tmp_path / "apart", split_by_speaker=False)
    assert set(apart.summary["splits"]) == {"train", "dev", "test"}


def test_hf_without_datasets_names_the_export_extra(run_dir, tmp_path, monkeypatch):
    import sys

    from cpqa.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(MissingExtraError, match=r"cpqa\[export\]"):
        export(run_dir, "hf", tmp_path / "hf")
    assert not (tmp_path / "hf").exists()
