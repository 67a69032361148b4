import numpy as np
import pytest

from cpqa.labels import prosody, quality
from cpqa.labels.text import text_sentiment
from cpqa.records import Word

SR = 16000


def _tone(f0, seconds=1.0, amp=0.3):
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * f0 * t)).astype(np.float32)


def test_pitch_of_a_tone():
    stats = prosody.pitch_stats(prosody.pitch_track(_tone(220.0)))
    assert stats["pitch_mean_hz"] == pytest.approx(220.0, rel=0.02)
    assert stats["pitch_std_hz"] < 5 and stats["voiced_ratio"] > 0.8
    assert prosody.pitch_stats(prosody.pitch_track(np.zeros(SR, np.float32))) is None


def test_loudness_follows_level():
    loud, quiet = prosody.loudness_lufs(_tone(440, amp=0.5)), prosody.loudness_lufs(_tone(440, amp=0.05))
    assert loud - quiet == pytest.approx(20.0, abs=0.5)
    assert prosody.loudness_lufs(np.zeros(SR, np.float32)) is None
    assert prosody.loudness_lufs(_tone(440, seconds=0.2)) is None


def test_rate_and_pauses_from_word_times():
    words = [Word(word="hello", start=0.0, end=0.5), Word(word="there", start=0.5, end=1.0),
             Word(word="beautiful", start=2.0, end=3.0)]
    rate = prosody.rate_and_pauses(words)
    assert rate["pause_count"] == 1 and rate["pause_total_s"] == pytest.approx(1.0)
    assert rate["speaking_rate_wps"] == pytest.approx(3 / 2.0)
    assert rate["syllable_rate"] == pytest.approx((2 + 1 + 3) / 2.0)
    assert prosody.rate_and_pauses([]) is None
    assert prosody.zscore(3.0, [1.0, 2.0, 3.0]) == pytest.approx(1.2247, abs=1e-3)
    assert prosody.zscore(3.0, [1.0, 2.0]) is None


def test_wada_snr_tracks_added_noise():
    rng = np.random.default_rng(0)
    # speech-like: Gamma-distributed amplitudes modulated by a syllable envelope
    speech = rng.gamma(0.4, size=3 * SR) * rng.choice([-1, 1], size=3 * SR)
    speech = (speech / np.abs(speech).max() * 0.5).astype(np.float32)
    estimates = []
    for snr in (0, 10, 20):
        noise = rng.standard_normal(len(speech))
        noise *= np.sqrt(np.mean(speech**2) / np.mean(noise**2)) / 10 ** (snr / 20)
        estimates.append(quality.wada_snr_db(speech + noise))
    assert estimates[0] < estimates[1] < estimates[2]
    assert estimates == pytest.approx([0, 10, 20], abs=2.5)
    assert quality.wada_snr_db(np.zeros(100)) is None


def test_clipping_ratio():
    x = np.zeros(1000, np.float32)
    x[:10] = 1.0
    assert quality.clipping_ratio(x) == pytest.approx(0.01)


def test_text_sentiment():
    assert text_sentiment("I love this, it is wonderful!")["label"] == "positive"
    assert text_sentiment("This is terrible and I hate it.")["label"] == "negative"
    assert text_sentiment("  ") is None
    assert text_sentiment("The table is brown.")["model"].startswith("vader")


@pytest.mark.slow
def test_dnsmos_scores_real_speech():
    from pathlib import Path

    import soundfile as sf

    path = Path(__file__).resolve().parents[3] / "shared/data/real/ami_meetings/meeting_excerpt_60s/mixture.wav"
    if not path.exists():
        pytest.skip("shared AMI data not present")
    x, _ = sf.read(path, dtype="float32")
    scores = quality.dnsmos(x[: 10 * SR])
    assert set(scores) == {"ovrl_mos", "sig_mos", "bak_mos", "p808_mos"}
    assert all(1.0 <= v <= 5.0 for v in scores.values())
    assert quality.dnsmos(x[: SR // 2]) is None
