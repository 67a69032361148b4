"""Shared test helpers: paths to the real data beside the repo."""

from pathlib import Path

import pytest

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not REAL.exists():
        pytest.skip(f"real test data not found at {REAL}")
    return REAL


def stage_states(table_output: str) -> dict[str, str]:
    """stage → state, read from the summary table `cpqa build` prints."""
    rows = [line.split("│") for line in table_output.splitlines() if line.startswith("│")]
    return {cells[1].strip(): cells[2].strip() for cells in rows if len(cells) > 2 and cells[1].strip()}
