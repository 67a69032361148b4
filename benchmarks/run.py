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
    from cpqa.status import iter_stage_records

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


@bench("llm")
def llm_throughput(work: Path) -> dict:
    """Generation throughput against a local endpoint with fixed latency, as a ratio of the
    concurrency/latency bound (target ≥ 0.9)."""
    from cpqa.llm.bench import measure_throughput

    return measure_throughput(concurrency=16, latency_s=0.1, rounds=20).as_dict()


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
