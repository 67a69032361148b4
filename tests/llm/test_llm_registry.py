import pytest

from cpqa.errors import CPQAError
from cpqa.llm import LLMRequest
from cpqa.registry import backend_registry
from cpqa.stage import BackendSpec, Config


@pytest.mark.parametrize("name,extra", [("openai", "llm"), ("llamacpp", "llm"), ("vllm", "vllm")])
def test_backends_register_by_name_with_their_config(name, extra):
    registry = backend_registry("llm")
    cls = registry.get(name)
    assert cls.name == name and registry.entries[name].extra == extra
    assert issubclass(cls.Config, Config)


def test_recipe_spec_builds_openai_and_only_semantic_options_enter_the_signature():
    spec = BackendSpec.parse("llm", {"name": "openai", "model": "gpt-4o-mini", "concurrency": 32,
                                     "base_url": "http://127.0.0.1:9/v1", "extra_body": {"top_p": 0.9}})
    assert spec.semantic_dict() == {"name": "openai", "model": "gpt-4o-mini", "json_mode": "json_schema",
                                    "strict_schema": False, "max_tokens_field": "max_tokens",
                                    "extra_body": {"top_p": 0.9}}
    llm = spec.build()
    assert llm.identity()["backend"] == "openai" and "concurrency" not in llm.identity()


def test_unknown_options_are_rejected():
    with pytest.raises(ValueError, match="temprature"):
        BackendSpec.parse("llm", {"name": "llamacpp", "temprature": 0.2})


@pytest.mark.parametrize("bad", [
    {"messages": []},
    {"messages": [{"role": "robot", "content": "x"}]},
    {"messages": [{"role": "user", "content": None}]},
    {"messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
])
def test_malformed_requests_are_user_errors(bad):
    with pytest.raises(CPQAError):
        LLMRequest(**bad)
