"""The GE2E speaker encoder's front end and embeddings."""

import numpy as np
import pytest

from cpqa.audio.speaker_embedding import GE2EEncoder, ge2e_mel

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("n_samples", [100, 16000, 64001])
def test_mel_front_end_matches_librosa(n_samples):
    librosa = pytest.importorskip("librosa")
    x = (0.1 * np.random.default_rng(n_samples).standard_normal(n_samples)).astype(np.float32)
    expected = librosa.feature.melspectrogram(y=x, sr=16000, n_fft=400, hop_length=160, n_mels=40).T
    assert ge2e_mel(x).shape == expected.shape
    np.testing.assert_allclose(ge2e_mel(x), expected, rtol=1e-4, atol=1e-6 * expected.max())


def test_embeddings_are_unit_vectors_that_tell_voices_apart():
    t = np.arange(3 * 16000) / 16000
    rng = np.random.default_rng(0)

    def hum(f0):
        return (sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 8))
                + 0.01 * rng.standard_normal(len(t))).astype(np.float32)

    low, low_again, high, short = GE2EEncoder().embed([hum(110), hum(112), hum(300), hum(110)[:8000]])
    for e in (low, high, short):
        assert e.shape == (256,) and np.linalg.norm(e) == pytest.approx(1.0, abs=1e-5)
    assert low @ low_again > low @ high


def test_numpy_lstm_matches_torch(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("CPQA_CACHE", str(tmp_path))  # the .npz copy of the weights is made from scratch
    mels = [np.abs(np.random.default_rng(k).standard_normal((160, 40))).astype(np.float32) for k in range(3)]
    encoder = GE2EEncoder()
    on_numpy = encoder.encode_mels(mels)
    assert list((tmp_path / "ge2e").glob("resemblyzer-*.npz"))
    on_torch = GE2EEncoder(device="cpu")._encode_torch(np.stack(mels))  # the path a GPU device takes
    np.testing.assert_allclose(on_numpy, on_torch, atol=1e-5)
