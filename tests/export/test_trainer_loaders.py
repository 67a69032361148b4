"""The exports loaded as a user would, with the trainers' own code in their own venvs (pinned
ms-swift and LLaMA-Factory, CPU torch 2.13.0; see trainers/venvs.py) and a tiny Qwen2-Audio built
here: every example loads, encodes and collates (and, in LLaMA-Factory, passes forward), single- and
multi-turn, with absolute, relative and copied audio paths; each trainer hears every second of the
audio an example names, never more than 30 s. Slow (`make test-slow`): the first run
installs the venvs."""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import pytest
import soundfile as sf
from exportgen import read_jsonl
from trainers.venvs import trainer_python

from cpqa.export import export

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

HERE = Path(__file__).resolve().parent / "trainers"
CASES = [("conversation", "absolute", "You are a helpful assistant."), ("first", "relative", ""),
         ("conversation", "copy", "")]


@pytest.fixture(scope="module")
def tiny(long_run, tmp_path_factory):
    pytest.importorskip("transformers")
    from cpqa.testing.tiny_models import build_tiny_qwen2_audio

    out = tmp_path_factory.mktemp("texts")
    export(long_run, "ms-swift", out / "all", splits={"train": 1})
    texts = [m["content"] for r in read_jsonl(out / "all" / "train.jsonl") for m in r["messages"]]
    return build_tiny_qwen2_audio(tmp_path_factory.mktemp("tiny-qwen2-audio"), texts)


def run(python: Path, script: str, *args, cwd: Path, env: dict | None = None) -> dict:
    done = subprocess.run([str(python), str(HERE / script), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}, timeout=1200)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def heard_s(audio: str | Path) -> float:
    info = sf.info(str(audio))
    return info.frames / info.samplerate


def check(result: dict, rows: list[dict], audios: list[Path], turns: list[int]) -> None:
    assert result["rows"] == len(rows) == 10
    for heard, audio in zip(result["heard_s"], audios):
        seconds = heard_s(audio)
        assert seconds <= 30.0 + 1e-3 and heard == pytest.approx(seconds, abs=0.02)  # all of it
    assert all(labelled >= 2 * n for labelled, n in zip(result["labelled"], turns))  # every answer is trained
    if "loss" in result:
        assert result["loss"] == result["loss"] and result["loss"] > 0


@pytest.mark.parametrize(("multi_turn", "paths", "system"), CASES)
def test_ms_swift_loads_encodes_collates_and_forwards(long_run, tiny, tmp_path, multi_turn, paths, system):
    python = trainer_python("ms-swift")
    out = tmp_path / "swift"
    export(long_run, "ms-swift", out, splits={"train": 1}, multi_turn=multi_turn, audio_paths=paths, system=system)
    rows = read_jsonl(out / "train.jsonl")
    # ms-swift opens a relative path against the working directory, else ROOT_IMAGE_DIR (the README says so)
    cwd, env = (out, None) if paths == "relative" else (tmp_path, {"ROOT_IMAGE_DIR": str(out)})
    result = run(python, "swift_load.py", out / "train.jsonl", tiny, cwd=cwd, env=env)
    check(result, rows, [out / r["audios"][0] for r in rows], [sum(m["role"] == "assistant" for m in r["messages"])
                                                                for r in rows])


@pytest.mark.parametrize(("multi_turn", "paths", "system"), CASES)
def test_llamafactory_loads_collates_and_forwards(long_run, tiny, tmp_path, multi_turn, paths, system):
    python = trainer_python("llamafactory")
    out = tmp_path / "lf"
    export(long_run, "llamafactory", out, splits={"train": 1}, multi_turn=multi_turn, audio_paths=paths,
           system=system)
    rows = read_jsonl(out / "train.jsonl")
    result = run(python, "llamafactory_load.py", out, "cpqa_train", tiny, tmp_path / "lf-out", cwd=tmp_path)
    check(result, rows, [out / r["audios"][0] for r in rows], [len(r["conversations"]) // 2 for r in rows])


def test_llamafactory_failed_on_the_old_system_mapping(long_run, tiny, tmp_path):
    """The export before the fix: `--system ''` rows without `system`, dataset_info still mapping it."""
    python = trainer_python("llamafactory")
    out = tmp_path / "lf"
    export(long_run, "llamafactory", out, splits={"train": 1}, system="")
    info = json.loads((out / "dataset_info.json").read_text())
    info["cpqa_train"]["columns"]["system"] = "system"
    (out / "dataset_info.json").write_text(json.dumps(info))
    done = subprocess.run([str(python), str(HERE / "llamafactory_load.py"), str(out), "cpqa_train", str(tiny),
                           str(tmp_path / "lf-out")], cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert done.returncode != 0 and "KeyError: 'system'" in done.stderr


def test_hf_datasets_loads_the_heard_windows(long_run, tmp_path):
    datasets = pytest.importorskip("datasets")
    export(long_run, "hf", tmp_path / "hf", splits={"train": 1})
    saved = datasets.load_from_disk(str(tmp_path / "hf" / "dataset"))["train"].cast_column(
        "audio", datasets.Audio(decode=False))
    parquet = datasets.load_dataset("parquet", data_files=str(tmp_path / "hf" / "data" / "train-*.parquet"),
                                    split="train").cast_column("audio", datasets.Audio(decode=False))
    for table in (saved, parquet):
        assert len(table) == 10
        for row in table:
            info = sf.info(io.BytesIO(row["audio"]["bytes"]))
            seconds = info.frames / info.samplerate
            assert seconds == pytest.approx(row["duration_s"], abs=1e-3) and seconds <= 30.0 + 1e-3
