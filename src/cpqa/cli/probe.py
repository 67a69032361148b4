"""`cpqa probe`: train and evaluate probe heads on pooled Whisper encoder features or GE2E speaker
embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .ui import out, run_or_exit

app = typer.Typer(help="Train and evaluate probe heads (emotion, gender, ...) on pooled Whisper encoder features.",
                  no_args_is_help=True)

MANIFEST_HELP = ("CSV with a file column (paths relative to the CSV), the label column and a speaker column; "
                 "optional start_s/end_s select a span. Repeat to combine manifests.")


def _features(manifests: list[Path], label_column: str, speaker_column: str, file_column: str,
              label_map: str | None, min_duration: float, pooling: str, pack: str, work_dir: Path | None,
              encoder: str):
    from ..audio.speaker_embedding import GE2E_MODEL
    from ..labels.encoder import WhisperEncoder
    from ..labels.probe_features import extract_features, extract_ge2e_features
    from ..labels.probe_manifest import parse_label_map, read_manifest
    from ..models import cache_dir

    mapping = parse_label_map(label_map)
    examples = []
    for manifest in manifests:
        examples += [e for e in read_manifest(manifest, label_column, speaker_column, file_column, mapping)
                     if e.start is None or e.end - e.start >= min_duration]
    work_dir = work_dir or cache_dir() / "probe"
    if encoder == GE2E_MODEL:
        return extract_ge2e_features(examples, work_dir)
    return extract_features(examples, work_dir, WhisperEncoder(encoder), pooling=pooling, pack=pack)


def _show(result: dict, title: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    out.print(f"[bold]{title}[/bold]: n={result['n']}  UA={result['ua']:.3f}  WA={result['wa']:.3f}  "
              f"macro-F1={result['macro_f1']:.3f}")
    table = Table("truth \\ predicted", *result["classes"])
    for name, row in zip(result["classes"], result["confusion"]):
        table.add_row(name, *map(str, row))
    out.print(table)
    for source, scores in result.get("by_source", {}).items():
        out.print(f"  {escape(source)}: n={scores['n']}  UA={scores['ua']:.3f}  WA={scores['wa']:.3f}  "
                  f"macro-F1={scores['macro_f1']:.3f}")


@app.command()
def train(
    manifest: list[Path] = typer.Option(..., "--manifest", "-m", help=MANIFEST_HELP),
    label_column: str = typer.Option(..., help="Column holding the class label."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the head (.npz)."),
    speaker_column: str = typer.Option("speaker", help="Column naming the speaker (for held-out folds)."),
    file_column: str = typer.Option("file"),
    label_map: str | None = typer.Option(None, help="'emotion2vec' or pairs like calm=neutral,anger=angry; "
                                                        "labels outside a map are dropped."),
    normalize: str = typer.Option("none", help="none, or speaker: standardise features per speaker."),
    pooling: str = typer.Option("mean", help="mean or mean+std of the window's encoder frames."),
    pack: str = typer.Option("speaker", help="speaker: play a speaker's whole-file clips one after another "
                                             "into 30-s encoder passes; none: encode each file alone; both."),
    min_duration: float = typer.Option(0.0, help="Drop spans (start_s/end_s rows) shorter than this (s)."),
    name: str | None = typer.Option(None, help="Head name recorded as its model id (default: file stem)."),
    cv: bool = typer.Option(True, help="Also score leave-speakers-out and store it in the head."),
    folds: int = typer.Option(0, help="Speaker folds of that score (0 = leave one speaker out)."),
    work_dir: Path | None = typer.Option(None, help="Feature cache (default: the cpqa cache)."),
    encoder: str = typer.Option("embedded:base", help="CTranslate2 Whisper model whose encoder gives the features, "
                                                      "or resemblyzer-ge2e for GE2E speaker embeddings (gender)."),
):
    """Train a head on a labelled manifest; C is chosen by leave-speakers-out UA."""
    from ..audio.speaker_embedding import GE2E_MODEL
    from ..labels.probe import cross_validate
    from ..labels.probe import train as train_head

    def fit():
        fs = _features(manifest, label_column, speaker_column, file_column, label_map, min_duration, pooling, pack,
                       work_dir, encoder)
        ge2e = encoder == GE2E_MODEL
        meta = {"name": name or output.stem, "encoder": encoder, "pooling": "partials-mean" if ge2e else pooling,
                "pack": "none" if ge2e else pack,
                "label_column": label_column, "label_map": label_map, "center_s": 2.0, "context_s": 1.0,
                "training_data": [f"{m.resolve().parent.name}/{m.name}" for m in manifest]}
        if cv:
            result = cross_validate(fs, normalize, folds=folds)
            meta["leave_speakers_out"] = {k: result[k] for k in ("n", "ua", "wa", "macro_f1", "folds")}
            meta["leave_speakers_out"]["by_source"] = {
                src: {k: scores[k] for k in ("n", "ua", "wa", "macro_f1")}
                for src, scores in result.get("by_source", {}).items()}
            _show(result, "leave-speakers-out")
        return train_head(fs, normalize, meta=meta)

    head = run_or_exit(fit)
    head.save(output)
    typer.echo(f"wrote {output} ({len(head.labels)} classes: {', '.join(head.labels)}; C={head.meta['C']})")


@app.command("eval")
def evaluate(
    manifest: list[Path] = typer.Option(..., "--manifest", "-m", help=MANIFEST_HELP),
    label_column: str = typer.Option(..., help="Column holding the class label."),
    head: str | None = typer.Option(None, help="A trained head (path or builtin:NAME) to score on the "
                                                  "manifest; without it, leave-speakers-out training and scoring."),
    speaker_column: str = typer.Option("speaker"),
    file_column: str = typer.Option("file"),
    label_map: str | None = typer.Option(None, help="'emotion2vec' or pairs like calm=neutral."),
    normalize: str = typer.Option("none", help="Without --head: none or speaker."),
    pooling: str = typer.Option("mean", help="Without --head: mean or mean+std."),
    pack: str = typer.Option("speaker", help="speaker, none or both (see train)."),
    folds: int = typer.Option(0, help="Without --head: speaker folds (0 = leave one speaker out)."),
    encoder: str = typer.Option("embedded:base", help="Without --head: the features' encoder (see train)."),
    min_duration: float = typer.Option(0.0),
    work_dir: Path | None = typer.Option(None),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the scores as JSON."),
):
    """Score a head: UA (mean per-class recall), WA (accuracy), macro-F1, confusion matrix."""
    from ..labels.heads import ProbeHead, resolve_head
    from ..labels.probe import cross_validate
    from ..labels.probe import evaluate as evaluate_head

    def score():
        if head:
            trained = ProbeHead.load(resolve_head(head))
            fs = _features(manifest, label_column, speaker_column, file_column, label_map, min_duration,
                           trained.pooling, pack, work_dir, trained.encoder)
            return evaluate_head(trained, fs), f"{trained.name} on {len(fs.labels)} examples"
        fs = _features(manifest, label_column, speaker_column, file_column, label_map, min_duration, pooling,
                       pack, work_dir, encoder)
        result = cross_validate(fs, normalize, folds=folds)
        return result, f"leave-speakers-out ({result['folds']} folds, normalize={normalize})"

    result, title = run_or_exit(score)
    _show(result, title)
    if json_out:
        json_out.write_text(json.dumps(result, indent=2) + "\n")
