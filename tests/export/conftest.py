"""Fixtures: synthetic runs on real RAVDESS speech (see exportgen, and longgen for clips longer
than the model's window)."""

from __future__ import annotations

import pytest
from exportgen import build_run
from longgen import build_long_run


@pytest.fixture(scope="session")
def run_dir(real_data, tmp_path_factory):
    return build_run(real_data, tmp_path_factory.mktemp("export-run"))


@pytest.fixture(scope="session")
def long_run(real_data, tmp_path_factory):
    return build_long_run(real_data, tmp_path_factory.mktemp("long-run"))
