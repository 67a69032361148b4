"""The local executor: every stage in this process, batch by batch."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from ..errors import CPQAError
from ..stage import ProgressHook, Stage
from .base import Executor, StageOutputs, StageRun, batches, save_fit_counters, set_up_stage

logger = logging.getLogger(__name__)


class LocalExecutor(Executor):
    """Runs stages one after another in this process, batch by batch, durably."""

    def __init__(self, progress: ProgressHook | None = None, address: str | None = None):
        if address is not None:
            raise CPQAError("--address names a Ray cluster: use it with --executor ray")
        super().__init__(progress)

    def process(self, run: StageRun, stage: Stage, todo: Iterator, outputs: StageOutputs) -> int:
        p = run.plan
        items_in = 0
        is_set_up = False
        try:
            for batch in batches(todo, p.spec.config.batch_size, stage.batch_by):
                if not is_set_up:
                    logger.info("stage %s: setting up %s", p.spec.name, type(stage).__name__)
                    save_fit_counters(p.dir, set_up_stage(stage, run.upstream))
                    is_set_up = True
                records = list(stage.process_batch(batch))
                outputs.commit_batch([item.id for item in batch], records, stage.context.counters)
                items_in += len(batch)
                self.progress.advance(p.spec.name, len(batch))
        finally:
            if is_set_up:
                stage.teardown()
        return items_in
