"""Evaluation: speech-LLMs answer CPQA questions from the audio, LLM judges rate the answers on a
versioned rubric, and `compare` correlates two evaluations (generated vs human QA, judge vs judge,
judge vs human ratings).

Speech-LLM adapters (capability 'speechllm') are registered by dotted path in `cpqa.catalog`, so
none loads before a command names it.

    from cpqa.evaluate import evaluate, compare
    evaluate("RUN", "EVAL", model="cascade", judge={"name": "openai", "model": "gpt-4o"})
"""

from .comparison import compare
from .evaluation import EvaluationResult, evaluate

__all__ = ["EvaluationResult", "compare", "evaluate"]
