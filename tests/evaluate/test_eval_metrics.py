"""Scores, success rates and UAS on a hand-made example equal the hand computation."""

import pytest

from cpqa.evaluate.metrics import item_results, summarise


def unit(qa_id, qa_type, emotion, ratings=None, runs=2, failures=(), turn=0, skipped=None):
    judge = None if skipped else {"ratings": list(ratings), "runs": runs, "failures": list(failures),
                                  "score": sum(ratings) / len(ratings) * 20 if ratings else None}
    return {"qa_id": qa_id, "turn": turn, "clip_id": f"clip-{qa_id}", "type": qa_type, "emotion": emotion,
            "skipped": bool(skipped), "skip_reason": skipped, "judge": judge}


UNITS = [
    unit("a", "C", "happy", [4, 5]),                                   # 90
    unit("b", "C", "sad", [2], failures=["no_rating"]),                # 40
    unit("c", "DE", "happy", [5, 5]),                                  # turn 0: 100
    unit("c", "DE", "happy", [], failures=["not_final", "bad_value"], turn=1),  # turn 1: no score
    unit("d", "DE", "sad", skipped="audio_missing_file"),             # never judged
    unit("e", "DG", "neutral", [0, 1]),                                # 10
]


def test_items_average_their_turns():
    rows = {r["qa_id"]: r for r in item_results(UNITS)}
    assert rows["a"]["score"] == pytest.approx(90)
    assert rows["c"]["score"] == pytest.approx(100) and rows["c"]["turn_scores"] == [100, None]
    assert rows["c"]["judge_runs"] == 4 and rows["c"]["ratings"] == 2
    assert rows["d"]["score"] is None and not rows["d"]["answered"]


def test_summary_matches_hand_computation():
    s = summarise(UNITS)
    assert s["score"] == pytest.approx((90 + 40 + 100 + 10) / 4)
    assert s["success_rate"] == pytest.approx(7 / 10)
    assert (s["n_items"], s["n_scored"], s["n_units"]) == (5, 4, 6)
    assert s["per_type"]["C"] == {"score": pytest.approx(65), "n_items": 2, "n_scored": 2, "success_rate": 0.75}
    assert s["per_type"]["DE"] == {"score": pytest.approx(100), "n_items": 2, "n_scored": 1, "success_rate": 0.5}
    assert s["per_type"]["DG"]["score"] == pytest.approx(10)
    assert s["uas"] == pytest.approx((65 + 100 + 10) / 3)  # each type weighs the same
    assert {k: v["score"] for k, v in s["per_emotion"].items()} == {
        "happy": pytest.approx(95), "neutral": pytest.approx(10), "sad": pytest.approx(40)}
    assert s["answer_failures"] == {"audio_missing_file": 1}
    assert s["judge_failures"] == {"bad_value": 1, "no_rating": 1, "not_final": 1}


def test_nothing_scored_gives_no_score():
    s = summarise([unit("x", "C", "sad", [], failures=["empty", "empty"])])
    assert s["score"] is None and s["uas"] is None and s["success_rate"] == 0
