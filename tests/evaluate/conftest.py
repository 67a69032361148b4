"""Fixtures: a synthetic QA set on real RAVDESS speech, and an OpenAI-compatible test server that
plays both the cascade's text LLM (model `answerer`) and the judge (model `judge`)."""

from __future__ import annotations

import pytest
from evalgen import build_set, scripted

from cpqa.llm.testserver import OpenAITestServer


@pytest.fixture(scope="session")
def qa_set(real_data, tmp_path_factory):
    return build_set(real_data, tmp_path_factory.mktemp("qa-set"))


@pytest.fixture
def server():
    with OpenAITestServer(responder=scripted) as s:
        yield s
