"""Judge rubrics and rating parsing: malformed replies are failures, never scores."""

import pytest

from cpqa.errors import CPQAError
from cpqa.evaluate.judge import RUBRICS, JudgeSettings, get_rubric, judge_size_warning, parse_rating


@pytest.mark.parametrize("reply, value", [
    ("The answer matches.\nRating: 5", 5),
    ("Close enough.\n\n**Rating:** 4\n", 4),
    ("ok\nRating: 3/5", 3),
    ("ok\nrating: [2]", 2),
    ("ok\n> Rating: 1.", 1),
    ("It refuses.\nRating: 0\n```", 0),
])
def test_well_formed_ratings_parse(reply, value):
    assert parse_rating(reply).value == value
    assert parse_rating(reply).failure is None


@pytest.mark.parametrize("reply, failure", [
    ("", "empty"),
    ("   \n```\n", "empty"),
    ("A fine answer, I would give it four.", "no_rating"),
    ("Rating: 4\nOn reflection the answer misses the emotion.", "not_final"),
    ("Rating: 3.5", "bad_value"),
    ("Rating: 6", "bad_value"),
    ("Rating: -1", "bad_value"),
    ("Rating: four", "bad_value"),
    ("Rating: 4 out of 5", "bad_value"),
    ("Rating:", "bad_value"),
    ("The rating: 4", "no_rating"),
])
def test_malformed_replies_are_failures(reply, failure):
    rating = parse_rating(reply)
    assert rating.value is None and rating.failure == failure


@pytest.mark.parametrize("model, small", [
    ("embedded:qwen2.5-coder-1.5b", True), ("Qwen/Qwen2.5-1.5B-Instruct", True), ("qwen2.5:3b", True),
    ("gpt-4o", False), ("meta-llama/Meta-Llama-3-70B-Instruct", False), ("Qwen/Qwen2.5-7B-Instruct", False),
])
def test_small_judges_are_flagged(model, small):
    assert (judge_size_warning(model) is not None) == small


def test_rubrics_are_versioned_and_render_every_field():
    assert set(RUBRICS) == {"reference", "paralinguistic"}
    for rubric in RUBRICS.values():
        assert rubric.version == "1"
        system, user = rubric.messages("Q-text?", "R-text", "A-text", "DE")
        assert system["role"] == "system" and user["role"] == "user"
        assert all(part in user["content"] for part in ("Q-text?", "R-text", "A-text", "Rating: N"))
        assert "cannot decide" in user["content"]  # refusals and "cannot tell" rate 0
    paralinguistic = get_rubric("paralinguistic").messages("q", "r", "a", "DE")[1]["content"]
    assert "emotion, as heard directly" in paralinguistic and "long" in paralinguistic
    with pytest.raises(CPQAError, match="unknown rubric"):
        get_rubric("strict")


def test_judge_runs_differ_by_seed_only():
    settings = JudgeSettings(get_rubric("reference"), temperature=0.7, n_runs=3)
    requests = settings.requests("q", "r", "a", "C")
    assert [r.seed for r in requests] == [0, 1, 2]
    assert {r.temperature for r in requests} == {0.7}
    assert len({str(r.messages) for r in requests}) == 1
    assert settings.describe() == {"rubric": "reference", "rubric_version": "1", "temperature": 0.7, "n_runs": 3,
                                   "max_tokens": 384}
