"""`cpqa evaluate` and `cpqa compare`: thin typer commands over `cpqa.evaluate`. Library imports
happen inside the commands, so `cpqa --help` stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from .ui import RichProgress, console, fmt, out, run_or_exit, setup_logging


def options(pairs: list[str], what: str) -> dict[str, Any]:
    """`key=value` pairs (dotted keys nest, values are YAML) as a dict."""
    import yaml

    from ..errors import CPQAError

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CPQAError(f"{what} takes key=value, got '{pair}'")
        *parents, leaf = key.strip().split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise CPQAError(f"{what}: '{key}' sets a field inside a value")
        node[leaf] = yaml.safe_load(value) if value.strip() else ""
    return out


def judge_spec(judge: str, judge_model: str | None, judge_set: list[str]) -> dict[str, Any]:
    """The judge backend `{name, **options}` that --judge, --judge-model and --judge-set give."""
    spec = {"name": judge, **options(judge_set, "--judge-set")}
    if judge_model:
        spec["model"] = judge_model
    return spec


def _groups_table(title: str, groups: dict[str, dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in (title.split()[-1], "score", "items", "scored", "success"):
        table.add_column(col, justify="left" if col == title.split()[-1] else "right")
    for name, g in groups.items():
        table.add_row(name, fmt(g["score"]), str(g["n_items"]), str(g["n_scored"]),
                      "-" if g["success_rate"] is None else f"{g['success_rate']:.0%}")
    return table


def evaluate_cmd(
    qa: Path = typer.Argument(..., help="A run directory, an exported QA JSONL, or a human QA set (CSV/JSONL)."),
    output: Path = typer.Option(..., "-o", "--output", help="The evaluation directory (created or resumed)."),
    model: str = typer.Option(..., "--model", "-m", help="The speech-LLM adapter: qwen2-audio, qwen2-audio-vllm, "
                                                           "openai-audio, cascade, cascade-labels (cpqa list backends)."),
    model_set: list[str] = typer.Option([], "--model-set", help="An adapter option, key=value (repeatable; "
                                                                 "dotted keys nest: llm.name=openai)."),
    judge: str = typer.Option("llamacpp", "--judge", help="The judge's LLM backend (openai, llamacpp, vllm)."),
    judge_model: str | None = typer.Option(None, "--judge-model", help="The judge model; unset: the backend's default."),
    judge_set: list[str] = typer.Option([], "--judge-set", help="A judge backend option, key=value (repeatable)."),
    rubric: str = typer.Option("reference", "--rubric", help="reference (accuracy vs the reference) or "
                                                             "paralinguistic (credits emotion/speaker/context)."),
    judge_runs: int = typer.Option(1, "--judge-runs", help="Judge runs per answer, averaged (CP-Bench used 5)."),
    judge_temperature: float = typer.Option(0.0, "--judge-temperature", help="Judge sampling temperature."),
    long_audio: str = typer.Option("split", "--long-audio", help="Clips over --max-audio-s: split (hear the window "
                                                                  "the item's evidence lies in), drop (hear the first "
                                                                  "window; items about later audio are left out) or "
                                                                  "chunk (hear every piece)."),
    max_audio_s: float = typer.Option(30.0, "--max-audio-s", help="Longest audio heard in one piece, in seconds."),
    clips: Path | None = typer.Option(None, "--clips", help="A run or clips JSONL giving clip words and labels "
                                                                "to a QA file (cascade models, per-emotion results)."),
    cache: Path | None = typer.Option(None, "--cache", help="Folder of the answer and judgement caches "
                                                               "(default: OUTPUT); share it between evaluations."),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Log progress details."),
):
    """Have a speech-LLM answer every question of QA, an LLM judge rate the answers, and write the
    scores per item, type and emotion with UAS. Cached answers are never asked again."""
    from ..evaluate.evaluation import evaluate

    setup_logging(verbose)
    model_spec = {"name": model, **run_or_exit(options, model_set, "--model-set")}
    judge_given = run_or_exit(judge_spec, judge, judge_model, judge_set)
    with RichProgress() as hook:
        result = run_or_exit(evaluate, qa, output, model=model_spec, judge=judge_given, rubric=rubric,
                      n_judge_runs=judge_runs, judge_temperature=judge_temperature, long_audio=long_audio,
                      max_audio_s=max_audio_s, clips=clips, cache_dir=cache, progress=hook)
    s = result.summary
    out.print(_groups_table("Scores per type", s["per_type"]))
    out.print(_groups_table("Scores per emotion", s["per_emotion"]))
    success = "-" if s["success_rate"] is None else f"{s['success_rate']:.1%}"
    out.print(f"{s['model']['model']} on {s['n_items']} item(s), judged by {s['judge']['model']} "
              f"({s['judge']['rubric']} rubric v{s['judge']['rubric_version']}, {s['judge']['n_runs']} run(s)):",
              highlight=False)
    out.print(f"score {fmt(s['score'], 2)}   UAS {fmt(s['uas'], 2)}   judge success rate {success}", highlight=False)
    if s["long_audio"]["dropped_items"]:
        console.print(f"[yellow]warning:[/] not asked (about audio past the {max_audio_s:g} s heard at once): "
                      f"{s['long_audio']['dropped_items']}", highlight=False, soft_wrap=True)
    if s["answer_failures"]:
        console.print(f"[yellow]warning:[/] unanswered: {s['answer_failures']}", highlight=False, soft_wrap=True)
    if s["judge"]["small_judge_warning"]:
        console.print(f"[yellow]warning:[/] {s['judge']['small_judge_warning']}", highlight=False, soft_wrap=True)
    calls = s["calls"]
    out.print(f"{calls['speechllm_queries']} speech-LLM queries and {calls['judge_requests']} judge requests made; "
              f"results in {output}/results.json, items.jsonl, predictions.jsonl", highlight=False)


def compare_cmd(
    eval_a: Path = typer.Argument(..., help="An evaluation directory."),
    eval_b: Path | None = typer.Argument(None, help="A second evaluation directory (or use --human-ratings)."),
    by: str = typer.Option("clip", "--by", help="The unit matched across sides: item, clip, type or emotion."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write the scatter plot and JSON report here."),
    human_ratings: Path | None = typer.Option(None, "--human-ratings", help="CSV/JSONL of qa_id, rating (0-5) "
                                                                               "to compare EVAL_A's judge with."),
    bootstrap: int = typer.Option(2000, "--bootstrap", help="Bootstrap resamples for the 95 % intervals."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
):
    """Correlate two evaluations (generated vs human QA, judge vs judge) or a judge with human
    ratings, on the units both sides scored: Pearson and Spearman r with bootstrap 95 % CIs."""
    from ..evaluate.comparison import compare

    report = run_or_exit(compare, eval_a, eval_b, by=by, human_ratings=human_ratings, out_dir=output, n_boot=bootstrap,
                  seed=seed)
    table = Table(title=f"{report['n_units']} {by} unit(s) in both ({report['only_a']} only in A, "
                        f"{report['only_b']} only in B)", title_justify="left")
    for col in ("", "mean score", "r", "95 % CI"):
        table.add_column(col, justify="left" if not col else "right")
    table.add_row(f"A  {report['a']['label']}", fmt(report["a"]["mean_score"], 2), "", "")
    table.add_row(f"B  {report['b']['label']}", fmt(report["b"]["mean_score"], 2), "", "")
    for name in ("pearson", "spearman"):
        stat = report[name]
        ci = stat["ci95"]
        table.add_row(name.capitalize(), "", fmt(stat["r"], 3), "-" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]")
    out.print(table)
    for name in ("pearson", "spearman"):
        if report[name].get("note"):
            out.print(f"{name}: {report[name]['note']}", highlight=False)
    if report["agreement"]:
        a = report["agreement"]
        kappa = fmt(a["quadratic_kappa"], 3)
        out.print(f"rating agreement on {a['n']} shared item(s): exact {a['exact']:.1%}, within 1 point "
                  f"{a['within_1']:.1%}, mean |diff| {a['mean_abs_diff']:.2f}, quadratic kappa {kappa}", highlight=False)
    if output is not None:
        out.print(f"Wrote {report['plot']} and {Path(output) / f'compare-{by}.json'}", highlight=False)
