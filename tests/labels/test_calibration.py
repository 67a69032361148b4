"""Calibration of probe heads on held-out speakers, the independent dimension head, acoustic
features and the run-trust summary."""

import numpy as np
import pytest

from cpqa.labels.acoustic import ACOUSTIC_FEATURES, acoustic_features
from cpqa.labels.calibration import (
    fit_ood,
    fit_temperature,
    min_confidence_for,
    prior_shift,
    unweighted_accuracy,
)
from cpqa.labels.heads import ProbeHead, RegressionHead, softmax
from cpqa.labels.probe import train_calibrated
from cpqa.labels.probe_features import FeatureSet
from cpqa.labels.regression import GOLD_VAD, train_dimensions
from cpqa.labels.trust import run_trust, validation_rows


def _blobs(rng, n_speakers=8, per_class=12, classes=("happy", "neutral", "sad"), spread=1.0):
    rows, labels, speakers = [], [], []
    centres = {c: rng.normal(0, 3, 16) for c in classes}
    for s in range(n_speakers):
        for c in classes:
            for _ in range(per_class):
                rows.append(centres[c] + rng.normal(0, spread, 16))
                labels.append(c)
                speakers.append(f"spk{s}")
    n = len(rows)
    return FeatureSet(np.asarray(rows), np.arange(n), np.ones(n), labels, speakers)


def test_temperature_undoes_overconfident_logits():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 2000)
    true_logits = rng.normal(0, 1, (2000, 3))
    true_logits[np.arange(2000), labels] += 1.0
    sampled = np.array([rng.choice(3, p=p) for p in softmax(true_logits)])
    assert fit_temperature(3.0 * true_logits, sampled) == pytest.approx(3.0, abs=0.4)


def test_prior_shift_moves_posteriors_towards_the_target_prior():
    shift = prior_shift(["happy", "neutral", "sad"], {"happy": 0.2, "neutral": 0.6, "sad": 0.2})
    probs = softmax(np.zeros((1, 3)) + shift)[0]
    assert probs == pytest.approx([0.2, 0.6, 0.2])
    assert prior_shift(["a"], None) is None
    with pytest.raises(ValueError):
        prior_shift(["a", "b"], {"a": 1.0})


def test_reject_threshold_costs_at_most_the_allowed_ua():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 3000)
    probs = softmax(rng.normal(0, 1.5, (3000, 3)) + 2.0 * np.eye(3)[labels])
    threshold = min_confidence_for(probs, labels, 0.05)
    assert unweighted_accuracy(probs, labels, 0.0) - unweighted_accuracy(probs, labels, threshold) <= 0.05
    assert threshold > 0.3  # it does abstain on the least certain windows
    kept = probs.max(axis=1) >= threshold
    assert (probs.argmax(axis=1) == labels)[kept].mean() > (probs.argmax(axis=1) == labels).mean()


def test_out_of_distribution_distance_separates_unseen_audio():
    rng = np.random.default_rng(2)
    z = rng.normal(0, 1, (500, 8)) @ rng.normal(0, 1, (8, 20)) + rng.normal(0, 0.1, (500, 20))  # speech-like: low rank
    head = ProbeHead(["a", "b"], np.zeros(20), np.ones(20), np.zeros((1, 20)), np.zeros(1), meta={"ood_threshold": 3.0})
    fit_ood(head, z, components=8)
    inside = head.ood_distance(z[:100])
    assert np.median(inside) == pytest.approx(1.0, abs=0.4)
    assert head.out_of_distribution(z[:100] + 25.0).all() and head.out_of_distribution(z[:100]).mean() < 0.1
    off_axes = z[:100] + 3.0 * np.linalg.svd(z - z.mean(0))[2][-1]  # along the least-used direction
    assert head.out_of_distribution(off_axes).all()


def test_a_calibrated_head_round_trips_and_abstains_on_held_out_speakers(tmp_path):
    fs = _blobs(np.random.default_rng(3), spread=3.0)
    head, oof = train_calibrated(fs, 0.1, {"happy": 0.25, "neutral": 0.5, "sad": 0.25}, 0.05, folds=4,
                                 meta={"name": "t"})
    assert oof.logits.shape == (len(fs.labels), 3) and (oof.distance > 0).all()
    assert {"temperature", "min_confidence", "ood_threshold", "calibration"} <= set(head.meta)
    loaded = ProbeHead.load(head.save(tmp_path / "h.npz"))
    x = fs.features[:10]
    assert loaded.predict_proba(x) == pytest.approx(head.predict_proba(x), abs=1e-5)
    assert loaded.min_confidence == head.min_confidence and loaded.prior_shift is not None
    assert not loaded.out_of_distribution(x).any() and loaded.out_of_distribution(x + 100).all()


def test_dimension_head_learns_from_other_features_and_reports_held_out_correlation(tmp_path):
    rng = np.random.default_rng(4)
    labels = [c for c in GOLD_VAD for _ in range(40)]
    gold = np.array([GOLD_VAD[c] for c in labels])
    x = np.concatenate([gold + rng.normal(0, 0.1, gold.shape), rng.normal(0, 1, (len(labels), 5))], axis=1)
    x[::7, 0] = np.nan  # a measure that could not be made
    groups = np.array([f"s{i % 6}" for i in range(len(labels))])
    fit = train_dimensions(x, labels, groups, [{f"s{k}"} for k in range(6)], meta={"name": "d"})
    assert fit.correlations["valence"] > 0.8 and fit.correlations["arousal"] > 0.8
    loaded = RegressionHead.load(fit.head.save(tmp_path / "d.npz"))
    out = loaded.predict(x[:5])
    assert out.shape == (5, 3) and np.all((out >= 0) & (out <= 1)) and loaded.labels == ["valence", "arousal",
                                                                                           "dominance"]


def test_acoustic_features_of_a_voice_and_of_silence():
    t = np.arange(int(2.0 * 16000)) / 16000
    f0 = 150 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))
    voice = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / 16000) * (1 + 0.5 * np.sin(2 * np.pi * 4 * t))
    feats = dict(zip(ACOUSTIC_FEATURES, acoustic_features(voice)))
    assert 12 * np.log2(140 / 100) < feats["f0_median_st"] < 12 * np.log2(160 / 100)
    assert feats["voiced_ratio"] > 0.8 and feats["centroid_hz"] < 1000
    assert np.isnan(acoustic_features(np.zeros(16000))).all()


def test_run_trust_warns_when_audio_lies_outside_the_training_data():
    calm = run_trust({"windows": 100, "windows_out_of_distribution": 5, "windows_emotion_abstained": 20,
                      "speech_ms": 120_000, "within_speaker_emotion_changes": 3})
    assert calm["warning"] is None and calm["emotion_changes_per_minute"] == 1.5 and calm["abstained_share"] == 0.2
    far = run_trust({"windows": 100, "windows_out_of_distribution": 60})
    assert "60%" in far["warning"] and run_trust({}) is None
    rows = validation_rows()
    assert [r[0] for r in rows][0] == "emotion" and all(r[2] != "not recorded" for r in rows)
