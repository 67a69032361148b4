"""`compare`: r equals a recomputation from the per-unit scores, seeded bootstrap intervals,
rating agreement, human ratings, the plot and the report."""

import json

import numpy as np
import pytest

from cpqa.errors import CPQAError
from cpqa.evaluate import compare
from cpqa.evaluate.correlation import agreement, ranks
from cpqa.manifest import write_jsonl

RNG = np.random.default_rng(7)


def write_eval(path, items, model="m", judge="j"):
    path.mkdir(parents=True)
    write_jsonl(path / "items.jsonl", items)
    scores = [i["score"] for i in items if i["score"] is not None]
    (path / "results.json").write_text(json.dumps({"score": float(np.mean(scores)), "uas": None,
                                                   "model": {"model": model}, "judge": {"model": judge}}))
    return path


def items_for(scores, prefix="q", per_clip=3):
    return [{"qa_id": f"{prefix}{i}", "clip_id": f"clip{i // per_clip}", "type": "C" if i % 2 else "DE",
             "emotion": "happy" if i % 3 else "sad", "score": s} for i, s in enumerate(scores)]


@pytest.fixture
def two_sets(tmp_path):
    """Generated and human sets on the same 12 clips: different items, correlated clip scores."""
    truth = RNG.uniform(20, 90, size=36)
    generated = write_eval(tmp_path / "gen", items_for(np.clip(truth + RNG.normal(0, 8, 36), 0, 100), "g"))
    human_scores = list(np.clip(truth + RNG.normal(0, 8, 36), 0, 100))
    human_scores[5] = None  # an item the judge could not rate
    human = write_eval(tmp_path / "human", items_for(human_scores, "h"))
    return generated, human


def test_r_equals_recomputation_from_unit_scores(two_sets, tmp_path):
    generated, human = two_sets
    report = compare(generated, human, by="clip", out_dir=tmp_path / "cmp", n_boot=1000, seed=3)
    assert report["n_units"] == 12 and report["only_a"] == report["only_b"] == 0
    a = np.array([u["a"] for u in report["units"]])
    b = np.array([u["b"] for u in report["units"]])
    gen_items = [json.loads(line) for line in (generated / "items.jsonl").read_text().splitlines()]
    clip0 = [i["score"] for i in gen_items if i["clip_id"] == report["units"][0]["unit"]]
    assert a[0] == pytest.approx(np.mean(clip0))
    assert report["pearson"]["r"] == pytest.approx(np.corrcoef(a, b)[0, 1])
    assert report["spearman"]["r"] == pytest.approx(np.corrcoef(ranks(a), ranks(b))[0, 1])
    lo, hi = report["pearson"]["ci95"]
    assert lo < report["pearson"]["r"] < hi
    assert report["a"]["mean_score"] == pytest.approx(a.mean()) and report["b"]["mean_score"] == pytest.approx(b.mean())
    assert report["agreement"] is None  # the two sets share no items
    assert (tmp_path / "cmp" / "compare-clip.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((tmp_path / "cmp" / "compare-clip.json").read_text())
    assert saved["pearson"] == report["pearson"]
    again = compare(generated, human, by="clip", n_boot=1000, seed=3)
    assert again["pearson"]["ci95"] == report["pearson"]["ci95"]  # seeded


def test_scipy_agrees_when_installed(two_sets):
    stats = pytest.importorskip("scipy.stats")
    report = compare(*two_sets, by="clip", n_boot=200)
    a = [u["a"] for u in report["units"]]
    b = [u["b"] for u in report["units"]]
    assert report["pearson"]["r"] == pytest.approx(stats.pearsonr(a, b)[0])
    assert report["spearman"]["r"] == pytest.approx(stats.spearmanr(a, b)[0])


def test_ranks_average_ties():
    assert list(ranks(np.array([10.0, 20.0, 10.0, 30.0]))) == [1.5, 3.0, 1.5, 4.0]


def test_judge_vs_judge_agreement_on_shared_items(tmp_path):
    a = write_eval(tmp_path / "a", [{"qa_id": f"q{i}", "clip_id": "c", "type": "C", "emotion": "x", "score": s}
                                    for i, s in enumerate([100, 80, 60, 40, 20])])
    b = write_eval(tmp_path / "b", [{"qa_id": f"q{i}", "clip_id": "c", "type": "C", "emotion": "x", "score": s}
                                    for i, s in enumerate([100, 60, 60, 0, 20])])
    report = compare(a, b, by="item", n_boot=200)
    assert report["pearson"]["r"] == pytest.approx(np.corrcoef([5, 4, 3, 2, 1], [5, 3, 3, 0, 1])[0, 1])
    agree = report["agreement"]
    assert agree["n"] == 5 and agree["exact"] == pytest.approx(3 / 5) and agree["within_1"] == pytest.approx(4 / 5)
    assert agree["mean_abs_diff"] == pytest.approx((0 + 1 + 0 + 2 + 0) / 5)


def test_quadratic_kappa_hand_example():
    # identical ratings: kappa 1; ratings reversed on a symmetric design: kappa -1
    assert agreement([0, 5, 0, 5], [0, 5, 0, 5])["quadratic_kappa"] == pytest.approx(1.0)
    assert agreement([0, 5, 0, 5], [5, 0, 5, 0])["quadratic_kappa"] == pytest.approx(-1.0)


def test_judge_vs_human_ratings(tmp_path):
    a = write_eval(tmp_path / "a", items_for([100, 80, 60, 40, 20, 0]))
    ratings = tmp_path / "human.csv"
    ratings.write_text("qa_id,rating,rater\nq0,5,x\nq0,4,y\nq1,4,x\nq2,3,x\nq3,1,x\nq4,1,x\nq9,2,x\n")
    report = compare(a, human_ratings=ratings, by="item", n_boot=200)
    assert report["n_units"] == 5 and report["only_b"] == 1  # q9 is not in the evaluation
    assert report["units"][0] == {"unit": "q0", "a": 100, "b": pytest.approx(90)}
    assert report["agreement"]["n"] == 5
    by_clip = compare(a, human_ratings=ratings, by="clip", n_boot=200)
    assert {u["unit"] for u in by_clip["units"]} == {"clip0", "clip1"}


def test_user_errors(tmp_path, two_sets):
    generated, human = two_sets
    with pytest.raises(CPQAError, match="not an evaluation directory"):
        compare(tmp_path, human)
    with pytest.raises(CPQAError, match="one of the two"):
        compare(generated)
    with pytest.raises(CPQAError, match="--by"):
        compare(generated, human, by="speaker")
    bad = tmp_path / "bad.csv"
    bad.write_text("qa_id,rating\nq1,7\n")
    with pytest.raises(CPQAError, match="bad.csv:2"):
        compare(generated, human_ratings=bad)


def test_too_few_units_gives_no_r(tmp_path):
    a = write_eval(tmp_path / "a", items_for([10, 20]))
    b = write_eval(tmp_path / "b", items_for([30, 40]))
    report = compare(a, b, by="item", n_boot=200)
    assert report["pearson"]["r"] is None and "at least 3" in report["pearson"]["note"]
