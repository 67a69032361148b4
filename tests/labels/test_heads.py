import numpy as np
import pytest

from cpqa.errors import CPQAError
from cpqa.labels.heads import ProbeHead, builtin_head, resolve_head, speaker_normalize
from cpqa.labels.probe import metrics


def _head(k=3, d=4):
    rng = np.random.default_rng(0)
    return ProbeHead(labels=[f"c{i}" for i in range(k)], mean=rng.normal(size=d), scale=rng.uniform(0.5, 2, size=d),
                     coef=rng.normal(size=(k if k > 2 else 1, d)), intercept=rng.normal(size=k if k > 2 else 1),
                     meta={"name": "t", "pooling": "mean"})


def test_head_round_trips_and_gives_probabilities(tmp_path):
    head = _head()
    x = np.random.default_rng(1).normal(size=(5, 4))
    loaded = ProbeHead.load(head.save(tmp_path / "h.npz"))
    assert loaded.labels == head.labels and loaded.name == "t"
    p = loaded.predict_proba(x)
    assert p.shape == (5, 3) and np.allclose(p.sum(axis=1), 1)
    assert np.allclose(p, head.predict_proba(x), atol=1e-5)


def test_binary_head_is_a_sigmoid_of_its_one_logit():
    head = _head(k=2)
    x = np.random.default_rng(2).normal(size=(3, 4))
    logit = ((x - head.mean) / head.scale) @ head.coef[0] + head.intercept[0]
    assert np.allclose(head.predict_proba(x)[:, 1], 1 / (1 + np.exp(-logit)))


def test_bad_heads_are_user_errors(tmp_path):
    with pytest.raises(CPQAError):
        _head().predict_proba(np.zeros((1, 7)))
    (tmp_path / "x.npz").write_bytes(b"not a head")
    with pytest.raises(CPQAError):
        ProbeHead.load(tmp_path / "x.npz")
    with pytest.raises(CPQAError):
        resolve_head(str(tmp_path / "missing.npz"))


EMOTIONS = {"angry", "disgusted", "fearful", "happy", "neutral", "sad", "surprised"}


@pytest.mark.parametrize("name, classes, normalize", [("emotion", EMOTIONS, "none"),
                                                      ("emotion-short", EMOTIONS, "none"),
                                                      ("emotion-speaker-norm", EMOTIONS, "speaker"),
                                                      ("gender", {"female", "male"}, "none")])
def test_shipped_whisper_heads_load_and_carry_their_leave_speakers_out_scores(name, classes, normalize):
    head = ProbeHead.load(resolve_head(f"builtin:{name}"))
    assert set(head.labels) == classes and head.normalize == normalize
    assert head.encoder == "embedded:base" and head.pooling == "mean" and head.mean.shape == (512,)
    scores = head.meta["leave_speakers_out"]
    if name == "gender":  # RAVDESS actors in context and alone; AMI meeting turns are reported beside
        ravdess = {k: v for k, v in scores["by_source"].items() if k.startswith("ravdess_train/")}
        assert len(ravdess) == 2 and min(s["wa"] for s in ravdess.values()) >= 0.95
    elif name == "emotion":  # clips heard among the actor's other clips (30 s of speech per pass)
        assert head.meta["pack"] == "speaker" and scores["ua"] >= 0.60
    elif name == "emotion-short":  # each clip its own (looped) recording
        assert head.meta["pack"] == "none" and scores["ua"] >= 0.60
    else:
        assert scores["ua"] >= 0.80
    assert builtin_head(name).stat().st_size < 64_000


def test_shipped_ge2e_gender_head():
    head = ProbeHead.load(resolve_head("builtin:gender-ge2e"))
    assert head.labels == ["female", "male"] and head.encoder == "resemblyzer-ge2e" and head.mean.shape == (256,)
    scores = head.meta["leave_speakers_out"]["by_source"]
    assert scores["ravdess_train/manifest.csv"]["wa"] >= 0.97 and scores["ami_meetings/segments.csv"]["wa"] >= 0.8


def test_speaker_normalize_standardises_each_speaker():
    x = np.concatenate([np.random.default_rng(3).normal(5, 2, size=(10, 3)), np.random.default_rng(4).normal(size=(6, 3))])
    z = speaker_normalize(x, ["a"] * 10 + ["b"] * 6)
    assert np.allclose(z[:10].mean(axis=0), 0, atol=1e-9) and np.allclose(z[10:].std(axis=0), 1, atol=5e-3)


def test_metrics_ua_wa_f1_and_confusion():
    truth = ["a", "a", "a", "a", "b"]
    pred = ["a", "a", "a", "a", "a"]
    m = metrics(truth, pred)
    assert m["wa"] == pytest.approx(0.8) and m["ua"] == pytest.approx(0.5)
    assert m["confusion"] == [[4, 0], [1, 0]]
    assert m["macro_f1"] == pytest.approx((2 * 0.8 * 1 / 1.8) / 2)
