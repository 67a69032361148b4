"""`cpqa evaluate` and `cpqa compare` through typer, end to end: scores per type, UAS, success
rate, and the r printed equals a recomputation from the per-unit scores of the report."""

import json
import re

import numpy as np
import pytest
import typer
from evalgen import endpoint
from typer.testing import CliRunner

from cpqa.cli.evaluate import compare_cmd, evaluate_cmd, judge_spec, options

pytestmark = pytest.mark.timeout(120)

app = typer.Typer()
app.command("evaluate")(evaluate_cmd)
app.command("compare")(compare_cmd)
runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def endpoint_sets(server, prefix, model):
    return [arg for key, value in endpoint(server, model).items() if key != "name"
            for arg in ("--" + prefix + "-set", f"{'llm.' if prefix == 'model' else ''}{key}={value}")]


def test_evaluate_then_compare(qa_set, server, tmp_path):
    model_args = ["--model", "cascade", "--model-set", "llm.name=openai", *endpoint_sets(server, "model", "answerer")]
    judge_args = ["--judge", "openai", *endpoint_sets(server, "judge", "judge")]
    run_eval = cli("evaluate", qa_set["run"], "-o", tmp_path / "a", *model_args, *judge_args)
    assert run_eval.exit_code == 0, run_eval.output
    assert "Scores per type" in run_eval.output and "UAS 73.33" in run_eval.output
    assert "judge success rate 75.0%" in run_eval.output and "12 speech-LLM queries" in run_eval.output

    file_eval = cli("evaluate", qa_set["qa"], "-o", tmp_path / "b", "--clips", qa_set["clips"], *model_args,
                    *judge_args, "--rubric", "paralinguistic")
    assert file_eval.exit_code == 0, file_eval.output
    assert "paralinguistic rubric v1" in file_eval.output

    compared = cli("compare", tmp_path / "a", tmp_path / "b", "--by", "item", "-o", tmp_path / "cmp")
    assert compared.exit_code == 0, compared.output
    # the paralinguistic judge rated everything 3: a constant side has no correlation
    assert "one side is constant" in compared.output and "rating agreement on 9 shared item(s)" in compared.output
    assert (tmp_path / "cmp" / "compare-item.png").exists()


def test_compare_prints_r_of_the_unit_scores(tmp_path):
    rng = np.random.default_rng(1)
    for name, noise in (("a", 0), ("b", 1)):
        folder = tmp_path / name
        folder.mkdir()
        scores = np.clip(np.linspace(10, 90, 20) + rng.normal(0, 10, 20) * noise, 0, 100)
        (folder / "items.jsonl").write_text("".join(
            json.dumps({"qa_id": f"q{i}", "clip_id": f"c{i // 2}", "type": "C", "emotion": "sad", "score": s}) + "\n"
            for i, s in enumerate(scores)))
        (folder / "results.json").write_text(json.dumps({"score": float(scores.mean())}))
    result = cli("compare", tmp_path / "a", tmp_path / "b", "--by", "clip", "-o", tmp_path / "cmp", "--bootstrap", 500)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "cmp" / "compare-clip.json").read_text())
    a = [u["a"] for u in report["units"]]
    b = [u["b"] for u in report["units"]]
    printed = float(re.search(r"Pearson[\s│]+([-\d.]+)", result.output).group(1))
    assert printed == pytest.approx(np.corrcoef(a, b)[0, 1], abs=5e-4)
    assert "10 clip unit(s) in both" in result.output


def test_user_errors_exit_2(qa_set, tmp_path):
    bad = cli("evaluate", qa_set["run"], "-o", tmp_path / "e", "--model", "nope")
    assert bad.exit_code == 2 and "unknown speechllm backend 'nope'" in bad.output
    assert cli("evaluate", qa_set["run"], "-o", tmp_path / "e", "--model", "cascade", "--model-set", "x").exit_code == 2
    assert cli("compare", tmp_path, tmp_path).exit_code == 2


def test_options_nest_dotted_keys_and_parse_yaml_values():
    assert options(["llm.name=openai", "llm.max_retries=3", "labels=true", "system_prompt="], "--model-set") == {
        "llm": {"name": "openai", "max_retries": 3}, "labels": True, "system_prompt": ""}


def test_judge_spec_joins_the_judge_options():
    assert judge_spec("openai", "gpt-4o", ["max_retries=2"]) == {"name": "openai", "max_retries": 2, "model": "gpt-4o"}
    assert judge_spec("llamacpp", None, []) == {"name": "llamacpp"}
