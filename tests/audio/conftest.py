"""Fixtures for the decode and ingest tests (helpers that make audio are in audiogen.py)."""

from __future__ import annotations

import pytest

from cpqa.audio.ingest import IngestStage
from cpqa.stage import StageContext


@pytest.fixture
def make_stage(tmp_path):
    """`make_stage(**config)`: an IngestStage whose run folder is tmp_path/run."""

    def make(**config) -> IngestStage:
        run_dir = tmp_path / "run"
        context = StageContext(run_dir=run_dir, stage_dir=run_dir / "00-ingest", name="ingest")
        return IngestStage(IngestStage.Config(**config), context)

    return make
