"""Evaluation: speech-LLMs answer CPQA questions from the audio, LLM judges rate the answers on a
versioned rubric, and `compare` correlates two evaluations (generated vs human QA, judge vs judge,
judge vs human ratings).

Speech-LLM adapters (capability 'speechllm') are registered by dotted path, and `evaluate` and
`compare` load on first use, so importing this package (or `cpqa.evaluate.cli`) stays cheap.

    from cpqa.evaluate import evaluate, compare
    evaluate("RUN", "EVAL", model="cascade", judge={"name": "openai", "model": "gpt-4o"})
"""

from ..registry import backend_registry

_speechllm = backend_registry("speechllm")
_speechllm.add("qwen2-audio", "cpqa.evaluate.qwen2_audio:Qwen2AudioTransformers", extra="gpu",
               description="Qwen2-Audio-7B-Instruct through transformers (batched; bf16/fp16 on GPU)")
_speechllm.add("qwen2-audio-vllm", "cpqa.evaluate.qwen2_audio_vllm:Qwen2AudioVLLM", extra="vllm",
               description="Qwen2-Audio-7B-Instruct through vLLM's offline engine (GPU)")
_speechllm.add("openai-audio", "cpqa.evaluate.openai_audio:OpenAIAudio", extra="llm",
               description="Any OpenAI-compatible endpoint accepting input_audio parts (gpt-4o-audio, vLLM servers)")
_speechllm.add("cascade", "cpqa.evaluate.cascade:Cascade", extra=None,
               description="Baseline: transcript → any cpqa.llm backend (what the words alone give)")
_speechllm.add("cascade-labels", "cpqa.evaluate.cascade:CascadeLabels", extra=None,
               description="Baseline: transcript tagged with speaker, gender, emotion → any cpqa.llm backend")


_LAZY = {"evaluate": "evaluation", "EvaluationResult": "evaluation", "compare": "comparison"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["EvaluationResult", "compare", "evaluate"]
