"""Shared test helpers: paths to the real data beside the repo."""

from pathlib import Path

import pytest

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not REAL.exists():
        pytest.skip(f"real test data not found at {REAL}")
    return REAL

