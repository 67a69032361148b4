"""Fixtures: a synthetic run on real RAVDESS speech (see exportgen)."""

from __future__ import annotations

import pytest
from exportgen import build_run


@pytest.fixture(scope="session")
def run_dir(real_data, tmp_path_factory):
    return build_run(real_data, tmp_path_factory.mktemp("export-run"))
