"""Packaged recipes validate, and the paper recipe names the real models of the method."""

import pytest

from cpqa.errors import CPQAError
from cpqa.recipe import apply_override, load_recipe, packaged_recipes


@pytest.mark.parametrize("name", sorted(packaged_recipes()))
def test_packaged_recipes_validate_and_document_themselves(name):
    recipe = load_recipe(name)
    assert recipe.documentation
    assert recipe.stage_names()[0] == "ingest"


def test_local_recipe_runs_the_whole_pipeline_offline():
    local = load_recipe("local")
    assert local.stage_names() == ["ingest", "diarize", "segment", "transcribe", "annotate", "condense", "clips", "qa",
                                   "qa_dataset"]
    configs = {s.name: s.config for s in local.stages}
    assert configs["transcribe"].backend.options.model == "embedded:base"
    assert configs["qa"].llm.name == "llamacpp"


def test_paper_recipe_names_the_real_models():
    paper = {s.name: s.config for s in load_recipe("paper").stages}
    assert paper["transcribe"].backend.options.model == "large-v3"
    members = [m.options.model for m in paper["annotate"].emotion.options.members]
    assert members == ["iic/emotion2vec_plus_large", "iic/emotion2vec_plus_base", "iic/emotion2vec_plus_seed"]
    assert paper["annotate"].dimensions.options.model == "audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim"
    assert (paper["condense"].x, paper["condense"].y) == (0.5, 0.4)
    assert paper["qa"].llm.options.model == "gpt-4o"


def test_overrides_reach_nested_backend_options():
    recipe = load_recipe("local", ["transcribe.backend.beam_size=2", "condense.x=0.6", "segment.backend=silero"])
    configs = {s.name: s.config for s in recipe.stages}
    assert configs["transcribe"].backend.options.beam_size == 2
    assert configs["condense"].x == 0.6


def test_override_needs_stage_and_param():
    with pytest.raises(CPQAError, match="stage.param=value"):
        apply_override({"stages": {"qa": {}}}, "qa")
