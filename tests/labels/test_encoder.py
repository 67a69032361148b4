import numpy as np
import pytest
import soundfile as sf

from cpqa.labels.encoder import FRAMES_PER_S, FeatureCache, RecordingFeatures, pool

SR = 16000


class FrameClock:
    """A stand-in encoder: frame i of a pass is the mean sample value of its 20 ms, so on a ramp
    recording (sample value = time / 1000) each frame tells which time it came from."""

    model_name = "clock"

    def __init__(self):
        self.heard = []

    def encode_chunk(self, samples):
        assert len(samples) == 30 * SR  # every pass hears a full 30 s
        self.heard.append(samples)
        return samples.reshape(1500, 320).mean(axis=1, keepdims=True).astype(np.float32)


def _ramp(path, seconds):
    t = np.arange(int(seconds * SR)) / SR
    sf.write(path, (t / 1000).astype(np.float32), SR, subtype="FLOAT")
    return str(path)


def _times(frames):
    return frames[:, 0] * 1000


def test_each_chunk_is_encoded_once_and_windows_pool_from_it(tmp_path):
    enc = FrameClock()
    rf = RecordingFeatures(_ramp(tmp_path / "a.wav", 75.0), enc)
    for start in np.arange(0, 70, 2.0):
        rf.pooled(start, start + 4.0)
    assert rf.passes == 3 and len(enc.heard) == 3


def test_frames_map_to_their_times_across_chunks_and_in_the_shifted_last_chunk(tmp_path):
    rf = RecordingFeatures(_ramp(tmp_path / "a.wav", 75.0), FrameClock())
    frames = rf.frames(28.0, 32.0)  # crosses the first chunk border
    assert len(frames) == 4 * FRAMES_PER_S
    assert _times(frames) == pytest.approx(np.arange(28.0, 32.0, 0.02) + 0.01, abs=1e-3)
    assert rf.chunk_start(2) == 45 * SR  # the last chunk ends at the recording's end
    late = rf.frames(70.0, 74.0)
    assert _times(late) == pytest.approx(np.arange(70.0, 74.0, 0.02) + 0.01, abs=1e-3)


def test_a_short_recording_is_looped_to_fill_the_pass(tmp_path):
    enc = FrameClock()
    rf = RecordingFeatures(_ramp(tmp_path / "b.wav", 3.0), enc)
    frames = rf.frames(0.5, 2.5)
    assert _times(frames) == pytest.approx(np.arange(0.5, 2.5, 0.02) + 0.01, abs=1e-3)
    heard = enc.heard[0]
    assert np.allclose(heard[3 * SR: 6 * SR], heard[: 3 * SR])  # looped, not zero-padded


def test_disk_cache_skips_the_encoder(tmp_path):
    path = _ramp(tmp_path / "c.wav", 10.0)
    first = RecordingFeatures(path, FrameClock(), cache_dir=tmp_path / "cache")
    a = first.pooled(1.0, 5.0)
    again = RecordingFeatures(path, FrameClock(), cache_dir=tmp_path / "cache")
    assert np.allclose(again.pooled(1.0, 5.0), a) and again.passes == 0


def test_pooling_and_lru():
    frames = np.array([[1.0, 2.0], [3.0, 6.0]])
    assert pool(frames, "mean").tolist() == [2.0, 4.0]
    assert pool(frames, "mean+std").tolist() == [2.0, 4.0, 1.0, 2.0]
    with pytest.raises(ValueError):
        pool(frames, "max")
    made = []
    cache = FeatureCache(lambda rid: made.append(rid) or rid, size=2)
    for rid in ["a", "b", "a", "c", "a", "b"]:
        cache.get(rid)
    assert made == ["a", "b", "c", "b"]
