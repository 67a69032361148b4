"""`cpqa export` and `cpqa finetune`: thin typer commands over `cpqa.export` and `cpqa.finetune`
(mounted by `cpqa.cli`). Library imports happen inside the commands, so `cpqa --help` stays fast."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table


def export_cmd(
    source: Path = typer.Argument(..., help="A run directory, or an exported QA JSONL (audio in metadata.audio)."),
    fmt: str = typer.Option(..., "--format", "-f", help="hf, ms-swift, llamafactory, qwen2-audio or jsonl."),
    output: Path = typer.Option(..., "-o", "--output", help="The export folder (new, empty, or an earlier export)."),
    splits: str = typer.Option("train=0.8,dev=0.1,test=0.1", "--splits",
                               help="Shares of the QA items per split, name=share,… (or up to three bare shares)."),
    split_seed: str = typer.Option("cpqa", "--split-seed", help="Salt of the split hash."),
    by_speaker: bool = typer.Option(True, "--by-speaker/--by-recording-only",
                                    help="Keep recordings that share a speaker in one split; turn off when speaker "
                                         "ids are local to each recording (diarization labels)."),
    explicit: bool = typer.Option(False, "--explicit", help="Give the clip's labels in the prompt (emotion, gender, "
                                                             "speakers), as the explicit method of arXiv 2508.07273."),
    multi_turn: str = typer.Option("conversation", "--multi-turn", help="conversation (all turns of an item in one "
                                                                        "example) or first (the first turn only)."),
    system: str = typer.Option("You are a helpful assistant.", "--system", help="The system message; '' for none."),
    audio_paths: str = typer.Option("absolute", "--audio-paths", help="absolute, relative (to OUTPUT), or copy "
                                                                      "(into OUTPUT/audio). hf embeds the audio."),
    include_failed: bool = typer.Option(False, "--include-failed", help="Export items the QA filters failed too."),
    clips: Path | None = typer.Option(None, "--clips", help="A run or clips JSONL giving a QA file its clip "
                                                                "records (recordings, speakers, labels)."),
    name: str = typer.Option("cpqa", "--name", help="Dataset name prefix (llamafactory's dataset_info.json)."),
):
    """Export a run's QA (items that passed the filters) as training data, split into train/dev/test
    with no recording and no speaker in two splits."""
    from ..cli import _run, out
    from .export import export, parse_splits

    result = _run(export, source, fmt, output, clips=clips, splits=_run(parse_splits, splits), split_seed=split_seed,
                  split_by_speaker=by_speaker, explicit=explicit, multi_turn=multi_turn, system=system or None,
                  audio_paths=audio_paths, include_failed=include_failed, dataset_name=name)
    table = Table(title=f"{fmt} export in {output}", title_justify="left")
    for col in ("split", "items", "clips", "recordings", "speakers", "audio h"):
        table.add_column(col, justify="left" if col == "split" else "right")
    for split, s in result.summary["splits"].items():
        table.add_row(split, str(s["items"]), str(s["clips"]), str(s["recordings"]), str(s["speakers"]),
                      f"{s['audio_hours']:.2f}")
    out.print(table)
    if result.summary["skipped"]:
        left = ", ".join(f"{reason}: {n}" for reason, n in result.summary["skipped"].items())
        out.print(f"left out: {left}", highlight=False)
