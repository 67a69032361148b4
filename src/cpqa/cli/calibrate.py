"""`cpqa calibrate`: label a human-labelled dev set, then grid-search the condensation thresholds.
`app` is the same command as a stand-alone typer app."""

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
    min_kept_share: float = typer.Option(0.1, "--min-kept-share", help="Only settings keeping at least this share of all items compete (no per-class floor: a class with nothing kept scores 0 in UA)."),
    ambiguous_min_score: float = typer.Option(0.5, "--ambiguous-min-score", help="Confidence that keeps a surprised window."),
    write_recipe: Path | None = typer.Option(None, "--write-recipe", help="Write the best x, y, k, r into this recipe's condense stage."),
):
    """Label the dev set with the recipe, grid-search x, y (and the occurrence thresholds) for the
    best unweighted accuracy (UA) of the kept pseudo-labels, print the result as JSON and save a
    heat map. UA averages recall over every class of the labelled set (a class with nothing kept
    scores 0); the best setting is the highest UA among those keeping --min-kept-share of the items.
    Tables on stderr show, for each (x, y), the UA of the kept windows vs all windows (abstentions
    count as errors) and the share kept, and per class the recall and coverage at the best setting."""
    from ..condense.calibrate_run import calibrate_run, write_recipe_thresholds
    from ..run import build
    from .ui import console, run_or_exit

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

    report = run_or_exit(go)
    for table in calibration_tables(report):
        console.print(table)
    if report["unmappable"]:
        console.print(f"[yellow]warning:[/] labels with no mapping were left out: {report['unmappable']} "
                      "(map them with --mapping FILE)", highlight=False)
    typer.echo(json.dumps(report, ensure_ascii=False))


app.command("calibrate")(calibrate_command)


def calibration_tables(report: dict):
    """Rich tables of a calibration report: kept vs all windows for each (x, y) (with the items at
    the best k, r), and per class the recall and coverage at the best setting."""
    from rich.table import Table

    grid = report["grid"]
    k, r = report["min_windows"], report["min_window_share"]
    points = Table("x", "y", "UA kept windows", "UA all windows", "windows kept", f"UA kept items (k={k}, r={r:g})",
                   "items kept", title="calibrate: each (x, y)", title_justify="left")
    for row, y in enumerate(grid["ys"]):
        for col, x in enumerate(grid["xs"]):
            if grid["ua"][row][col] is None:
                continue
            best = "*" if (x, y) == (report["x"], report["y"]) else ""
            points.add_row(f"{x:.2f}{best}", f"{y:.2f}", f"{grid['window_ua'][row][col]:.3f}",
                           f"{report['window_ua_all']:.3f}", f"{grid['window_kept_share'][row][col]:.0%}",
                           f"{grid['ua'][row][col]:.3f}", f"{grid['kept_share'][row][col]:.0%}")
    classes = Table("class", "recall kept items", "items kept", "recall kept windows", "windows kept",
                    "recall all windows", title="calibrate: per class at the best setting (* above)",
                    title_justify="left")
    for name in report["recalls"]:
        classes.add_row(name, f"{report['recalls'][name]:.3f}", f"{report['coverage'][name]:.0%}",
                        f"{report['window_recalls'][name]:.3f}", f"{report['window_coverage'][name]:.0%}",
                        f"{report['window_recalls_all'][name]:.3f}")
    return points, classes
