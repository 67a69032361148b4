"""Jitter, shimmer and HNR: our numpy method on synthetic vowels with known perturbation and noise,
against Praat (through parselmouth, when installed) on the same vowels and on real RAVDESS speech."""

import csv
import sys
import time

import numpy as np
import pytest
from scipy.signal import lfilter

from cpqa.errors import CPQAError
from cpqa.labels import prosody, voice

pytestmark = pytest.mark.timeout(60)
SR = 16000
KEYS = ("jitter_local", "shimmer_local", "hnr_db")


def _vowel(f0_hz=120.0, seconds=2.0, jitter=0.0, shimmer=0.0, snr_db=None, seed=0):
    """A synthetic /a/: band-limited pulses whose periods and amplitudes vary by Gaussian factors
    of standard deviation `jitter` and `shimmer`, through three formant resonators and a glottal
    tilt, plus white noise at `snr_db`."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    times, t = [], 0.01
    while t < seconds - 0.01:
        times.append(t)
        t += (1 + jitter * rng.standard_normal()) / f0_hz
    source = np.zeros(n)
    taps = np.arange(-16, 17)
    taper = np.hanning(len(taps) + 2)[1:-1]
    for when, amplitude in zip(times, 1 + shimmer * rng.standard_normal(len(times))):
        index = int(when * SR) + taps
        keep = (index >= 0) & (index < n)
        source[index[keep]] += amplitude * (np.sinc(index - when * SR) * taper)[keep]  # a pulse between samples
    y = source
    for formant_hz, bandwidth_hz in ((700, 80), (1220, 90), (2600, 120)):
        r = np.exp(-np.pi * bandwidth_hz / SR)
        y = lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * formant_hz / SR), r * r], y)
    y = lfilter([1], [1, -0.95], y)
    if snr_db is not None:
        noise = rng.standard_normal(n)
        y = y + noise * np.sqrt(np.mean(y**2) / np.mean(noise**2)) / 10 ** (snr_db / 20)
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def _measures(x, method="cpqa"):
    return voice.voice_quality(x, prosody.pitch_track(x), method=method)


def _increasing(values):
    return all(a < b for a, b in zip(values, values[1:]))


@pytest.fixture(scope="module")
def vowels():
    """Synthetic vowels by what was injected: (kind, level) -> samples."""
    cases = {("jitter", j): _vowel(jitter=j) for j in (0.0, 0.005, 0.01, 0.02)}
    cases |= {("shimmer", s): _vowel(shimmer=s) for s in (0.03, 0.06, 0.12)}
    cases |= {("snr", snr): _vowel(snr_db=snr) for snr in (5, 10, 20, 30)}
    cases[("jitter_high_f0", 0.01)] = _vowel(f0_hz=220.0, jitter=0.01)
    return cases


def test_jitter_tracks_injected_period_perturbation(vowels):
    jitter = [_measures(vowels[("jitter", j)])["jitter_local"] for j in (0.0, 0.005, 0.01, 0.02)]
    assert jitter[0] < 0.001
    assert _increasing(jitter)
    # Gaussian period factors of sd s give E|T_i - T_(i+1)| / T = 1.128 s
    assert jitter[1:] == pytest.approx([1.128 * j for j in (0.005, 0.01, 0.02)], rel=0.3)
    assert _measures(vowels[("jitter_high_f0", 0.01)])["jitter_local"] == pytest.approx(0.01128, rel=0.3)


def test_shimmer_tracks_injected_amplitude_perturbation(vowels):
    shimmer = [_measures(vowels[("shimmer", s)])["shimmer_local"] for s in (0.03, 0.06, 0.12)]
    assert _increasing(shimmer)
    assert shimmer == pytest.approx([1.128 * s for s in (0.03, 0.06, 0.12)], rel=0.2)
    assert _measures(vowels[("jitter", 0.0)])["shimmer_local"] < 0.01


def test_hnr_tracks_added_noise(vowels):
    hnr = [_measures(vowels[("snr", snr)])["hnr_db"] for snr in (5, 10, 20, 30)]
    assert _increasing(hnr)
    assert hnr == pytest.approx([5, 10, 20, 30], abs=1.5)
    clean = _measures(vowels[("jitter", 0.0)])
    assert clean["hnr_db"] > 30 and clean["voiced_s"] == pytest.approx(2.0, abs=0.1)
    assert clean["model"] == voice.VOICE_MODEL


def test_no_measures_without_enough_voice():
    rng = np.random.default_rng(0)
    assert _measures(np.zeros(SR, np.float32)) is None
    assert _measures(_vowel(seconds=0.3)) is None
    assert _measures((0.1 * rng.standard_normal(2 * SR)).astype(np.float32)) is None
    with pytest.raises(CPQAError, match="unknown voice-quality method"):
        voice.voice_quality(np.zeros(SR), method="opensmile")


def test_cost_is_a_small_share_of_real_time():
    x = _vowel(seconds=10.0, jitter=0.01, snr_db=20)
    track = prosody.pitch_track(x)
    seconds = []
    for _ in range(3):
        start = time.process_time()
        voice.voice_quality(x, track)
        seconds.append(time.process_time() - start)
    assert min(seconds) / 10.0 < 0.02  # CPU seconds per audio second (about 0.005–0.01 measured)


def test_praat_method_names_its_gpl_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "parselmouth", None)  # as if not installed
    with pytest.raises(CPQAError, match=r"GPL-3.*pip install 'cpqa\[praat\]'"):
        voice.voice_quality(np.zeros(SR), method="praat")


def test_close_to_praat_on_synthetic_vowels(vowels):
    pytest.importorskip("parselmouth")
    for (kind, level), x in vowels.items():
        ours, praat = _measures(x), _measures(x, method="praat")
        assert praat["model"] == voice.PRAAT_VOICE_MODEL
        assert ours["jitter_local"] == pytest.approx(praat["jitter_local"], rel=0.15, abs=0.0005), (kind, level)
        assert ours["shimmer_local"] == pytest.approx(praat["shimmer_local"], rel=0.15, abs=0.003), (kind, level)
        if kind == "snr":  # Boersma's autocorrelation and Praat's cross-correlation agree on additive noise
            assert ours["hnr_db"] == pytest.approx(praat["hnr_db"], abs=1.5), level


def test_correlates_with_praat_on_real_speech(real_data):
    pytest.importorskip("parselmouth")
    import soundfile as sf
    import soxr

    with open(real_data / "ravdess" / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))[::3]  # 27 clips, both genders, all eight emotions
    ours, praat = [], []
    for row in rows:
        x, rate = sf.read(real_data / "ravdess" / row["file"], dtype="float64")
        x = soxr.resample(x, rate, SR)
        a, b = _measures(x), _measures(x, method="praat")
        if a and b and all(a[k] is not None and b[k] is not None for k in KEYS):
            ours.append([a[k] for k in KEYS])
            praat.append([b[k] for k in KEYS])
    ours, praat = np.array(ours), np.array(praat)
    assert len(ours) >= 20
    for i, (key, mad) in enumerate(zip(KEYS, (0.006, 0.02, 3.0))):
        assert np.corrcoef(ours[:, i], praat[:, i])[0, 1] > 0.6, key
        assert np.mean(np.abs(ours[:, i] - praat[:, i])) < mad, key
