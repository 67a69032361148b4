"""`cpqa calibrate`: label a human-labelled dev set, then grid-search the condensation thresholds.

Mount it in cpqa.cli with `app.command("calibrate")(calibrate_command)`; `app` below is the same
command as a stand-alone typer app.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Calibrate the condensation thresholds.")


def calibrate_command(
    manifest: Path = typer.Option(..., "--manifest", help="The dev set: a CSV/JSONL manifest with human labels."),
    label_column: str = typer.Option("emotion", "--label-column", help="The manifest column holding the human emotion label."),
    output: Path = typer.Option(Path("calibration"), "-o", "--output", help="Folder for the labelled run, calibration.json and heatmap.png."),
    recipe: str = typer.Option("local", "--recipe", "-r", help="The recipe that labels the dev set (run until --stage)."),
    set_: list[str] = typer.Option([], "--set", help="Override a recipe parameter: stage.param=value (repeatable)."),
    stage: str = typer.Option("annotate", "--stage", help="The stage whose segments carry the windows."),
    run: Path | None = typer.Option(None, "--run", help="Use this already labelled run instead of building OUTPUT/run."),
    mapping: Path | None = typer.Option(None, "--mapping", help="YAML/JSON `corpus_label: vocabulary_label` (null excludes)."),
    min_kept_share: float = typer.Option(0.1, "--min-kept-share", help="Only settings keeping at least this share of items compete."),
    ambiguous_min_score: float = typer.Option(0.5, "--ambiguous-min-score", help="Confidence that keeps a surprised window."),
    write_recipe: Path | None = typer.Option(None, "--write-recipe", help="Write the best x, y, k, r into this recipe's condense stage."),
):
    """Label the dev set with the recipe, grid-search x, y (and the occurrence thresholds) for the
    best unweighted accuracy of the kept pseudo-labels, print the result as JSON and save a heat map."""
    from ..cli import _run, console
    from ..run import build
    from .calibrate import calibrate_run, write_recipe_thresholds

    def go() -> dict:
        run_dir = run
        if run_dir is None:
            run_dir = output / "run"
            build(manifest, run_dir, recipe, overrides=set_, until=stage)
        report = calibrate_run(run_dir, manifest, label_column, output, stage=stage, mapping_file=mapping,
                               min_kept_share=min_kept_share, ambiguous_min_score=ambiguous_min_score)
        if write_recipe is not None:
            write_recipe_thresholds(write_recipe, report)
        return report

    report = _run(go)
    if report["unmappable"]:
        console.print(f"[yellow]warning:[/] labels with no mapping were left out: {report['unmappable']} "
                      "(map them with --mapping FILE)", highlight=False)
    typer.echo(json.dumps(report, ensure_ascii=False))


app.command("calibrate")(calibrate_command)


def distribution_table(counters: dict, title: str = "condense: before → after"):
    """A rich table of the condense stage's before/after distributions (for `cpqa build`/`status`)."""
    from rich.table import Table

    from .stats import before_after

    table = Table("dimension", "value", "before", "after", title=title, title_justify="left")
    for dimension, values in before_after(counters).items():
        for value, (before, after) in values.items():
            table.add_row(dimension, value, f"{before:g}", f"{after:g}")
    return table
