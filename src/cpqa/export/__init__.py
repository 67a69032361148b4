"""Export CPQA data for speech-LLM training: a run's QA (or an exported QA file) as a Hugging Face
dataset, ms-swift or LLaMA-Factory JSONL, Qwen2-Audio chat conversations or plain QAItem records,
split into train/dev/test with no recording and no speaker in two splits.

    from cpqa.export import export
    export("RUN", "ms-swift", "OUT", explicit=True, audio_paths="copy")
"""

from .export import ExportOptions, ExportResult, export, parse_splits

__all__ = ["ExportOptions", "ExportResult", "export", "parse_splits"]
