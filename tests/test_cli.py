"""The CLI end to end on the dummy recipe: build, status, inspect, list, overrides, errors."""

import json

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from cpqa.cli import app
from cpqa.records import Recording, Segment
from cpqa.testing.audio import write_bursts
from cpqa.testing.tables import stage_states

runner = CliRunner()


@pytest.fixture
def audio_dir(tmp_path):
    for i in range(3):
        write_bursts(tmp_path / "audio" / f"a{i}.wav", duration_s=8 + i, sample_rate=44100, seed=i)
    (tmp_path / "audio" / "empty.wav").write_bytes(b"")
    return tmp_path / "audio"


def cli(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result


def test_build_status_inspect_roundtrip(tmp_path, audio_dir):
    run = tmp_path / "run"
    result = cli("build", audio_dir, "-o", run, "--recipe", "dummy")
    assert result.exit_code == 0, result.output
    assert "1 item(s) skipped" in result.output
    assert "transcribe" in result.output

    status = json.loads(cli("status", run, "--json").stdout)
    stages = {s["name"]: s for s in status["stages"]}
    assert list(stages) == ["ingest", "segment", "transcribe"]
    assert all(s["state"] == "done" for s in stages.values())
    assert stages["ingest"]["items_in"] == 4 and stages["ingest"]["items_out"] == 3
    assert stages["ingest"]["skipped"] == {"empty_file": 1}
    assert status["recordings"]["empty"]["state"] == "skipped"
    assert {status["recordings"][f"a{i}"]["stage"] for i in range(3)} == {"transcribe"}

    lines = cli("inspect", run, "--stage", "transcribe").stdout.splitlines()
    segments = [Segment.model_validate_json(line) for line in lines]
    assert len(segments) == stages["transcribe"]["items_out"]
    assert all(s.words and s.text for s in segments)
    recordings = [Recording.model_validate_json(line) for line in cli("inspect", run, "-s", "ingest").stdout.splitlines()]
    assert {r.id for r in recordings} == {"a0", "a1", "a2"}
    skipped = [json.loads(line) for line in cli("inspect", run, "-s", "ingest", "--skipped").stdout.splitlines()]
    assert skipped[0]["id"] == "empty" and skipped[0]["reason"] == "empty_file"

    again = cli("build", audio_dir, "-o", run, "--recipe", "dummy")
    assert again.exit_code == 0 and "Nothing to do" in again.output


def test_a_clean_build_with_drops_prints_no_warning(tmp_path, audio_dir):
    (audio_dir / "empty.wav").unlink()
    sf.write(audio_dir / "silent.wav", np.zeros(16000 * 3, dtype=np.float32), 16000, subtype="PCM_16")
    result = cli("build", audio_dir, "-o", tmp_path / "run", "--recipe", "dummy")
    assert result.exit_code == 0 and "warning" not in result.output.lower(), result.output
    status = json.loads(cli("status", tmp_path / "run", "--json").stdout)
    assert status["recordings"]["silent"] == {"state": "dropped", "stage": "segment", "reason": "no_speech",
                                              "detail": status["recordings"]["silent"]["detail"]}
    assert {s["name"]: s["dropped"] for s in status["stages"]}["segment"] == {"no_speech": 1}
    dropped = [json.loads(line) for line in cli("inspect", tmp_path / "run", "-s", "segment", "--dropped").stdout.splitlines()]
    assert [(d["id"], d["reason"]) for d in dropped] == [("silent", "no_speech")]


def test_override_reruns_changed_stage_only(tmp_path, audio_dir):
    run = tmp_path / "run"
    assert cli("build", audio_dir, "-o", run, "--recipe", "dummy").exit_code == 0
    result = cli("build", audio_dir, "-o", run, "--recipe", "dummy", "--set", "transcribe.backend.word_s=0.25")
    assert result.exit_code == 0, result.output
    assert stage_states(result.stdout) == {"ingest": "already done", "segment": "already done", "transcribe": "done"}
    assert len(list(run.glob("02-transcribe-*"))) == 2


def test_until_stops_early(tmp_path, audio_dir):
    run = tmp_path / "run"
    assert cli("build", audio_dir, "-o", run, "--recipe", "dummy", "--until", "segment").exit_code == 0
    assert [s["name"] for s in json.loads(cli("status", run, "--json").stdout)["stages"]] == ["ingest", "segment"]


@pytest.mark.parametrize("args, message", [
    (["--set", "segment.no_such_param=1"], "no_such_param"),
    (["--set", "nostage.x=1"], "no stage 'nostage'"),
    (["--set", "transcribe.backend.name=nope"], "unknown asr backend 'nope'"),
    (["--recipe", "missing-recipe"], "neither a packaged recipe"),
    (["--until", "qa-nope"], "no such stage"),
])
def test_bad_recipe_is_a_clear_error_before_any_work(tmp_path, audio_dir, args, message):
    run = tmp_path / "run"
    result = cli("build", audio_dir, "-o", run, "--recipe", "dummy", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert not list(run.glob("*-ingest-*"))


def test_missing_input_is_a_clear_error(tmp_path):
    result = cli("build", tmp_path / "nothing", "-o", tmp_path / "run", "--recipe", "dummy")
    assert result.exit_code == 2 and "does not exist" in result.output


def test_status_of_a_non_run_is_a_clear_error(tmp_path):
    result = cli("status", tmp_path)
    assert result.exit_code == 2 and "not a cpqa run directory" in result.output


def test_list_commands(tmp_path):
    stages = cli("list", "stages")
    assert stages.exit_code == 0 and "transcribe" in stages.stdout
    backends = cli("list", "backends").stdout
    assert "faster-whisper" in backends and "silero" in backends
    recipes = cli("list", "recipes").stdout
    assert "local" in recipes and "dummy" in recipes and "paper" in recipes
