"""Issue acceptance on real models (the `local` recipe): bad input is skipped with reasons while
good files are transcribed; a rerun does no work and is fast; a changed transcribe parameter
reruns transcribe only."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import soxr

from cpqa.testing.tables import stage_states

UNTIL = ("--until", "transcribe")  # the spine: later stages have their own tests
RAVDESS_CLIP = "ravdess/wav/03-01-05-01-01-01-10.wav"  # angry, "Kids are talking by the door"


def cpqa(*args, check=True):
    return subprocess.run([sys.executable, "-m", "cpqa.cli", *map(str, args)], capture_output=True, text=True,
                          check=check)


@pytest.fixture
def bad_input_folder(tmp_path, real_data):
    folder = tmp_path / "mixed"
    folder.mkdir()
    speech, rate = sf.read(real_data / RAVDESS_CLIP, dtype="float32")
    stereo_44k = soxr.resample(speech, rate, 44100)
    sf.write(folder / "stereo_44k.wav", np.stack([stereo_44k, 0.8 * stereo_44k], axis=1), 44100, subtype="PCM_16")
    sf.write(folder / "float32.wav", soxr.resample(speech, rate, 16000), 16000, subtype="FLOAT")
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.wav").write_text("this is a text file, not audio\n" * 20)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + np.random.default_rng(0).bytes(3000))
    sf.write(folder / "silent.wav", np.zeros(16000 * 4, dtype=np.float32), 16000, subtype="PCM_16")
    return folder


@pytest.mark.timeout(600)
def test_bad_input_rerun_and_signatures_with_local_recipe(tmp_path, bad_input_folder):
    run = tmp_path / "run"
    started = time.perf_counter()
    first = cpqa("build", bad_input_folder, "-o", run, *UNTIL)
    first_s = time.perf_counter() - started
    assert "3 item(s) skipped (failed)" in first.stderr   # the silent file is a drop, not a failure

    status = json.loads(cpqa("status", run, "--json").stdout)
    recordings = status["recordings"]
    reasons = {rid: (r["state"], r.get("reason")) for rid, r in recordings.items() if r["state"] != "ok"}
    assert reasons == {"empty": ("skipped", "empty_file"), "notes": ("skipped", "undecodable"),
                       "corrupt": ("skipped", "undecodable"), "silent": ("dropped", "no_speech")}
    assert {rid for rid, r in recordings.items() if r["state"] == "ok" and r["stage"] == "transcribe"} == {
        "stereo_44k", "float32"}
    left_out = {s["name"]: (s["skipped"], s["dropped"]) for s in status["stages"]}
    assert left_out["ingest"] == ({"empty_file": 1, "undecodable": 2}, {})
    assert left_out["segment"] == ({}, {"no_speech": 1})

    texts = [json.loads(line)["text"].lower() for line in cpqa("inspect", run, "-s", "transcribe").stdout.splitlines()]
    assert sum("door" in t for t in texts) == 2, texts

    started = time.perf_counter()
    again = cpqa("build", bad_input_folder, "-o", run, *UNTIL)
    rerun_s = time.perf_counter() - started
    assert "Nothing to do" in again.stdout
    assert rerun_s < 0.2 * first_s, f"rerun {rerun_s:.1f}s vs first {first_s:.1f}s"

    changed = cpqa("build", bad_input_folder, "-o", run, *UNTIL, "--set", "transcribe.backend.beam_size=1")
    assert stage_states(changed.stdout) == {"ingest": "already done", "diarize": "already done",
                                            "segment": "already done", "transcribe": "done"}
