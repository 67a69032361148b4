"""The Ray Data executor: the same stages, recipes and run directory as the local executor, with
each stage's model held by a pool of actors and records streamed between Ray and the driver.

The driver stays the only writer of the run directory (records, skips, counters, done ids, in the
input order: `preserve_order`), so output, signatures and resume are exactly the local executor's.
On a cluster the run directory must be on storage every node sees (actors read the upstream
records and the recordings' audio by path):

    ray start --head                         # on the head node; `ray start --address HEAD:6379` on others
    cpqa build INPUT -o /shared/run --executor ray --address HEAD:6379
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import require
from ..records import Drop, Skip
from ..stage import ProgressHook, SourceStage, Stage, StageContext
from .base import RecordingIndex, StageOutputs, StagePlan, StageRun, batches, save_fit_counters, set_up_stage
from .local import LocalExecutor

logger = logging.getLogger(__name__)

OUT, SKIP, DROP, COUNTERS, FIT, DONE = "out", "skip", "drop", "counters", "fit", "done"


class _StageActor:
    """One pool member: builds the stage, loads its models once, runs batches of JSON lines."""

    def __init__(self, stage_cls: type[Stage], config: Any, run_dir: str, stage_dir: str, input_path: str,
                 upstream: str | None, recordings: str, earlier: dict[str, Path]):
        context = StageContext(run_dir=Path(run_dir), stage_dir=Path(stage_dir), name=stage_cls.name,
                               input_path=Path(input_path), recording_lookup=RecordingIndex(Path(recordings)),
                               earlier_stages=earlier)
        self.stage = stage_cls(config, context)
        self.fitted = set_up_stage(self.stage, Path(upstream) if upstream else None)

    def __call__(self, row: dict[str, Any]) -> dict[str, list[str]]:
        """One row: one batch the driver formed (a JSON list of the inputs' JSON)."""
        [text] = row["batch"]
        items = [self.stage.input_type.model_validate_json(item) for item in json.loads(text)]
        kinds, payloads = [], []
        if self.fitted is not None:  # the driver, the run directory's one writer, saves them once
            kinds.append(FIT)
            payloads.append(json.dumps(self.fitted))
        for record in self.stage.process_batch(items):
            kinds.append(SKIP if isinstance(record, Skip) else DROP if isinstance(record, Drop) else OUT)
            payloads.append(record.model_dump_json())
        kinds.append(COUNTERS)
        payloads.append(json.dumps(dict(self.stage.context.counters)))
        self.stage.context.counters.clear()
        kinds.append(DONE)  # last: the batch's input ids
        payloads.append(json.dumps([item.id for item in items]))
        return {"kind": kinds, "payload": payloads}


class RayExecutor(LocalExecutor):
    """`cpqa build ... --executor ray [--address ...]`."""

    def __init__(self, progress: ProgressHook | None = None, address: str | None = None):
        super().__init__(progress)
        self.ray = require("ray", extra="ray")
        if not self.ray.is_initialized():
            self.ray.init(address=address, num_cpus=None if address else os.cpu_count(),
                          include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        context = self.ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False

    def _pool_size(self, p: StagePlan) -> int:
        if p.spec.config.workers:
            return p.spec.config.workers
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        # leave one CPU for the read/format tasks: actors holding every CPU deadlock the pipeline
        return max(1, int((cpus - 1) // p.spec.config.num_cpus))

    def process(self, run: StageRun, stage: Stage, todo: Iterator, outputs: StageOutputs) -> int:
        if isinstance(stage, SourceStage):  # discovery and decoding stay on the driver, next to the input
            return super().process(run, stage, todo, outputs)
        p, upstream = run.plan, run.upstream
        # the driver forms the batches as the local executor does (`batch_by` included), so each
        # process_batch call sees the same inputs under either executor
        rows = [{"batch": json.dumps([item.model_dump_json() for item in batch])}
                for batch in batches(todo, p.spec.config.batch_size, stage.batch_by)]
        if not rows:
            return 0
        ctx = stage.context
        dataset = self.ray.data.from_items(rows).map_batches(
            _StageActor,
            batch_size=1,
            batch_format="numpy",
            concurrency=self._pool_size(p),
            num_cpus=p.spec.config.num_cpus,
            num_gpus=p.spec.config.num_gpus,
            fn_constructor_args=(type(stage), p.spec.config, str(ctx.run_dir), str(ctx.stage_dir),
                                 str(ctx.input_path), str(upstream) if upstream else None,
                                 str(run.recordings.path), ctx.earlier_stages),
        )
        return self._drain(p, stage, dataset, outputs)

    def _drain(self, p: StagePlan, stage: Stage, dataset, outputs: StageOutputs) -> int:
        """Write the actors' rows in order; a batch's inputs are marked done after its outputs."""
        records: list = []
        counters: Counter = Counter()
        items_in = 0
        fit_saved = False
        for row in dataset.iter_rows():
            kind, payload = str(row["kind"]), str(row["payload"])
            if kind == OUT:
                records.append(stage.output_type.model_validate_json(payload))
            elif kind == SKIP:
                records.append(Skip.model_validate_json(payload))
            elif kind == DROP:
                records.append(Drop.model_validate_json(payload))
            elif kind == COUNTERS:
                counters.update(json.loads(payload))
            elif kind == FIT:
                if not fit_saved:  # every actor fitted the same whole input
                    save_fit_counters(p.dir, json.loads(payload))
                    fit_saved = True
            else:  # DONE closes the batch
                done_ids = json.loads(payload)
                outputs.commit_batch(done_ids, records, counters)
                items_in += len(done_ids)
                self.progress.advance(p.spec.name, len(done_ids))
                records = []
        return items_in
