"""Refactoring keeps the records: a `dummy` build, a `local` build up to clips and a qa + qa_dataset
build give exactly the records of the snapshots in tests/golden (made with commit 9438b64; rebuild
them with `python tests/golden/records.py`). What was a deliberate drop then (a condensation
`Skip`, a QA item with `filters.passed` false) is in excluded.jsonl now, under its reason's new
name; what was a failure is still a `Skip`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "golden"))
import records as golden  # noqa: E402

from cpqa import reasons  # noqa: E402

RENAMED = {"empty-file": reasons.EMPTY_FILE, "no-speech": reasons.NO_SPEECH, "clip_budget": reasons.CLIP_BUDGET}
"""Old reason name → new, where it changed or moved (the others kept their names)."""
DROPS = {reasons.NO_SPEECH, reasons.TOO_SHORT, reasons.LOW_SNR, reasons.RECORDING_CAP, reasons.CLIP_BUDGET}
"""The reasons of the snapshots that are drops now."""
QA_STAGES = ("qa", "qa_dataset")


def expected_lists(old: dict) -> tuple[list, list]:
    """(skipped, excluded) of a stage as the new code writes them, from an old snapshot."""
    renamed = [[i, RENAMED.get(r, r)] for i, r in old["skipped"]]
    assert {r for _, r in renamed} <= reasons.ALL
    return [x for x in renamed if x[1] not in DROPS], [x for x in renamed if x[1] in DROPS]


def assert_same(old: dict[str, dict], new: dict[str, dict]) -> None:
    assert sorted(new) == sorted(old)
    failed_before: set[str] = set()
    for stage, was in old.items():
        now = new[stage]
        if stage in QA_STAGES:
            failed = {r["id"]: r["filters"]["reasons"] for r in was["records"] if not r["filters"]["passed"]}
            assert now["records"] == [r for r in was["records"] if r["id"] not in failed], stage
            dropped_here = {i: why for i, why in failed.items() if i not in failed_before}
            assert [i for i, _ in now["excluded"]] == sorted(dropped_here), stage
            assert all(reason in dropped_here[i] for i, reason in now["excluded"]), stage
            assert now["skipped"] == was["skipped"], stage
            failed_before = set(failed)
        else:
            skipped, excluded = expected_lists(was)
            assert now["records"] == was["records"], stage
            assert (now["skipped"], now["excluded"]) == (skipped, excluded), stage


@pytest.mark.timeout(300)
@pytest.mark.parametrize("part", ["dummy", "qa", "local"])
def test_records_match_the_snapshot(part, tmp_path, request):
    if part == "local":
        request.getfixturevalue("real_data")  # skips where the RAVDESS clips are absent
    assert_same(golden.load(part), golden.BUILDS[part](tmp_path))
