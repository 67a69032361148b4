"""Nested choice of a calibrated head's settings (`labels.nested`), and the subsets it (and
tools/train_heads.py --hold-out) cut."""

import numpy as np

from cpqa.labels.nested import choose, nested, subset
from cpqa.labels.probe_features import FeatureSet
from cpqa.labels.probe_manifest import Example


def test_subset_drops_the_held_out_speakers_windows_and_renumbers():
    examples = [Example(f"{s}.wav", label, s) for s, label in (("a", "sad"), ("b", "happy"), ("a", "angry"),
                                                               ("c", "neutral"))]
    fs = FeatureSet(np.arange(12, dtype=np.float32).reshape(6, 2), np.array([0, 0, 1, 2, 3, 3]),
                    np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), [e.label for e in examples],
                    [e.speaker for e in examples], examples)
    keep = np.array([e.speaker != "a" for e in examples])
    out = subset(fs, keep)
    assert out.speakers == ["b", "c"] and out.labels == ["happy", "neutral"]
    assert [e.speaker for e in out.examples] == ["b", "c"]
    assert out.example.tolist() == [0, 1, 1]
    assert out.features.tolist() == [[4.0, 5.0], [8.0, 9.0], [10.0, 11.0]]
    assert out.weight.tolist() == [3.0, 5.0, 6.0]
    assert list(out.window_speakers()) == ["b", "c", "c"]


def _blobs(n_speakers=6, per_class=6, classes=("happy", "neutral", "sad")):
    rng = np.random.default_rng(3)
    centres = {c: rng.normal(0, 2, 8) for c in classes}
    rows, examples = [], []
    for s in range(n_speakers):
        for c in classes:
            for _ in range(per_class):
                rows.append(centres[c] + rng.normal(0, 1.5, 8))
                examples.append(Example("x.wav", c, f"spk{s}"))
    n = len(rows)
    return FeatureSet(np.asarray(rows), np.arange(n), np.ones(n), [e.label for e in examples],
                      [e.speaker for e in examples], examples)


def _ua(fs, probs, ood, threshold):
    labels = np.array(fs.labels)[fs.example]
    classes = sorted(set(fs.labels))
    right = (np.array(classes)[probs.argmax(axis=1)] == labels) & (probs.max(axis=1) >= threshold) & ~ood
    return float(np.mean([right[labels == c].mean() for c in classes]))


def test_choose_keeps_the_best_scoring_setting_calibrated():
    fs = _blobs()
    priors = [{"happy": 0.2, "neutral": 0.6, "sad": 0.2}, {"happy": 1 / 3, "neutral": 1 / 3, "sad": 1 / 3}]
    seen = []

    def score(fs_, probs, ood, threshold):
        seen.append(_ua(fs_, probs, ood, threshold))
        return seen[-1]

    chosen = choose(fs, (0.01, 1.0), priors, score, 0.05, folds=3)
    assert len(seen) == 4 and chosen.key == max(seen)  # every (C, prior) pair scored, the best kept
    assert chosen.head.meta["C"] in (0.01, 1.0) and chosen.head.meta["calibration"]["prior"] in priors
    assert chosen.probs.shape == (len(fs.example), 3) and chosen.head.min_confidence is not None


def test_nested_scores_every_window_with_a_head_that_never_saw_its_speakers():
    fs = _blobs()
    probs, ood, threshold, choices = nested(fs, (0.1,), [None], _ua, 0.05, folds=3)
    assert len(choices) == 3 and all(c["C"] == 0.1 for c in choices)
    assert probs.shape == (len(fs.example), 3) and np.allclose(probs.sum(axis=1), 1.0)
    assert (threshold > 0).all() and ood.dtype == bool
    assert _ua(fs, probs, ood, np.zeros(len(probs))) > 0.6  # separable blobs: held out, still well above chance
