"""Resume under violence: `cpqa build` killed with SIGKILL at many moments, resumed each time,
ends with exactly the records of an uninterrupted run (no loss, no duplicates, no partial files)."""

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cpqa.testing.audio import write_bursts

STAGES = ("ingest", "segment", "transcribe")
SLOW_DUMMY = ["--set", "segment.backend.delay_s=0.05", "--set", "transcribe.backend.delay_s=0.02",
              "--set", "ingest.batch_size=2", "--set", "segment.batch_size=2", "--set", "transcribe.batch_size=4"]


def build_cmd(input_dir: Path, run: Path, recipe: str, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "cpqa.cli", "build", str(input_dir), "-o", str(run), "--recipe", recipe, *extra]


def final_records(run: Path) -> dict[str, list[dict]]:
    """Each stage's records, sorted, with run-specific paths made relative."""
    info = json.loads((run / "run.json").read_text())
    out = {}
    for stage in info["stages"]:
        d = run / stage["dir"]
        assert (d / "_SUCCESS").exists(), f"{stage['name']} did not finish"
        lines = (d / "records.jsonl").read_text().replace(str(run), "RUN").splitlines()
        ids = [json.loads(line)["id"] for line in lines]
        assert len(ids) == len(set(ids)), f"duplicates in {stage['name']}"
        out[stage["name"]] = sorted((json.loads(line) for line in lines), key=lambda r: r["id"])
    return out


def stage_in_progress(run: Path) -> str | None:
    for name in STAGES:
        dirs = list(run.glob(f"*-{name}-*"))
        if not dirs or not (dirs[0] / "_SUCCESS").exists():
            return name
    return None


def timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - started


def kill_and_resume(cmd: list[str], run: Path, min_kills: int, seed: int, startup_s: float,
                    work_s: float) -> tuple[int, set[str]]:
    """Kill each process a random moment after its start-up, so the kills walk through the
    whole build (each resumed process gets a little further) whatever the machine's load."""
    rng = random.Random(seed)
    kills, hit = 0, set()
    for _ in range(80):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(startup_s * rng.uniform(0.5, 1.0) + rng.uniform(0.0, work_s / min_kills))
        if proc.poll() is None:
            stage = stage_in_progress(run) if run.exists() else "ingest"
            proc.kill()
            proc.wait()
            kills += 1
            hit.add(stage or "end")
        else:
            assert proc.returncode == 0
            if kills >= min_kills:
                break
            # finished before we could kill it: start over on a fresh run to get more kill points
            assert final_records(run)
            subprocess.run(["rm", "-rf", str(run)], check=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return kills, hit


@pytest.mark.timeout(900)
def test_sigkill_at_random_moments_then_resume_matches_uninterrupted_run(tmp_path):
    audio = tmp_path / "audio"
    for i in range(24):
        write_bursts(audio / f"rec{i:02d}.wav", duration_s=12 + i % 5, sample_rate=44100, seed=i)
    reference = tmp_path / "reference"
    total_s = timed(build_cmd(audio, reference, "dummy", SLOW_DUMMY))
    startup_s = timed(build_cmd(audio, reference, "dummy", SLOW_DUMMY))  # a finished run: start-up only
    expected = final_records(reference)
    assert len(expected["transcribe"]) > 100

    run = tmp_path / "killed"
    kills, hit = kill_and_resume(build_cmd(audio, run, "dummy", SLOW_DUMMY), run, min_kills=10, seed=7,
                                 startup_s=startup_s, work_s=max(total_s - startup_s, 1.0))
    assert kills >= 10
    assert {"ingest", "segment", "transcribe"} <= hit, f"kills landed only in {hit}"
    assert final_records(run) == expected
    leftovers = [p for p in run.rglob("*") if ".tmp" in p.name]
    assert not leftovers, f"partial files left visible: {leftovers}"


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_sigkill_resume_with_the_local_recipe(tmp_path, real_data):
    """The same violence on real models (up to clips): 10+ kills, then identical records."""
    import soundfile as sf
    import soxr

    audio = tmp_path / "audio"
    audio.mkdir()
    for path in sorted((real_data / "ravdess" / "wav").glob("*.wav"))[:6]:
        samples, rate = sf.read(path, dtype="float32")
        sf.write(audio / path.name, soxr.resample(samples, rate, 16000), 16000)
    args = ["--until", "clips", "--set", "transcribe.batch_size=1", "--set", "annotate.batch_size=1"]
    reference = tmp_path / "reference"
    total_s = timed(build_cmd(audio, reference, "local", args))
    startup_s = timed(build_cmd(audio, reference, "local", args))
    expected = final_records(reference)
    run = tmp_path / "killed"
    kills, _ = kill_and_resume(build_cmd(audio, run, "local", args), run, min_kills=10, seed=3,
                               startup_s=startup_s, work_s=max(total_s - startup_s, 1.0))
    assert kills >= 10
    assert final_records(run) == expected
