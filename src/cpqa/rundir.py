"""The run directory: its layout, and reading it back. Executors write it; status, inspect,
reports, exports and the review app read it through these names.

    RUN/
      run.json                  recipe, input and versions of the last build
      logs/cpqa.log             the whole log of every command on this run
      NN-<stage>-<signature>/
        records.jsonl           outputs (append + skip existing ids)
        skipped.jsonl           inputs the stage failed on: Skip{id, reason, detail}
        excluded.jsonl          inputs a filter left out by design: Drop{id, reason, detail, item}
        done.ids                inputs finished (written after their outputs are durable)
        counters.jsonl          per-batch counter deltas (written with the batch, so a resume
                                neither loses nor double-counts them)
        fit_counters.json       counters computed by `fit()` over the whole input (replaced)
        stats.json              items_in, items_out, skipped and dropped reason → count, counters, wall time
        log                     this stage's log
        _SUCCESS                the stage finished every input
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import CPQAError
from .manifest import iter_jsonl

RUN_INFO = "run.json"
RECORDS = "records.jsonl"
SKIPPED = "skipped.jsonl"
EXCLUDED = "excluded.jsonl"
DONE = "done.ids"
COUNTERS = "counters.jsonl"
FIT_COUNTERS = "fit_counters.json"
STATS = "stats.json"
SUCCESS = "_SUCCESS"


def relative_to_run(path: str | Path, run_dir: str | Path) -> str:
    """How a record names a file of its run: a POSIX path relative to the run directory, so a run
    that is moved or copied still finds its files. A file outside the run keeps its absolute path."""
    path, root = Path(path).resolve(), Path(run_dir).resolve()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def resolve_path(path: str | Path, base: str | Path) -> Path:
    """A path a record or file gives, made absolute: a relative one is relative to `base` (the run
    directory for a run's records, the file's folder for a file)."""
    p = Path(path).expanduser()
    return (p if p.is_absolute() else Path(base) / p).resolve()


def read_run_info(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / RUN_INFO
    if not path.exists():
        raise CPQAError(f"{run_dir} is not a cpqa run directory (no run.json). Create one with: cpqa build INPUT -o {run_dir}")
    return json.loads(path.read_text())


def stage_dirs(run_dir: str | Path) -> list[tuple[str, Path]]:
    """(name, directory) of each stage of the run's last build, in order."""
    run_dir = Path(run_dir)
    return [(s["name"], run_dir / s["dir"]) for s in read_run_info(run_dir)["stages"]]


def stage_dir(run_dir: str | Path, stage: str) -> Path:
    dirs = dict(stage_dirs(run_dir))
    if stage not in dirs:
        raise CPQAError(f"run {run_dir} has no stage '{stage}'. Stages: {', '.join(dirs)}")
    return dirs[stage]


def stage_stats(stage_dir: Path) -> dict[str, Any]:
    path = stage_dir / STATS
    return json.loads(path.read_text()) if path.exists() else {}


def count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def iter_stage_records(run_dir: str | Path, stage: str) -> Iterator[dict[str, Any]]:
    """The records a stage wrote, in the docs/design.md §2 schema."""
    yield from iter_stage_file(run_dir, stage, RECORDS)


def iter_stage_file(run_dir: str | Path, stage: str, name: str) -> Iterator[dict[str, Any]]:
    """The JSON lines of one file of a stage (RECORDS, SKIPPED, EXCLUDED)."""
    d = stage_dir(run_dir, stage)
    if not d.exists():
        raise CPQAError(f"stage '{stage}' of {run_dir} has not run yet")
    yield from iter_jsonl(d / name)
