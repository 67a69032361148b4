"""`cpqa build`, `status`, `inspect` and `report`: a run directory made, read and shown."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from .ui import RichProgress, console, out, run_or_exit, setup_logging


def _stage_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("stage", "state", "in", "out", "dropped", "skipped (failed)", "wall s"):
        table.add_column(col, justify="right" if col in ("in", "out", "wall s") else "left")
    for r in rows:
        dropped, skipped = (", ".join(f"{k}: {v}" for k, v in r.get(key, {}).items()) or "-" for key in ("dropped", "skipped"))
        wall = f"{r['wall_s']:.1f}" if r.get("wall_s") is not None else "-"
        table.add_row(r["name"], r["state"], str(r["items_in"]), str(r["items_out"]), dropped, skipped, wall)
    return table


def distribution_table(counters: dict, title: str = "condense: before → after"):
    """A rich table of the condense stage's before/after distributions (for `cpqa build`/`status`)."""
    from ..condense.stats import before_after

    table = Table("dimension", "value", "before", "after", title=title, title_justify="left")
    for dimension, values in before_after(counters).items():
        for value, (before, after) in values.items():
            table.add_row(dimension, value, f"{before:g}", f"{after:g}")
    return table


QA_GROUPS = ("qa/type", "qa/passed", "qa/dropped", "qa/flagged")


def _print_highlights(counters_by_stage: dict[str, dict[str, float]]) -> None:
    """The condensation's before/after distributions and the final QA counts per type and per
    drop reason, from the stages' counters."""
    from ..report.html import counter_groups

    if counters_by_stage.get("condense"):
        out.print(distribution_table(counters_by_stage["condense"]))
    qa_stages = [name for name, c in counters_by_stage.items() if any(k.startswith("qa/type/") for k in c)]
    if qa_stages:
        groups = counter_groups(counters_by_stage[qa_stages[-1]])
        table = Table("count", "key", "n", title=f"{qa_stages[-1]}: QA per type and per drop reason",
                      title_justify="left")
        for prefix in QA_GROUPS:
            for key, n in sorted(groups.get(prefix, {}).items()):
                table.add_row(prefix.split("/")[1], key, f"{n:g}")
        out.print(table)


def build(
    input: Path = typer.Argument(..., help="A folder of audio, a manifest (CSV/JSONL/lhotse) or a Parquet/HF dataset."),
    output: Path = typer.Option(..., "-o", "--output", help="The run directory (created or resumed)."),
    recipe: str = typer.Option("local", "--recipe", "-r", help="A packaged recipe name or a YAML path."),
    set_: list[str] = typer.Option([], "--set", help="Override a recipe parameter: stage.param=value (repeatable)."),
    until: str | None = typer.Option(None, "--until", help="Stop after this stage."),
    executor: str = typer.Option("local", "--executor", help="local, or ray (actor pools; pip install 'cpqa[ray]')."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster address (default: start Ray here)."),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Log progress details."),
):
    """Run (or resume) a recipe on INPUT. Finished stages are not redone; a changed parameter
    reruns its stage and the ones after it."""
    from ..run import build as run_build

    setup_logging(verbose)
    with RichProgress() as hook:
        result = run_or_exit(run_build, input, output, recipe, set_, until, hook, executor, address)
    rows = []
    for s in result.stages:
        rows.append({"name": s.name, "state": "already done" if s.already_done else "done",
                     "items_in": s.stats.get("items_in", 0), "items_out": s.stats.get("items_out", 0),
                     "dropped": s.stats.get("dropped", {}), "skipped": s.stats.get("skipped", {}),
                     "wall_s": s.stats.get("wall_s")})
    out.print(_stage_table(rows, f"cpqa build → {output}"))
    _print_highlights({s.name: s.stats.get("counters", {}) for s in result.stages})
    if not result.did_work:
        out.print("Nothing to do: every stage was already done.")
    if result.skipped_total:
        console.print(f"[yellow]warning:[/] {result.skipped_total} item(s) skipped (failed); "
                      f"see: cpqa status {output}", highlight=False, soft_wrap=True)
    out.print(f"Results: {output}  (cpqa inspect {output} --stage {result.stages[-1].name})", highlight=False)


def status(run: Path = typer.Argument(..., help="A run directory."),
           as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")):
    """Each stage of RUN with its state, counts, and drop and failure reasons."""
    from ..status import run_status

    info = run_or_exit(run_status, run)
    if as_json:
        out.print_json(json.dumps(info))
        return
    out.print(_stage_table(info["stages"], f"{run}  (recipe {info['recipe']})"))
    _print_highlights({s["name"]: s["counters"] for s in info["stages"]})
    _print_label_trust(info["stages"])
    _print_text_only(info["text_only"])
    _print_speech_llm(info["speech_llm"])
    for stage in info["stages"]:
        for item in stage["skipped_items"][:20]:
            out.print(f"  skipped at {stage['name']}: {item['id']}: {item['reason']} {item.get('detail', '')}",
                      highlight=False)


def _print_text_only(rows: list[dict]) -> None:
    """Per QA type, the share of items a text-only model answered, before and after the filter."""
    from ..qa.answerability import ANSWERABILITY_HEADERS, ANSWERABILITY_NOTE, answerability_table

    if rows:
        table = Table(*ANSWERABILITY_HEADERS, title="text-only answerability", caption=ANSWERABILITY_NOTE,
                      title_justify="left")
        for row in answerability_table(rows):
            table.add_row(*row)
        out.print(table)


def _print_speech_llm(rows: list[dict]) -> None:
    """Per direct QA type, how often the speech-LLM check agreed with the reference answer."""
    from ..qa.speech_check import AGREEMENT_HEADERS, agreement_table

    if rows:
        table = Table(*AGREEMENT_HEADERS, title="speech-LLM check", title_justify="left")
        for row in agreement_table(rows):
            table.add_row(*row)
        out.print(table)


def _print_label_trust(stages: list[dict]) -> None:
    """How this run's audio sat against the emotion model's training data (labels.trust)."""
    from ..labels.trust import run_trust

    trust = next((run_trust(s["counters"]) for s in stages if s["name"] == "annotate"), None)
    if not trust:
        return
    out.print(f"labels: {trust['out_of_distribution_share']:.0%} of emotion windows out of distribution, "
              f"{trust['abstained_share']:.0%} 'no clear emotion', {trust['within_speaker_gender_changes']} "
              f"within-speaker gender changes, {trust['emotion_changes_per_minute']} emotion changes per minute")
    if trust["warning"]:
        out.print(f"[yellow]warning:[/yellow] {trust['warning']}", highlight=False)


def inspect(run: Path = typer.Argument(..., help="A run directory."),
            stage: str = typer.Option(..., "--stage", "-s", help="The stage whose records to print."),
            skipped: bool = typer.Option(False, "--skipped", help="Print the failed (skipped) items instead."),
            dropped: bool = typer.Option(False, "--dropped", help="Print the items its filters dropped instead."),
            limit: int | None = typer.Option(None, "--limit", "-n", help="At most this many records.")):
    """Print a stage's records as JSON lines (the docs/design.md §2 schema)."""
    from ..rundir import EXCLUDED, RECORDS, SKIPPED, iter_stage_file

    name = SKIPPED if skipped else EXCLUDED if dropped else RECORDS

    def emit():
        for i, record in enumerate(iter_stage_file(run, stage, name)):
            if limit is not None and i >= limit:
                break
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")

    run_or_exit(emit)


def report(run: Path = typer.Argument(..., help="A run directory."),
           output: Path | None = typer.Option(None, "-o", "--output", help="HTML file (default RUN/report.html)."),
           evaluation: list[Path] = typer.Option([], "--eval", help="An evaluation folder to include (repeatable)."),
           comparison: list[Path] = typer.Option([], "--compare", help="A compare report JSON to include (repeatable)."),
           qa_sample: int = typer.Option(3, "--qa-sample", min=0, help="Kept and dropped QA items shown per type.")):
    """Write one self-contained HTML report of RUN: yield, distributions, QA (with a sample of items to read and
    listen to; the clip audio is linked relative to the report, not embedded), evaluation, costs."""
    from ..report.html import build_report

    path = run_or_exit(build_report, run, output, evaluation, comparison, qa_sample)
    out.print(f"Report: {path}", highlight=False)
