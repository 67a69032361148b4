"""Reading a run back: per-stage state and counts (`cpqa status`) and records (`cpqa inspect`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .manifest import iter_jsonl
from .rundir import DONE, EXCLUDED, RECORDS, SKIPPED, SUCCESS, count_lines, read_run_info, stage_dirs, stage_stats


def _state(d: Path) -> str:
    if (d / SUCCESS).exists():
        return "done"
    if (d / DONE).exists() or (d / RECORDS).exists():
        return "partial"
    return "pending"


def _reasons(left_out: list[dict[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(o["reason"] for o in left_out).items()))


def _live_stats(d: Path, skipped_items: list[dict], dropped_items: list[dict]) -> dict[str, Any]:
    """Counts of an unfinished stage, read from its files (its skips and drops already read)."""
    return {
        "items_in": count_lines(d / DONE),
        "items_out": count_lines(d / RECORDS),
        "skipped": _reasons(skipped_items),
        "dropped": _reasons(dropped_items),
        "counters": {},
    }


def run_status(run_dir: str | Path) -> dict[str, Any]:
    """Each stage of the run's last build with its state and counts, its failed (skipped) and
    dropped inputs by reason, the failed items, where each recording got to, the text-only answerability per QA type and the
    speech-LLM check's agreement per direct type."""
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    stages = []
    recordings: dict[str, dict[str, Any]] = {}
    for name, d in stage_dirs(run_dir):
        state = _state(d)
        skipped_items = list(iter_jsonl(d / SKIPPED))
        dropped_items = list(iter_jsonl(d / EXCLUDED))
        stats = stage_stats(d) if state == "done" else _live_stats(d, skipped_items, dropped_items)
        stages.append({
            "name": name,
            "dir": d.name,
            "state": state,
            "items_in": stats.get("items_in", 0),
            "items_out": stats.get("items_out", 0),
            "skipped": stats.get("skipped", {}),
            "skipped_items": skipped_items,
            "dropped": stats.get("dropped", {}),
            "counters": stats.get("counters", {}),
            "wall_s": stats.get("wall_s"),
        })
        _track_recordings(recordings, name, d, skipped_items, dropped_items)
    return {"run": str(run_dir), "input": info["input"], "recipe": info["recipe"], "stages": stages,
            "recordings": dict(sorted(recordings.items())), "text_only": text_only_answerability(stages),
            "speech_llm": speech_llm_agreement(stages)}


def text_only_answerability(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per QA type, the share of items a text-only model answered, before and after the filter,
    from the counters of the last stage that ran the text-only check (see `cpqa.qa.answerability`)."""
    from .qa.answerability import ASKED, answerability_rows

    return _rows_of_last(stages, ASKED, answerability_rows)


def speech_llm_agreement(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per direct QA type, how often a speech-LLM hearing the audio agreed with the reference
    answer, from the counters of the last stage that ran the check (see `cpqa.qa.speech_check`)."""
    from .qa.speech_check import ASKED, agreement_rows

    return _rows_of_last(stages, ASKED, agreement_rows)


def _rows_of_last(stages: list[dict[str, Any]], prefix: str, rows: Callable[[dict], list]) -> list[dict[str, Any]]:
    """`rows` of the counters of the last stage with a counter starting with `prefix`; [] if none."""
    checked = [s for s in stages if any(k.startswith(prefix) for k in s["counters"])]
    return rows(checked[-1]["counters"]) if checked else []


def _track_recordings(recordings: dict[str, dict[str, Any]], stage: str, d: Path, skipped_items: list[dict],
                      dropped_items: list[dict]) -> None:
    """A recording's state is the last stage it has output at, or the stage that failed on it
    ("skipped") or dropped it whole ("dropped", e.g. no speech). A left-out id counts as a recording
    when the first stage left it out or it is a known recording."""
    first = not recordings
    for state, items in (("skipped", skipped_items), ("dropped", dropped_items)):
        for item in items:
            rid = item["id"]
            if first or (rid in recordings and recordings[rid]["state"] == "ok"):
                recordings[rid] = {"state": state, "stage": stage, "reason": item["reason"],
                                   "detail": item.get("detail", "")}
    seen: set[str] = set()
    for obj in iter_jsonl(d / RECORDS):
        rid = obj.get("recording_id", obj["id"])
        if rid not in seen:
            seen.add(rid)
            if recordings.get(rid, {}).get("state", "ok") == "ok":
                recordings[rid] = {"state": "ok", "stage": stage}
