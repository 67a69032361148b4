"""The `cpqa` command: thin typer wrappers over library calls, rendered with rich."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .errors import CPQAError
from .stage import ProgressHook

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Turn in-the-wild speech into Contextual Paralinguistic QA data, and evaluate speech-LLMs on it.")
list_app = typer.Typer(no_args_is_help=True, help="List registered stages, backends and packaged recipes.")
app.add_typer(list_app, name="list")
console = Console(stderr=True)
out = Console()


def _run(fn, *args, **kwargs):
    """Call a library function; a CPQAError becomes one clear line and exit code 2."""
    try:
        return fn(*args, **kwargs)
    except CPQAError as exc:
        # escaped: rich would take "[gpu]" in "pip install 'cpqa[gpu]'" for markup and drop it
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    root = logging.getLogger("cpqa")
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    handler = RichHandler(console=console, show_path=False, level=logging.INFO if verbose else logging.WARNING)
    root.addHandler(handler)


class RichProgress(ProgressHook):
    """Renders the executor's progress hook as rich progress bars."""

    def __init__(self):
        self.progress = Progress(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, transient=False)
        self.tasks: dict[str, Any] = {}

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def stage_started(self, name: str, total: int | None, done: int) -> None:
        self.tasks[name] = self.progress.add_task(name, total=total, completed=done)

    def advance(self, name: str, n: int) -> None:
        self.progress.advance(self.tasks[name], n)

    def stage_finished(self, name: str, stats: dict[str, Any], already_done: bool) -> None:
        if already_done:
            self.progress.add_task(f"{name} ✓", total=1, completed=1)
        elif name in self.tasks:
            task = self.tasks[name]
            self.progress.update(task, total=self.progress.tasks[task].completed or 1,
                                 completed=self.progress.tasks[task].completed or 1)


def _stage_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("stage", "state", "in", "out", "skipped", "wall s"):
        table.add_column(col, justify="right" if col in ("in", "out", "wall s") else "left")
    for r in rows:
        skipped = ", ".join(f"{k}: {v}" for k, v in r["skipped"].items()) or "-"
        wall = f"{r['wall_s']:.1f}" if r.get("wall_s") is not None else "-"
        table.add_row(r["name"], r["state"], str(r["items_in"]), str(r["items_out"]), skipped, wall)
    return table


QA_GROUPS = ("qa/type", "qa/passed", "qa/dropped", "qa/flagged")


def _print_highlights(counters_by_stage: dict[str, dict[str, float]]) -> None:
    """The condensation's before/after distributions and the final QA counts per type and per
    drop reason, from the stages' counters."""
    from .condense.cli import distribution_table
    from .report.html import counter_groups

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


@app.command()
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
    from .run import build as run_build

    _setup_logging(verbose)
    with RichProgress() as hook:
        result = _run(run_build, input, output, recipe, set_, until, hook, executor, address)
    rows = []
    for s in result.stages:
        rows.append({"name": s.name, "state": "already done" if s.already_done else "done",
                     "items_in": s.stats.get("items_in", 0), "items_out": s.stats.get("items_out", 0),
                     "skipped": s.stats.get("skipped", {}), "wall_s": s.stats.get("wall_s")})
    out.print(_stage_table(rows, f"cpqa build → {output}"))
    _print_highlights({s.name: s.stats.get("counters", {}) for s in result.stages})
    if not result.did_work:
        out.print("Nothing to do: every stage was already done.")
    if result.skipped_total:
        console.print(f"[yellow]warning:[/] {result.skipped_total} item(s) skipped; "
                      f"see: cpqa status {output}", highlight=False, soft_wrap=True)
    out.print(f"Results: {output}  (cpqa inspect {output} --stage {result.stages[-1].name})", highlight=False)


@app.command()
def status(run: Path = typer.Argument(..., help="A run directory."),
           as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")):
    """Each stage of RUN with its state, counts and skip reasons."""
    from .status import run_status

    info = _run(run_status, run)
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
    from .qa.answerability import ANSWERABILITY_HEADERS, ANSWERABILITY_NOTE, answerability_table

    if rows:
        table = Table(*ANSWERABILITY_HEADERS, title="text-only answerability", caption=ANSWERABILITY_NOTE,
                      title_justify="left")
        for row in answerability_table(rows):
            table.add_row(*row)
        out.print(table)


def _print_speech_llm(rows: list[dict]) -> None:
    """Per direct QA type, how often the speech-LLM check agreed with the reference answer."""
    from .qa.speech_check import AGREEMENT_HEADERS, agreement_table

    if rows:
        table = Table(*AGREEMENT_HEADERS, title="speech-LLM check", title_justify="left")
        for row in agreement_table(rows):
            table.add_row(*row)
        out.print(table)


def _print_label_trust(stages: list[dict]) -> None:
    """How this run's audio sat against the emotion model's training data (labels.trust)."""
    from .labels.trust import run_trust

    trust = next((run_trust(s["counters"]) for s in stages if s["name"] == "annotate"), None)
    if not trust:
        return
    out.print(f"labels: {trust['out_of_distribution_share']:.0%} of emotion windows out of distribution, "
              f"{trust['abstained_share']:.0%} 'no clear emotion', {trust['within_speaker_gender_changes']} "
              f"within-speaker gender changes, {trust['emotion_changes_per_minute']} emotion changes per minute")
    if trust["warning"]:
        out.print(f"[yellow]warning:[/yellow] {trust['warning']}", highlight=False)


@app.command()
def inspect(run: Path = typer.Argument(..., help="A run directory."),
            stage: str = typer.Option(..., "--stage", "-s", help="The stage whose records to print."),
            skipped: bool = typer.Option(False, "--skipped", help="Print the skipped items instead."),
            limit: int | None = typer.Option(None, "--limit", "-n", help="At most this many records.")):
    """Print a stage's records as JSON lines (the docs/design.md §2 schema)."""
    from .status import iter_stage_records

    def emit():
        for i, record in enumerate(iter_stage_records(run, stage, skipped)):
            if limit is not None and i >= limit:
                break
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")

    _run(emit)


@app.command()
def report(run: Path = typer.Argument(..., help="A run directory."),
           output: Path | None = typer.Option(None, "-o", "--output", help="HTML file (default RUN/report.html)."),
           evaluation: list[Path] = typer.Option([], "--eval", help="An evaluation folder to include (repeatable)."),
           comparison: list[Path] = typer.Option([], "--compare", help="A compare report JSON to include (repeatable)."),
           qa_sample: int = typer.Option(3, "--qa-sample", min=0, help="Kept and dropped QA items shown per type.")):
    """Write one self-contained HTML report of RUN: yield, distributions, QA (with a sample of items to read and
    listen to; the clip audio is linked relative to the report, not embedded), evaluation, costs."""
    from .report.html import build_report

    path = _run(build_report, run, output, evaluation, comparison, qa_sample)
    out.print(f"Report: {path}", highlight=False)


@list_app.command("stages")
def list_stages():
    """Registered stages."""
    from . import pipeline  # noqa: F401
    from .registry import STAGES

    table = Table("stage", "takes", "gives", "description")
    for name in STAGES.names():
        cls = STAGES.get(name)
        table.add_row(name, cls.input_type.__name__, cls.output_type.__name__, STAGES.entries[name].description)
    out.print(table)


@list_app.command("backends")
def list_backends():
    """Registered backends per capability, with the extra each needs."""
    from . import pipeline  # noqa: F401
    from .registry import BACKENDS

    table = Table("capability", "backend", "extra", "description")
    for capability in sorted(BACKENDS):
        for name, entry in sorted(BACKENDS[capability].entries.items()):
            table.add_row(capability, name, entry.extra or "-", entry.description)
    out.print(table)


@list_app.command("recipes")
def list_recipes():
    """Packaged recipes."""
    from .recipe import load_recipe, packaged_recipes

    table = Table("recipe", "stages", "documentation")
    for name in sorted(packaged_recipes()):
        r = _run(load_recipe, name)
        table.add_row(name, " → ".join(r.stage_names()), r.documentation)
    out.print(table)


def _mount_sub_apps() -> None:
    from .condense.cli import calibrate_command
    from .evaluate.cli import compare_cmd, evaluate_cmd
    from .export.cli import export_cmd, finetune_cmd
    from .labels.cli import app as probe_app
    from .review.cli import app as review_app

    app.add_typer(review_app, name="review")
    app.add_typer(probe_app, name="probe")
    app.command("calibrate")(calibrate_command)
    app.command("evaluate")(evaluate_cmd)
    app.command("compare")(compare_cmd)
    app.command("export")(export_cmd)
    app.command("finetune")(finetune_cmd)


_mount_sub_apps()

if __name__ == "__main__":
    app()
