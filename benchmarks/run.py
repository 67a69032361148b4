"""`make bench`: benchmarks separate from the tests, each printing ratios measured in one run.

Run all with `python -m benchmarks.run`, or some with `python -m benchmarks.run asr llm`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_AUDIO = ROOT / "examples" / "ami_excerpt"
SHARED_AMI_CLIPS = ROOT.parent / "shared" / "data" / "real" / "ami_meetings" / "meeting_clips_30s"
BENCHES: dict[str, Callable[[Path], dict]] = {}


def bench(name: str):
    def register(fn):
        BENCHES[name] = fn
        return fn
    return register


def timed_build(input_path: Path, run: Path, *args: str) -> float:
    """Wall seconds of one `cpqa build` in a fresh process (start-up included)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cpqa.cli", "build", str(input_path), "-o", str(run), *args],
                   check=True, capture_output=True)
    return time.perf_counter() - started


def audio_seconds(run: Path) -> float:
    from cpqa.rundir import iter_stage_records

    return sum(r["duration"] for r in iter_stage_records(run, "ingest"))


@bench("asr")
def asr_throughput(work: Path) -> dict:
    """Audio-hours per core-hour of the `local` recipe up to transcription (embedded Whisper base)."""
    run = work / "asr"
    wall_s = timed_build(DEMO_AUDIO, run, "--until", "transcribe")
    audio_s = audio_seconds(run)
    cores = os.cpu_count() or 1
    return {"audio_s": round(audio_s, 1), "wall_s": round(wall_s, 1), "cores": cores,
            "audio_hours_per_core_hour": round(audio_s / (wall_s * cores), 2),
            "real_time_factor": round(wall_s / audio_s, 3)}


@bench("labels")
def labels_vs_asr(work: Path) -> dict:
    """Wall time of (transcribe + annotate) / transcribe alone on the same audio (target ≤ 1.3):
    the probes reuse the Whisper encoder, so labelling should cost little beyond ASR. The diarize
    stage (speaker turns) is given beside it. On the 60-s demo excerpt model loading weighs
    heavily; the ten 30-s AMI clips of the shared data (when present) show a longer input."""
    from cpqa.status import run_status

    inputs = {"excerpt_60s": DEMO_AUDIO, "ami_clips_300s": SHARED_AMI_CLIPS}
    out = {}
    for name, input_path in inputs.items():
        if not input_path.exists():
            continue
        run = work / f"labels-{name}"
        timed_build(input_path, run, "--until", "annotate")
        wall = {s["name"]: s["wall_s"] for s in run_status(run)["stages"]}
        out[name] = {"transcribe_s": wall["transcribe"], "annotate_s": wall["annotate"], "diarize_s": wall["diarize"],
                     "ratio": round((wall["transcribe"] + wall["annotate"]) / wall["transcribe"], 3),
                     "ratio_with_diarize": round(sum(wall[k] for k in ("transcribe", "annotate", "diarize"))
                                                 / wall["transcribe"], 3)}
    return out


@bench("llm")
def llm_throughput(work: Path) -> dict:
    """Generation throughput against a local endpoint with fixed latency, as a ratio of the
    concurrency/latency bound (target ≥ 0.9)."""
    from cpqa.llm.bench import measure_throughput

    return measure_throughput(concurrency=16, latency_s=0.5, rounds=8).as_dict()


@bench("qa")
def qa_speed(work: Path) -> dict:
    """The QA stage's tokens/s against llama.cpp's own for the same model (target ≥ 0.8; see
    `benchmarks/qa_speed.py`)."""
    from benchmarks.qa_speed import measure

    return measure(work)


def _peak_rss_mb(input_path: Path, run: Path, recipe: str, until: str | None = None) -> float:
    """Peak resident memory (MB) of one build in a fresh process."""
    code = ("import resource, sys; from cpqa.run import build; "
            f"build({str(input_path)!r}, {str(run)!r}, recipe={recipe!r}, until={until!r}); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return int(out.split()[-1]) / 1024


@bench("memory")
def memory_scaling(work: Path) -> dict:
    """Peak RSS for 10x the input vs 1x (target ≤ 1.2): streaming keeps memory flat."""
    import numpy as np
    import soundfile as sf

    speech, rate = sf.read(next(DEMO_AUDIO.glob("*.flac")), dtype="int16")
    one, ten = work / "mem1", work / "mem10"
    one.mkdir()
    ten.mkdir()
    sf.write(one / "a.flac", speech, rate)
    sf.write(ten / "a.flac", np.tile(speech, 10), rate)  # one recording 10x as long
    for i in range(9):
        sf.write(ten / f"copy{i}.flac", speech, rate)  # and 10x as many recordings
    rss_1 = _peak_rss_mb(one, work / "mem-run1", "local", "segment")
    rss_10 = _peak_rss_mb(ten, work / "mem-run10", "local", "segment")
    return {"peak_rss_1x_mb": round(rss_1, 1), "peak_rss_10x_mb": round(rss_10, 1), "ratio": round(rss_10 / rss_1, 3)}


@bench("ray")
def ray_vs_local(work: Path) -> dict:
    """Wall time of the Ray executor vs the local one on the same input (dummy recipe: executor
    overhead, not model speed)."""
    local_s = timed_build(DEMO_AUDIO, work / "ray-local", "--recipe", "dummy")
    ray_s = timed_build(DEMO_AUDIO, work / "ray-ray", "--recipe", "dummy", "--executor", "ray")
    return {"local_s": round(local_s, 1), "ray_s": round(ray_s, 1), "ratio_ray_over_local": round(ray_s / local_s, 2)}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {list(BENCHES)}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="cpqa-bench-") as tmp:
        for name in names:
            result = BENCHES[name](Path(tmp))
            print(f"{name}: {json.dumps(result)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
