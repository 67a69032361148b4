"""What every executor shares: the stage directories of a build and their signatures, the durable
writer of one stage directory, and the build loop around a stage. An executor decides only how a
stage's batches are processed (`Executor.process`); the layout is `cpqa.rundir`'s.

The signature hashes the stage type, its version, its semantic config, the digest of the data files
it reads (`Stage.data_digest`, where it has one) and the upstream signature, so a changed parameter
or prompt file reruns that stage and the stages after it only. Within a stage, inputs in
`done.ids` are never processed again and a re-processed batch cannot duplicate outputs.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import CPQAError
from ..io_atomic import write_json_atomic
from ..manifest import IdLog, RecordWriter, iter_jsonl
from ..recipe import Recipe, StageSpec
from ..records import Drop, Recording, Skip
from ..rundir import (
    COUNTERS,
    DONE,
    EXCLUDED,
    FIT_COUNTERS,
    RECORDS,
    RUN_INFO,
    SKIPPED,
    STATS,
    SUCCESS,
    count_lines,
    stage_stats,
)
from ..stage import ProgressHook, SourceStage, Stage, StageContext

logger = logging.getLogger(__name__)


def signature(spec: StageSpec, upstream: str, input_key: str | None = None) -> str:
    payload = {
        "type": spec.type,
        "version": spec.cls.version,
        "config": spec.config.semantic_dict(),
        "upstream": upstream,
        "input": input_key,
    }
    if (data := spec.cls.data_digest(spec.config)) is not None:  # absent otherwise: other signatures keep
        payload["data"] = data
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


@dataclass
class StagePlan:
    index: int
    spec: StageSpec
    signature: str
    dir: Path

    @property
    def done(self) -> bool:
        return (self.dir / SUCCESS).exists()


def plan(run_dir: Path, recipe: Recipe, input_path: Path | None, until: str | None = None) -> list[StagePlan]:
    """The stage directories a build of `recipe` on `input_path` uses, in order."""
    plans = []
    upstream = ""
    for i, spec in enumerate(recipe.until(until)):
        input_key = str(input_path.resolve()) if (i == 0 and input_path is not None) else None
        sig = signature(spec, upstream, input_key)
        plans.append(StagePlan(i, spec, sig, run_dir / f"{i:02d}-{spec.name}-{sig}"))
        upstream = sig
    return plans


@dataclass
class StageResult:
    name: str
    dir: Path
    already_done: bool
    stats: dict[str, Any]


@dataclass
class BuildResult:
    run_dir: Path
    stages: list[StageResult] = field(default_factory=list)

    @property
    def skipped_total(self) -> int:
        return sum(sum(s.stats.get("skipped", {}).values()) for s in self.stages)

    @property
    def did_work(self) -> bool:
        return any(not s.already_done for s in self.stages)


class RecordingIndex:
    """Recording records of the latest stage that wrote recordings (`path`), loaded on first use."""

    def __init__(self, path: Path):
        self.path = path
        self._by_id: dict[str, Recording] | None = None

    def __call__(self, recording_id: str) -> Recording:
        if self._by_id is None:
            self._by_id = {r["id"]: Recording.model_validate(r) for r in iter_jsonl(self.path)}
        try:
            return self._by_id[recording_id]
        except KeyError:
            raise CPQAError(f"recording '{recording_id}' is not in {self.path}") from None


@dataclass
class StageRun:
    """One stage of a build as an executor runs it: its plan, the upstream records it reads and
    the recordings its inputs refer to."""

    plan: StagePlan
    upstream: Path | None
    recordings: RecordingIndex


def batches(items: Iterator, size: int, key: str | None = None) -> Iterator[list]:
    """Batches of `size` inputs; with `key`, a batch grows past `size` rather than split a run of
    inputs with the same value of that field (a stage's `batch_by`)."""
    batch: list = []
    for item in items:
        if len(batch) >= size and (key is None or getattr(item, key) != getattr(batch[-1], key)):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def set_up_stage(stage: Stage, upstream: Path | None) -> dict[str, Any] | None:
    """Load the stage's models and, for a stage that needs the whole input first, fit it. Returns
    the fit's counters (whole-input figures, which the executor's one writer saves apart from the
    per-batch ones), or None for a stage without a fit."""
    stage.setup()
    if not stage.needs_fit:
        return None
    stage.fit(stage.input_type.model_validate(obj) for obj in iter_jsonl(upstream))
    fitted = dict(stage.context.counters)
    stage.context.counters.clear()
    return fitted


def save_fit_counters(stage_dir: Path, fitted: dict[str, Any] | None) -> None:
    if fitted is not None:
        write_json_atomic(stage_dir / FIT_COUNTERS, fitted)


class StageOutputs:
    """The durable files of one stage directory, written batch by batch: a batch's records,
    skips, drops and counters are made durable before its inputs are marked done (so a dropped
    input, like a skipped one, counts as done)."""

    def __init__(self, stage_dir: Path):
        self.done = IdLog(stage_dir / DONE)
        self.records = RecordWriter(stage_dir / RECORDS)
        self.skipped = RecordWriter(stage_dir / SKIPPED)
        self.excluded = RecordWriter(stage_dir / EXCLUDED)
        self.counters = RecordWriter(stage_dir / COUNTERS)

    def commit_batch(self, input_ids: list[str], records: list, counters: Counter) -> None:
        for record in records:
            writer = self.skipped if isinstance(record, Skip) else self.excluded if isinstance(record, Drop) else self.records
            writer.write(record)
        self.counters.write({"id": _batch_key(input_ids), "counters": dict(counters)})
        counters.clear()
        for writer in (self.records, self.skipped, self.excluded, self.counters):
            writer.flush()
        self.done.add_all(input_ids)

    def close(self) -> None:
        for writer in (self.records, self.skipped, self.excluded, self.counters):
            writer.close()
        self.done.close()


class Executor(ABC):
    """Runs a recipe's stages one after another into a run directory, durably and resumably."""

    def __init__(self, progress: ProgressHook | None = None):
        self.progress = progress or ProgressHook()

    @abstractmethod
    def process(self, run: StageRun, stage: Stage, todo: Iterator, outputs: StageOutputs) -> int:
        """Run `stage` over the inputs not yet done, committing each batch to `outputs`; the
        number of inputs processed."""

    def build(self, input_path: Path, run_dir: Path, recipe: Recipe, until: str | None = None,
              overrides: list[str] | None = None) -> BuildResult:
        input_path = Path(input_path)
        if not input_path.exists():
            raise CPQAError(f"input {input_path} does not exist")
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        handler = _attach_file_log(run_dir / "logs" / "cpqa.log")
        try:
            plans = plan(run_dir, recipe, input_path, until)
            write_json_atomic(run_dir / RUN_INFO, {
                "input": str(input_path.resolve()),
                "recipe": recipe.name,
                "recipe_source": recipe.source,
                "overrides": list(overrides or []),
                "until": until,
                "cpqa_version": __version__,
                "stages": [{"name": p.spec.name, "dir": p.dir.name} for p in plans],
            })
            result = BuildResult(run_dir)
            recordings = RecordingIndex(plans[0].dir / RECORDS)
            for i, p in enumerate(plans):
                run = StageRun(p, plans[i - 1].dir / RECORDS if i else None, recordings)
                earlier = {q.spec.name: q.dir for q in plans[:i]}
                result.stages.append(self._run_stage(run, run_dir, input_path, earlier))
                if issubclass(p.spec.cls.output_type, Recording):  # e.g. diarize adds speaker turns
                    recordings = RecordingIndex(p.dir / RECORDS)
            return result
        finally:
            logging.getLogger("cpqa").removeHandler(handler)
            handler.close()

    def _run_stage(self, run: StageRun, run_dir: Path, input_path: Path, earlier: dict[str, Path]) -> StageResult:
        p = run.plan
        name = p.spec.name
        if p.done:
            stats = stage_stats(p.dir)
            logger.info("stage %s: already done (%s)", name, p.dir.name)
            self.progress.stage_finished(name, stats, already_done=True)
            return StageResult(name, p.dir, True, stats)

        p.dir.mkdir(parents=True, exist_ok=True)
        stage_log = _attach_file_log(p.dir / "log")
        started = time.perf_counter()
        context = StageContext(run_dir=run_dir, stage_dir=p.dir, name=name, input_path=input_path,
                               recording_lookup=run.recordings, earlier_stages=earlier,
                               logger=logging.getLogger(f"cpqa.stage.{name}"))
        stage = p.spec.cls(p.spec.config, context)
        outputs = StageOutputs(p.dir)
        try:
            if isinstance(stage, SourceStage):
                items, total = stage.discover(input_path), None
            else:
                items = (stage.input_type.model_validate(obj) for obj in iter_jsonl(run.upstream))
                total = count_lines(run.upstream)
            self.progress.stage_started(name, total, len(outputs.done))
            items_in = self.process(run, stage, _skip_done(items, outputs.done, name), outputs)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise CPQAError(f"no space left on the device of {run_dir} while running stage '{name}': "
                                "free some space, then rerun the same command to resume") from exc
            raise
        finally:
            outputs.close()
            logging.getLogger("cpqa").removeHandler(stage_log)
            stage_log.close()

        stats = _final_stats(p, time.perf_counter() - started, items_in)
        write_json_atomic(p.dir / STATS, stats)
        (p.dir / SUCCESS).write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z") + "\n")
        logger.info("stage %s: done: %s", name, json.dumps(stats, sort_keys=True))
        self.progress.stage_finished(name, stats, already_done=False)
        return StageResult(name, p.dir, False, stats)


def _final_stats(p: StagePlan, wall_s: float, processed_now: int) -> dict[str, Any]:
    skipped = Counter(obj["reason"] for obj in iter_jsonl(p.dir / SKIPPED))
    dropped = Counter(obj["reason"] for obj in iter_jsonl(p.dir / EXCLUDED))
    fit_path = p.dir / FIT_COUNTERS
    merged = Counter(json.loads(fit_path.read_text()) if fit_path.exists() else {})
    for obj in iter_jsonl(p.dir / COUNTERS):
        merged.update(obj["counters"])
    merged.update({f"dropped/{reason}": n for reason, n in dropped.items()})
    return {
        "stage": p.spec.name,
        "signature": p.signature,
        "items_in": count_lines(p.dir / DONE),
        "items_out": count_lines(p.dir / RECORDS),
        "skipped": dict(sorted(skipped.items())),
        "dropped": dict(sorted(dropped.items())),
        "counters": dict(sorted(merged.items())),
        "wall_s": round(wall_s, 3),
        "processed_this_run": processed_now,
    }


def _batch_key(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


def _skip_done(items: Iterator, done: IdLog, name: str) -> Iterator:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise CPQAError(f"stage '{name}': input id '{item.id}' appears twice; ids must be unique")
        seen.add(item.id)
        if item.id in done:
            continue
        yield item


def _attach_file_log(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger("cpqa")
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    return handler
