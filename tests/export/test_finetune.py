"""`cpqa finetune` on CPU with a tiny random Qwen2-Audio built here (cpqa.testing.tiny_models): the export formats
read back as the same chats, the loss is masked to the assistant turns, a few steps overfit a
handful of real-speech examples, the adapter saves and reloads, the merged model answers and is
evaluated (with the base model) through `cpqa.evaluate`, and a rerun resumes from the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from exportgen import read_jsonl
from typer.testing import CliRunner

from cpqa.errors import CPQAError
from cpqa.export import export
from cpqa.testing.tiny_models import build_tiny_qwen2_audio

CHUNK_S = 5  # a short audio window keeps the tiny model fast on CPU

pytestmark = pytest.mark.timeout(300)

TRAIN = {"max_steps": 8, "batch_size": 4, "grad_accum": 1, "learning_rate": 1e-2, "lora_r": 8, "lora_alpha": 16,
         "lora_dropout": 0.0, "warmup_ratio": 0.0, "lr_scheduler": "constant", "logging_steps": 1, "save_steps": 4,
         "num_workers": 0, "max_audio_s": CHUNK_S, "local_files_only": True}


@pytest.fixture(scope="module")
def exports(run_dir, tmp_path_factory):
    """A handful of training chats (4 train, 2 dev) in the ms-swift format, the same chats in the
    qwen2-audio format, and a jsonl export whose test split is the evaluation set."""
    root = tmp_path_factory.mktemp("finetune-data")
    for fmt in ("ms-swift", "qwen2-audio"):
        export(run_dir, fmt, root / fmt, splits={"train": 1}, multi_turn="first", audio_paths="relative")
        rows = read_jsonl(root / fmt / "train.jsonl")  # both formats list the items in id order
        for split, chosen in (("train", rows[:4]), ("dev", rows[4:6])):
            (root / fmt / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in chosen))
    export(run_dir, "ms-swift", root / "ms-swift-all", splits={"train": 1})
    export(run_dir, "jsonl", root / "qa")
    return root


@pytest.fixture(scope="module")
def tiny_model(exports, tmp_path_factory):
    pytest.importorskip("transformers")
    pytest.importorskip("peft")
    texts = [m["content"] for r in read_jsonl(exports / "ms-swift-all" / "train.jsonl") for m in r["messages"]]
    return build_tiny_qwen2_audio(tmp_path_factory.mktemp("tiny-qwen2-audio"), texts, chunk_s=CHUNK_S, head_std=0.3)


def test_both_formats_read_as_the_same_chats(exports):
    from cpqa.finetune.data import read_chats

    swift = read_chats(exports / "ms-swift" / "train.jsonl")
    qwen = read_chats(exports / "qwen2-audio" / "train.jsonl")
    assert [c.messages for c in swift] == [c.messages for c in qwen]
    assert all(Path(p).is_absolute() and Path(p).is_file() for c in swift for p in c.audio_paths())
    with pytest.raises(CPQAError, match="neither the ms-swift format"):
        (exports / "bad.jsonl").write_text('{"instruction": "x", "output": "y"}\n')
        read_chats(exports / "bad.jsonl")


def test_loss_mask_covers_the_assistant_turns_only(exports, tiny_model):
    from transformers import AutoProcessor

    from cpqa.finetune.data import IGNORE_INDEX, ChatDataset, read_chats

    processor = AutoProcessor.from_pretrained(tiny_model)
    rows = read_jsonl(exports / "ms-swift-all" / "train.jsonl")
    multi = next(r for r in rows if sum(m["role"] == "assistant" for m in r["messages"]) == 2)
    path = exports / "multi.jsonl"
    path.write_text(json.dumps(multi) + "\n")
    dataset = ChatDataset(read_chats(path), processor, max_audio_s=CHUNK_S)
    item = dataset[0]
    labelled = [t for t, label in zip(item["input_ids"], item["labels"]) if label != IGNORE_INDEX]
    answers = [m["content"] for m in multi["messages"] if m["role"] == "assistant"]
    assert processor.tokenizer.decode(labelled) == "".join(f"{a}<|im_end|>" for a in answers)
    assert item["input_ids"].count(processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>")) > 10
    assert item["input_features"].shape[0] == 1


def test_finetune_overfits_saves_reloads_and_evaluates(exports, tiny_model, tmp_path):
    import torch

    from cpqa.finetune import finetune, load_finetuned
    from cpqa.finetune.data import ChatDataset, collate, read_chats
    from cpqa.llm.testserver import OpenAITestServer

    with OpenAITestServer(responder=lambda body: "Partly right.\nRating: 3") as server:
        judge = {"name": "openai", "model": "judge", "base_url": server.url, "api_key_env": None, "max_retries": 1}
        result = finetune(exports / "ms-swift", tmp_path / "ft", model=str(tiny_model), eval_qa=exports / "qa" / "test.jsonl",
                          judge=judge, eval_options={"model": {"max_new_tokens": 4, "batch_size": 4}}, **TRAIN)
    losses = [loss for _, loss in result.losses]
    assert result.steps == 8 and len(losses) == 8
    assert losses[-1] < losses[0] - 1.0 and min(losses[-3:]) < min(losses[:3])
    assert result.eval_loss is not None and sorted(p.name for p in (tmp_path / "ft" / "checkpoints").iterdir()) == \
        ["checkpoint-4", "checkpoint-8"]
    # the adapter reloads onto the base model and gives the merged model's logits
    reloaded, processor = load_finetuned(result.adapter)
    from transformers import Qwen2AudioForConditionalGeneration

    merged = Qwen2AudioForConditionalGeneration.from_pretrained(result.merged).eval()
    dataset = ChatDataset(read_chats(exports / "ms-swift" / "dev.jsonl"), processor, max_audio_s=CHUNK_S)
    batch = collate(processor.tokenizer.pad_token_id)([dataset[0]])
    batch.pop("labels")
    with torch.inference_mode():
        assert torch.allclose(reloaded(**batch).logits, merged(**batch).logits, atol=1e-4)
        base = Qwen2AudioForConditionalGeneration.from_pretrained(tiny_model).eval()
        assert not torch.allclose(base(**batch).logits, merged(**batch).logits, atol=1e-3)
    # both models answered every question and were judged
    for name in ("finetuned", "base"):
        summary = result.evaluations[name]
        assert summary["answer_failures"] == {} and summary["n_scored"] == summary["n_items"] > 0
        assert summary["score"] == pytest.approx(60.0)
    saved = json.loads((tmp_path / "ft" / "finetune.json").read_text())
    assert saved["steps"] == 8 and saved["evaluations"]["finetuned"]["score"] == pytest.approx(60.0)
    assert saved["config"]["train_audio_encoder"] is False and saved["dev_examples"] == 2


def test_cli_trains_then_resumes_from_its_checkpoint(exports, tiny_model, tmp_path):
    import typer

    from cpqa.cli.export import finetune_cmd

    app = typer.Typer()
    app.command("finetune")(finetune_cmd)
    app.command("other")(lambda: None)  # two commands, so typer keeps the command name as it will be mounted
    runner = CliRunner()
    helped = runner.invoke(app, ["finetune", "--help"], terminal_width=120)
    assert helped.exit_code == 0 and "Qwen/Qwen2-Audio-7B-Instruct" in helped.output and "GiB" in helped.output
    settings = [a for k in ("learning_rate", "lora_dropout", "warmup_ratio", "lr_scheduler", "logging_steps",
                            "num_workers", "max_audio_s", "local_files_only") for a in ("--set", f"{k}={TRAIN[k]}")]
    args = ["finetune", str(exports / "qwen2-audio" / "train.jsonl"), "-o", str(tmp_path / "ft"), "--model",
            str(tiny_model), "--batch-size", "4", "--grad-accum", "1", "--save-steps", "2", "--lora-r", "8", *settings]
    first = runner.invoke(app, [*args, "--max-steps", "2"])
    assert first.exit_code == 0, first.output
    assert "2 optimizer steps" in first.output
    again = runner.invoke(app, [*args, "--max-steps", "3"])
    assert again.exit_code == 0, again.output
    saved = json.loads((tmp_path / "ft" / "finetune.json").read_text())
    assert saved["resumed_from"].endswith("checkpoint-2") and saved["steps"] == 3
    assert [step for step, _ in saved["losses"]] == [1, 2, 3]
    bad = runner.invoke(app, ["finetune", str(tmp_path / "nothing"), "-o", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "neither an export folder nor a JSONL" in bad.output


def test_missing_peft_names_the_finetune_extra(exports, tmp_path, monkeypatch):
    import sys

    from cpqa.errors import MissingExtraError
    from cpqa.finetune import finetune

    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(MissingExtraError, match=r"cpqa\[finetune\]"):
        finetune(exports / "ms-swift", tmp_path / "ft", model="unused")
    with pytest.raises(CPQAError, match="needs a judge"):
        finetune(exports / "ms-swift", tmp_path / "ft", eval_qa=exports / "qa" / "test.jsonl")


def test_evaluating_without_the_merged_model_is_refused_before_training(exports, tmp_path):
    from cpqa.finetune import finetune

    with pytest.raises(CPQAError, match="loads the merged model"):
        finetune(exports / "ms-swift", tmp_path / "ft", model="unused", eval_qa=exports / "qa" / "test.jsonl",
                 judge={"name": "openai", "model": "judge"}, merge=False)
    assert not (tmp_path / "ft").exists()
