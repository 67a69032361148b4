"""`cpqa export` and `cpqa finetune`: thin typer commands over `cpqa.export` and `cpqa.finetune`.
Library imports happen inside the commands, so `cpqa --help` stays fast."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ..registry import EXPORT_FORMATS
from .evaluate import judge_spec, options
from .ui import RichProgress, fmt, out, run_or_exit, setup_logging


def export_cmd(
    source: Path = typer.Argument(..., help="A run directory, or an exported QA JSONL (audio in metadata.audio)."),
    fmt: str = typer.Option(..., "--format", "-f", help=f"One of: {', '.join(EXPORT_FORMATS.names())}."),
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
    long_audio: str = typer.Option("split", "--long-audio", help="Clips longer than the model's window: split (each "
                                                                  "item with the window its evidence lies in) or drop "
                                                                  "(the first window only); unheard items are left out."),
    window_s: float | None = typer.Option(None, "--window-s", help="Seconds the model hears at once (default: the "
                                                                      "format's; 30 s for Qwen2-Audio)."),
    clips: Path | None = typer.Option(None, "--clips", help="A run or clips JSONL giving a QA file its clip "
                                                                "records (recordings, speakers, labels)."),
    name: str = typer.Option("cpqa", "--name", help="Dataset name prefix (llamafactory's dataset_info.json)."),
):
    """Export a run's QA (items that passed the filters) as training data, split into train/dev/test
    with no recording and no speaker in two splits."""
    from ..export import export, parse_splits

    result = run_or_exit(export, source, fmt, output, clips=clips, splits=run_or_exit(parse_splits, splits), split_seed=split_seed,
                  split_by_speaker=by_speaker, explicit=explicit, multi_turn=multi_turn, system=system or None,
                  audio_paths=audio_paths, include_failed=include_failed, long_audio=long_audio, window_s=window_s,
                  dataset_name=name)
    table = Table(title=f"{fmt} export in {output}", title_justify="left")
    for col in ("split", "items", "clips", "recordings", "speakers", "audio h"):
        table.add_column(col, justify="left" if col == "split" else "right")
    for split, s in result.summary["splits"].items():
        table.add_row(split, str(s["items"]), str(s["clips"]), str(s["recordings"]), str(s["speakers"]),
                      f"{s['audio_hours']:.2f}")
    out.print(table)
    heard = result.summary["heard"]
    if heard["window_s"] is not None:
        dropped = ", ".join(f"{reason}: {n}" for reason, n in heard["dropped"].items()) or "none"
        out.print(f"heard window {heard['window_s']:g} s ({heard['long_audio']}): {heard['items_whole']} item(s) "
                  f"heard whole; {heard['items_in_windows']} item(s) of {heard['clips_split']} longer clip(s) split "
                  f"into {heard['windows_written']} window(s); dropped: {dropped}", highlight=False)
    if result.summary["skipped"]:
        left = ", ".join(f"{reason}: {n}" for reason, n in result.summary["skipped"].items())
        out.print(f"left out: {left}", highlight=False)


FINETUNE_HELP = """LoRA fine-tuning of Qwen2-Audio on an export (ms-swift or qwen2-audio format), with
the audio encoder frozen, gradient checkpointing and bf16 on GPU; checkpoints every --save-steps and
a rerun resumes from the last one. With --eval-qa and --judge the fine-tuned model (and the base
model) is then evaluated as `cpqa evaluate` does, scores in OUTPUT/finetune.json.

\b
A real run on one GPU:
  cpqa export RUN --format ms-swift -o EXPORT
  cpqa export RUN --format jsonl -o EXPORT_QA
  cpqa finetune EXPORT -o FT --model Qwen/Qwen2-Audio-7B-Instruct \\
      --batch-size 4 --grad-accum 4 --lr 1e-4 --epochs 3 --lora-r 16 \\
      --eval-qa EXPORT_QA/test.jsonl --judge openai --judge-model gpt-4o

\b
Expected memory (estimated, not yet measured on a GPU), bf16, LoRA r=16:
  weights   8.4 B parameters in bf16: 15.6 GiB
  LoRA      ~40 M trainable parameters with AdamW states: ~0.7 GiB
  batch 4   of 30 s clips (~900 tokens each): ~2 GiB of checkpointed
            activations + ~5 GiB for the 156 k-vocabulary logits and loss
  total     25-30 GiB at --batch-size 4 (a 40-80 GB card);
            --batch-size 1 --grad-accum 16 fits a 24 GB card

The paper-scale set (33 k QA pairs) is about 6 k optimizer steps for 3 epochs at an effective batch of 16.
"""


def finetune_cmd(
    data: Path = typer.Argument(..., help="An export folder (train.jsonl, dev.jsonl) or a JSONL, in the ms-swift "
                                          "or qwen2-audio format."),
    output: Path = typer.Option(..., "-o", "--output", help="The fine-tuning folder (created or resumed)."),
    model: str = typer.Option("Qwen/Qwen2-Audio-7B-Instruct", "--model", "-m", help="A Hugging Face id or folder."),
    epochs: float = typer.Option(3.0, "--epochs", help="Passes over the training split."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Optimizer steps in all (overrides --epochs)."),
    batch_size: int = typer.Option(4, "--batch-size", help="Examples per device per step."),
    grad_accum: int = typer.Option(4, "--grad-accum", help="Steps accumulated per optimizer step."),
    lr: float = typer.Option(1e-4, "--lr", help="Peak learning rate (cosine schedule, 3 % warm-up)."),
    lora_r: int = typer.Option(16, "--lora-r", help="LoRA rank (alpha = 2 r unless set with --set)."),
    train_audio_encoder: bool = typer.Option(False, "--train-audio-encoder", help="Adapt the audio encoder too."),
    save_steps: int = typer.Option(200, "--save-steps", help="Optimizer steps between checkpoints."),
    settings: list[str] = typer.Option([], "--set", help="Any other option, key=value (repeatable): lora_alpha, "
                                                         "max_length, long_audio, max_audio_s, train_projector, "
                                                         "device, dtype, local_files_only, seed …"),
    eval_qa: Path | None = typer.Option(None, "--eval-qa", help="QA to evaluate on afterwards (a jsonl export's "
                                                                   "test.jsonl, a human set, a run)."),
    judge: str = typer.Option("llamacpp", "--judge", help="The judge's LLM backend (openai, llamacpp, vllm)."),
    judge_model: str | None = typer.Option(None, "--judge-model", help="The judge model; unset: the backend's default."),
    judge_set: list[str] = typer.Option([], "--judge-set", help="A judge backend option, key=value (repeatable)."),
    eval_base: bool = typer.Option(True, "--eval-base/--no-eval-base", help="Evaluate the base model too."),
    merge: bool | None = typer.Option(None, "--merge/--no-merge", help="Also save base + adapter merged in "
                                                                       "OUTPUT/merged (default: when evaluating)."),
    resume: bool = typer.Option(True, "--resume/--restart", help="Resume from the last checkpoint in OUTPUT."),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Log the losses and progress details."),
):
    from ..finetune import finetune

    setup_logging(verbose)
    config = {"model": model, "epochs": epochs, "max_steps": max_steps, "batch_size": batch_size,
              "grad_accum": grad_accum, "learning_rate": lr, "lora_r": lora_r, "lora_alpha": 2 * lora_r,
              "train_audio_encoder": train_audio_encoder, "save_steps": save_steps, **run_or_exit(options, settings, "--set")}
    judge_given = run_or_exit(judge_spec, judge, judge_model, judge_set) if eval_qa is not None else None
    with RichProgress() as hook:
        result = run_or_exit(finetune, data, output, eval_qa=eval_qa, judge=judge_given, eval_base=eval_base, merge=merge,
                      resume=resume, progress=hook, **config)
    first, last = (result.losses[0][1], result.losses[-1][1]) if result.losses else (None, None)
    loss = f"loss {first:.4f} → {last:.4f}" if first is not None else "no loss logged"
    dev = f", dev loss {result.eval_loss:.4f}" if result.eval_loss is not None else ""
    out.print(f"{result.steps} optimizer steps, {loss}{dev}; adapter in {result.adapter}", highlight=False)
    if result.evaluations:
        table = Table(title="Evaluation", title_justify="left")
        for col in ("model", "score", "UAS", "judge success"):
            table.add_column(col, justify="left" if col == "model" else "right")
        for name, s in result.evaluations.items():
            table.add_row(name, fmt(s["score"], 2), fmt(s["uas"], 2),
                          "-" if s["success_rate"] is None else f"{s['success_rate']:.0%}")
        out.print(table)


finetune_cmd.__doc__ = FINETUNE_HELP
