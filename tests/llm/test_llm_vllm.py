"""The vLLM backend against a stand-in `vllm` module with the same API surface."""

import json
import sys
import types
from dataclasses import dataclass, field

import pytest

from cpqa.errors import MissingExtraError
from cpqa.llm import LLMRequest
from cpqa.llm.vllm_offline import VLLMBackend, VLLMConfig

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


@dataclass
class SamplingParams:
    temperature: float = 1.0
    max_tokens: int = 16
    seed: int | None = None
    stop: list | None = None
    structured_outputs: object = None
    guided_decoding: object = None


@dataclass
class JSONParams:
    json: dict


@dataclass
class Completion:
    text: str
    token_ids: list
    finish_reason: str = "stop"


@dataclass
class RequestOutput:
    prompt_token_ids: list
    outputs: list


@dataclass
class FakeLLM:
    """Replies with the prompt's number as JSON; rejects a whole batch if any prompt says 'huge'."""

    model: str
    kwargs: dict
    batches: list = field(default_factory=list)

    def chat(self, conversations, sampling_params, use_tqdm=True):
        self.batches.append((conversations, sampling_params))
        if any("huge" in c[-1]["content"] for c in conversations):
            raise ValueError("The decoder prompt (length 99999) is longer than the maximum model length")
        outputs = []
        for conversation, params in zip(conversations, sampling_params):
            n = int(conversation[-1]["content"].split()[-1])
            text = json.dumps({"n": n}) if (params.structured_outputs or params.guided_decoding) else f"plain {n}"
            outputs.append(RequestOutput([1] * 7, [Completion(text, [2] * 3)]))
        return outputs


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.sampling_params = types.SimpleNamespace(SamplingParams=SamplingParams, StructuredOutputsParams=JSONParams)
    engines = []

    def make_llm(model, **kwargs):
        engines.append(FakeLLM(model, kwargs))
        return engines[-1]

    module.LLM = make_llm
    module.engines = engines
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


def request(text: str, schema=SCHEMA, **params) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": text}], json_schema=schema, **params)


def test_a_batch_is_one_engine_call_with_structured_output(fake_vllm, tmp_path):
    llm = VLLMBackend(VLLMConfig(model="org/model", max_model_len=4096, cache_path=str(tmp_path / "c.sqlite"),
                                 engine_kwargs={"enforce_eager": True}))
    results = llm.generate_many_sync([request(f"item {i}", seed=i) for i in range(5)] + [request("item 9", schema=None)])
    engine = fake_vllm.engines[0]
    assert engine.model == "org/model" and engine.kwargs["max_model_len"] == 4096 and engine.kwargs["enforce_eager"]
    assert len(engine.batches) == 1
    params = engine.batches[0][1]
    assert params[0].structured_outputs == JSONParams(SCHEMA) and params[3].seed == 3
    assert params[5].structured_outputs is None
    assert [r.parsed for r in results[:5]] == [{"n": i} for i in range(5)]
    assert results[5].text == "plain 9" and results[5].parsed is None
    assert results[0].prompt_tokens == 7 and results[0].completion_tokens == 3 and results[0].model == "org/model"

    again = VLLMBackend(VLLMConfig(model="org/model", max_model_len=4096, cache_path=str(tmp_path / "c.sqlite")))
    assert all(r.cached for r in again.generate_many_sync([request(f"item {i}", seed=i) for i in range(5)]))
    assert len(fake_vllm.engines) == 1  # the cached rerun never started an engine


def test_a_rejected_batch_is_retried_one_by_one(fake_vllm):
    llm = VLLMBackend(VLLMConfig(model="m"))
    results = llm.generate_many_sync([request("item 1"), request("huge item 2"), request("item 3")])
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].skip_reason == "bad_request" and "maximum model length" in results[1].error
    assert llm.stats.calls == 6 and llm.stats.failures == {"bad_request": 1}


def test_older_vllm_uses_guided_decoding(fake_vllm):
    fake_vllm.sampling_params = types.SimpleNamespace(SamplingParams=SamplingParams, GuidedDecodingParams=JSONParams)
    llm = VLLMBackend(VLLMConfig(model="m"))
    assert llm.generate_many_sync([request("item 4")])[0].parsed == {"n": 4}
    assert fake_vllm.engines[0].batches[0][1][0].guided_decoding == JSONParams(SCHEMA)


def test_missing_vllm_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(MissingExtraError, match=r"cpqa\[vllm\]"):
        VLLMBackend(VLLMConfig(model="m"))
