"""LoRA supervised fine-tuning of Qwen2-Audio (or another HF speech-LLM with its processor API) on
an export, then an evaluation of the result (and of the base model) with `cpqa.evaluate`.

    OUT/
      checkpoints/checkpoint-N/   Trainer checkpoints (adapter, optimizer, scheduler, RNG, data
                                  position); a rerun resumes from the last one
      adapter/                    the LoRA adapter and the processor (PeftModel.from_pretrained)
      merged/                     base + adapter merged, with the processor: a plain model folder
                                  that `cpqa evaluate --model qwen2-audio` loads (when evaluating)
      eval/finetuned/, eval/base/ the evaluations
      finetune.json               config, data sizes, loss history, evaluation scores

Why the Hugging Face Trainer rather than a loop of our own: checkpoints that restore optimizer,
scheduler, RNG and the data position; gradient accumulation, bf16 autocast, gradient checkpointing,
cosine schedule with warm-up, dev-set loss, and multi-GPU (torchrun / accelerate) all come tested,
and peft adapters save and resume through it. What is ours is the data: chats rendered with the
processor's template, audio cut as the evaluation cuts it, and labels masked to assistant turns.

The base model stays frozen; LoRA adapts the language model's attention and MLP projections. The
audio encoder is frozen unless `train_audio_encoder` (then LoRA adapts its attention and MLP too);
`train_projector` trains the audio-to-text projector in full.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ..errors import CPQAError, require
from ..evaluate.heard import LongAudio
from ..evaluate.qwen2_audio import QWEN2_AUDIO_INSTRUCT, torch_device, torch_dtype
from ..stage import Config, ProgressHook
from .data import ChatDataset, collate, heard_chats, read_chats, split_file

logger = logging.getLogger(__name__)

LANGUAGE_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
AUDIO_TARGETS = r".*audio_tower.*\.(q_proj|k_proj|v_proj|out_proj|fc1|fc2)"
PROJECTOR = "multi_modal_projector"
SUMMARY = "finetune.json"


class FinetuneConfig(Config):
    model: str = Field(QWEN2_AUDIO_INSTRUCT, description="A Hugging Face id or a local folder.")
    revision: str | None = Field(None, description="A hub revision (branch, tag or commit).")
    local_files_only: bool = Field(False, description="Never download (offline use of a cached model).")
    model_class: str = Field("Qwen2AudioForConditionalGeneration", description="The transformers model class.")
    lora_r: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, description="LoRA alpha (scale = alpha / r).")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA path.")
    train_audio_encoder: bool = Field(False, description="Adapt the audio encoder with LoRA too (frozen by default).")
    train_projector: bool = Field(False, description="Train the audio projector in full.")
    epochs: float = Field(3.0, gt=0, description="Passes over the training split.")
    max_steps: int | None = Field(None, ge=1, description="Optimizer steps in all; overrides epochs.")
    batch_size: int = Field(4, ge=1, description="Examples per device per step.")
    grad_accum: int = Field(4, ge=1, description="Steps accumulated per optimizer step.")
    learning_rate: float = Field(1e-4, gt=0, description="Peak learning rate.")
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="Share of the steps spent warming up.")
    lr_scheduler: str = Field("cosine", description="A transformers scheduler name (cosine, linear, constant …).")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_length: int = Field(2048, ge=16, description="Longest example in tokens (30 s of audio is 750 tokens).")
    long_audio: LongAudio = Field("split", description=(
        "Audio over max_audio_s (cpqa.evaluate.heard, as evaluated): split or drop leave such a chat out (it names "
        "no evidence to place it; cpqa export has already cut clips into heard windows); chunk hears every piece."))
    max_audio_s: float = Field(30.0, gt=0, description="Longest audio piece, in seconds (Qwen2-Audio hears 30 s).")
    gradient_checkpointing: bool = Field(True, description="Recompute activations in the backward pass.")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="auto: bfloat16 on GPUs that support it, else float16; float32 on CPU.")
    device: str = Field("auto", description="auto (cuda when available) or cpu.")
    save_steps: int = Field(200, ge=1, description="Optimizer steps between checkpoints (and dev-loss runs).")
    save_total_limit: int = Field(2, ge=1, description="Checkpoints kept.")
    logging_steps: int = Field(10, ge=1, description="Optimizer steps between loss logs.")
    num_workers: int = Field(2, ge=0, description="Data-loading worker processes.")
    seed: int = Field(0, description="Seed of initialisation, dropout and shuffling.")


@dataclass
class FinetuneResult:
    output: Path
    adapter: Path
    merged: Path | None
    losses: list[tuple[int, float]]
    """(optimizer step, training loss) as logged."""
    eval_loss: float | None
    steps: int
    evaluations: dict[str, dict[str, Any]] = field(default_factory=dict)
    """'finetuned' (and 'base') → the evaluation summary."""


def finetune(data: str | Path, output: str | Path, eval_qa: str | Path | None = None,
             judge: dict[str, Any] | None = None, eval_options: dict[str, Any] | None = None, eval_base: bool = True,
             merge: bool | None = None, resume: bool = True, progress: ProgressHook | None = None,
             **options: Any) -> FinetuneResult:
    """Fine-tune on `data` (an export folder or JSONL in the ms-swift or qwen2-audio format) into
    `output`. With `eval_qa` (any QA source `cpqa evaluate` reads, e.g. the test split of a `jsonl`
    export) and a `judge` spec, the merged model (and, with `eval_base`, the base model) is
    evaluated on it. `options` are `FinetuneConfig` fields; `eval_options` go to `evaluate`."""
    try:
        config = FinetuneConfig(**options)
    except ValueError as exc:  # pydantic's ValidationError
        raise CPQAError(f"finetune options: {exc}") from None
    if eval_qa is not None and judge is None:
        raise CPQAError("evaluating the fine-tuned model needs a judge (e.g. judge={'name': 'openai', 'model': …})")
    if eval_qa is not None and merge is False:
        raise CPQAError("evaluating the fine-tuned model loads the merged model; drop merge=False (--no-merge) "
                        "or eval_qa (--eval-qa)")
    train_file = split_file(data, "train")
    if train_file is None:
        raise CPQAError(f"{data} has no train.jsonl; export one with: cpqa export RUN --format ms-swift -o {data}")
    train_chats, dropped = heard_chats(read_chats(train_file), config.long_audio, config.max_audio_s)
    if not train_chats:
        raise CPQAError(f"{train_file}: every chat's audio is longer than max_audio_s={config.max_audio_s:g} "
                        f"({dict(dropped)}); export with --long-audio split or train with long_audio=chunk")
    dev_file = split_file(data, "dev")
    dev_chats, dev_dropped = heard_chats(read_chats(dev_file) if dev_file is not None else [], config.long_audio,
                                         config.max_audio_s)
    torch = require("torch", extra="finetune")
    transformers = require("transformers", extra="finetune")
    peft = require("peft", extra="finetune")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    device = torch_device(torch, config.device, "finetune")
    dtype = torch_dtype(torch, config.dtype, device)

    processor, model = _load(transformers, config, dtype)
    model = peft.get_peft_model(model, _lora(peft, config))
    trainable, total = model.get_nb_trainable_parameters()
    logger.info("LoRA on %s: %d of %d parameters trainable (%.2f %%)", config.model, trainable, total,
                100 * trainable / total)
    datasets = {name: ChatDataset(chats, processor, config.long_audio, config.max_audio_s, config.max_length)
                for name, chats in (("train", train_chats), ("dev", dev_chats)) if chats}
    trainer = _trainer(transformers, config, model, processor, datasets, output, device, dtype, progress)
    last = transformers.trainer_utils.get_last_checkpoint(str(output / "checkpoints")) \
        if resume and (output / "checkpoints").is_dir() else None
    if last:
        logger.info("resuming from %s", last)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=last)
    train_s = time.perf_counter() - started
    history = trainer.state.log_history
    losses = [(h["step"], h["loss"]) for h in history if "loss" in h]
    eval_loss = trainer.evaluate()["eval_loss"] if "dev" in datasets else None

    adapter = output / "adapter"
    model.save_pretrained(adapter)
    processor.save_pretrained(adapter)
    merged = None
    if merge or (merge is None and eval_qa is not None):
        merged = output / "merged"
        model.merge_and_unload().save_pretrained(merged)
        processor.save_pretrained(merged)
    del trainer, model
    result = FinetuneResult(output, adapter, merged, losses, eval_loss, _steps(history))
    if eval_qa is not None:
        result.evaluations = _evaluate(eval_qa, output, merged, config, judge, eval_options or {}, eval_base,
                                       device, progress)
    summary = {"data": str(Path(data).resolve()), "config": config.model_dump(mode="json"), "device": device,
               "dtype": str(dtype).removeprefix("torch."), "train_examples": len(train_chats),
               "dev_examples": len(dev_chats), "left_out": {"train": dict(sorted(dropped.items())),
                                                            "dev": dict(sorted(dev_dropped.items()))},
               "trainable_parameters": trainable, "parameters": total,
               "steps": result.steps, "resumed_from": last, "train_s": round(train_s, 1), "losses": losses,
               "eval_loss": eval_loss, "adapter": str(adapter), "merged": str(merged) if merged else None,
               "evaluations": {name: _scores(s) for name, s in result.evaluations.items()}}
    (output / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return result


def load_finetuned(adapter: str | Path, device: str = "cpu"):
    """The fine-tuned model (base + adapter, in eval mode) and its processor, from an `adapter/` folder."""
    transformers = require("transformers", extra="finetune")
    peft = require("peft", extra="finetune")
    torch = require("torch", extra="finetune")
    base_id = peft.PeftConfig.from_pretrained(str(adapter)).base_model_name_or_path
    model_class = getattr(transformers, transformers.AutoConfig.from_pretrained(base_id).architectures[0])
    base = model_class.from_pretrained(base_id, dtype=torch_dtype(torch, "auto", device))
    model = peft.PeftModel.from_pretrained(base, str(adapter)).to(device).eval()
    return model, transformers.AutoProcessor.from_pretrained(str(adapter))


def _load(transformers, config: FinetuneConfig, dtype):
    hub = {"revision": config.revision, "local_files_only": config.local_files_only}
    model_class = getattr(transformers, config.model_class, None)
    if model_class is None:
        raise CPQAError(f"transformers has no model class '{config.model_class}'")
    try:
        processor = transformers.AutoProcessor.from_pretrained(config.model, **hub)
        model = model_class.from_pretrained(config.model, dtype=dtype, **hub)
    except OSError as exc:
        raise CPQAError(f"cannot load '{config.model}': {exc}") from exc
    if processor.tokenizer.pad_token_id is None:
        processor.tokenizer.pad_token = processor.tokenizer.eos_token
    processor.tokenizer.padding_side = "right"
    model.config.use_cache = False
    return processor, model


def _lora(peft, config: FinetuneConfig):
    targets = LANGUAGE_TARGETS + (f"|{AUDIO_TARGETS}" if config.train_audio_encoder else "")
    return peft.LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                           target_modules=targets, modules_to_save=[PROJECTOR] if config.train_projector else None,
                           task_type="CAUSAL_LM")


def _trainer(transformers, config: FinetuneConfig, model, processor, datasets, output: Path, device: str, dtype,
             progress: ProgressHook | None):
    torch = require("torch", extra="finetune")
    args = transformers.TrainingArguments(
        output_dir=str(output / "checkpoints"), per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size, gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate, num_train_epochs=config.epochs, max_steps=config.max_steps or -1,
        warmup_steps=config.warmup_ratio, lr_scheduler_type=config.lr_scheduler, weight_decay=config.weight_decay,
        logging_steps=config.logging_steps, save_steps=config.save_steps, save_total_limit=config.save_total_limit,
        eval_strategy="steps" if "dev" in datasets else "no", eval_steps=config.save_steps,
        bf16=dtype == torch.bfloat16, fp16=dtype == torch.float16, use_cpu=device == "cpu",
        activation_checkpointing=config.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if config.gradient_checkpointing else None,
        dataloader_num_workers=config.num_workers, remove_unused_columns=False, report_to="none",
        disable_tqdm=True, seed=config.seed)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=datasets["train"],
                                   eval_dataset=datasets.get("dev"),
                                   data_collator=collate(processor.tokenizer.pad_token_id))
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # the library never prints
    trainer.add_callback(_progress_callback(transformers, progress or ProgressHook()))
    return trainer


def _progress_callback(transformers, hook: ProgressHook):
    """A Trainer callback feeding the cpqa progress hook and logging the losses."""

    class ProgressCallback(transformers.TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            hook.stage_started("finetune", state.max_steps, state.global_step)

        def on_step_end(self, args, state, control, **kwargs):
            hook.advance("finetune", 1)

        def on_log(self, args, state, control, logs=None, **kwargs):
            logger.info("step %d: %s", state.global_step,
                        ", ".join(f"{k} {v:.4g}" for k, v in (logs or {}).items() if isinstance(v, float)))

        def on_train_end(self, args, state, control, **kwargs):
            hook.stage_finished("finetune", {"steps": state.global_step}, already_done=False)

    return ProgressCallback()


def _steps(history: list[dict[str, Any]]) -> int:
    return max((h.get("step", 0) for h in history), default=0)


def _evaluate(eval_qa, output: Path, merged: Path, config: FinetuneConfig, judge: dict[str, Any],
              eval_options: dict[str, Any], eval_base: bool, device: str, progress) -> dict[str, dict[str, Any]]:
    from ..evaluate import evaluate

    models = {"finetuned": str(merged)}
    if eval_base:
        models["base"] = config.model
    options = {"long_audio": config.long_audio, "max_audio_s": config.max_audio_s, **eval_options}
    model_options = options.pop("model", {})
    summaries = {}
    for name, model in models.items():
        spec = {"name": "qwen2-audio", "model": model, "device": device, "local_files_only": config.local_files_only,
                **({"revision": config.revision} if name == "base" and config.revision else {}), **model_options}
        summaries[name] = evaluate(eval_qa, output / "eval" / name, model=spec, judge=judge, progress=progress,
                                   **options).summary
        logger.info("%s model: score %s, UAS %s", name, summaries[name]["score"], summaries[name]["uas"])
    return summaries


def _scores(summary: dict[str, Any]) -> dict[str, Any]:
    return {"score": summary["score"], "uas": summary["uas"], "success_rate": summary["success_rate"],
            "per_type": {t: g["score"] for t, g in summary["per_type"].items()}}
