"""LoRA fine-tuning of Qwen2-Audio on a CPQA export, and the evaluation that shows what it gained.

    from cpqa.finetune import finetune
    finetune("EXPORT", "OUT", eval_qa="EXPORT_JSONL/test.jsonl", judge={"name": "openai", "model": "gpt-4o"})

torch, transformers and peft load only inside the calls (extra `finetune`).
"""

from .train import FinetuneConfig, FinetuneResult, finetune, load_finetuned

__all__ = ["FinetuneConfig", "FinetuneResult", "finetune", "load_finetuned"]
