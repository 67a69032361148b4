"""Run in the ms-swift venv: load an export's train.jsonl with ms-swift's own `load_dataset`, encode
every row with the `qwen2_audio` template (the tiny Qwen2-Audio's processor) in train mode and
collate them. Prints one JSON line: rows, seconds of audio heard per row (100 feature frames a
second), labelled tokens per row, the shape of the collated audio features. No forward pass: the
template leaves one audio placeholder for the model to expand, and that path of the Qwen2-Audio in
transformers 5.19 (which ms-swift 4.6.0 installs) fails on the tiny config (no `ignore_index`);
LLaMA-Factory's test runs one.

    python swift_load.py EXPORT_JSONL MODEL_DIR
Relative audio paths resolve as ms-swift resolves them: against the working directory, else
ROOT_IMAGE_DIR (the caller sets either)."""

import json
import sys

import torch
from swift.dataset import load_dataset
from swift.model import get_model_processor
from swift.template import get_template

path, model_dir = sys.argv[1:3]
_, processor = get_model_processor(model_dir, model_type="qwen2_audio", torch_dtype=torch.float32,
                                   load_model=False)
template = get_template(processor, max_length=8192)
template.set_mode("train")
dataset, _ = load_dataset([path], split_dataset_ratio=0.0)
encoded = [template.encode(dataset[i]) for i in range(len(dataset))]
batch = template.data_collator(encoded)
print(json.dumps({"rows": len(dataset), "heard_s": (batch["feature_attention_mask"].sum(-1) / 100).tolist(),
                  "labelled": [sum(t != -100 for t in e["labels"]) for e in encoded],
                  "features": list(batch["input_features"].shape)}))
