"""Run in the LLaMA-Factory venv: load an export with LLaMA-Factory's own `get_dataset` (its
dataset_info.json, the `qwen2_audio` template, the SFT stage), collate it with the SFT collator and
run a forward pass of the tiny Qwen2-Audio, as `llamafactory-cli train` does before its first step.
Prints one JSON line: rows, seconds of audio heard per row (100 feature frames a second),
labelled tokens per row, loss.

    python llamafactory_load.py EXPORT_DIR DATASET_NAME MODEL_DIR OUTPUT_DIR
Relative audio paths resolve against media_dir, which defaults to dataset_dir (EXPORT_DIR)."""

import json
import sys

import torch
from llamafactory.data import SFTDataCollatorWith4DAttentionMask, get_dataset, get_template_and_fix_tokenizer
from llamafactory.hparams import get_train_args
from llamafactory.model import load_model, load_tokenizer

export, dataset_name, model_dir, output_dir = sys.argv[1:5]
model_args, data_args, training_args, finetuning_args, _ = get_train_args({
    "model_name_or_path": model_dir, "stage": "sft", "do_train": True, "finetuning_type": "lora",
    "dataset": dataset_name, "dataset_dir": export, "template": "qwen2_audio", "cutoff_len": 8192,
    "overwrite_cache": True, "output_dir": output_dir, "report_to": "none", "bf16": False, "fp16": False})
tokenizer_module = load_tokenizer(model_args)
template = get_template_and_fix_tokenizer(tokenizer_module["tokenizer"], data_args)
dataset = get_dataset(template, model_args, data_args, training_args, stage="sft", **tokenizer_module)["train_dataset"]
model = load_model(tokenizer_module["tokenizer"], model_args, finetuning_args, is_trainable=False).float()
collator = SFTDataCollatorWith4DAttentionMask(template=template, model=model, label_pad_token_id=-100,
                                              compute_dtype=torch.float32, **tokenizer_module)
rows = [dataset[i] for i in range(len(dataset))]
batch = collator(rows)
with torch.inference_mode():
    loss = model(**{k: v for k, v in batch.items() if k != "token_type_ids"}).loss
print(json.dumps({"rows": len(rows), "heard_s": (batch["feature_attention_mask"].sum(-1) / 100).tolist(),
                  "labelled": [sum(t != -100 for t in r["labels"]) for r in rows],
                  "features": list(batch["input_features"].shape), "loss": float(loss)}))
