"""The qa stage's signature digests the prompt and word-list files it reads: editing one reruns
the stage, as a config change does; stages that read no data file keep their signatures."""

from __future__ import annotations

import pytest

import cpqa.qa.types as types
from cpqa.executors.base import signature
from cpqa.qa.generate import QAStage
from cpqa.recipe import StageSpec
from cpqa.stage import Stage, StageConfig


def qa_spec(**qa) -> StageSpec:
    config = QAStage.Config.model_validate({"llm": {"name": "openai", "model": "m"}, **qa})
    return StageSpec("qa", "qa", QAStage, config)


@pytest.mark.parametrize("name", ["generate_v3.system.j2", "qa_types_v3.yaml", "claim_words_v1.yaml",
                                  "generate_v1.user.j2"])
def test_editing_a_file_the_qa_stage_reads_changes_its_signature(name, monkeypatch):
    before = signature(qa_spec(), "upstream")
    read = types.data_file
    monkeypatch.setattr(types, "data_file", lambda n: read(n) + ("\n# edited" if n == name else ""))
    assert signature(qa_spec(), "upstream") != before


def test_a_file_of_another_version_does_not_and_stages_without_data_keep_their_signature(monkeypatch):
    before = signature(qa_spec(), "upstream")
    read = types.data_file
    monkeypatch.setattr(types, "data_file", lambda n: read(n) + ("\n# edited" if n == "generate_v2.system.j2" else ""))
    assert signature(qa_spec(), "upstream") == before
    assert signature(qa_spec(prompt_version="v2"), "upstream") != before

    class NoData(Stage):
        name = "no_data"

    plain = StageSpec("no_data", "no_data", NoData, StageConfig())
    assert NoData.data_digest(plain.config) is None
    # what the code before data digests (1076239) gave this spec: existing run directories stay valid
    assert signature(plain, "upstream") == "95b46ac361"
