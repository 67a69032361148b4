"""Silero VAD backend on real speech and on silence."""

import itertools

import numpy as np
import pytest
from pydantic import ValidationError
from speechgen import load_16k, quiet_noise, ravdess_files

from cpqa.audio.io import SAMPLE_RATE
from cpqa.audio.vad import SileroVAD
from cpqa.registry import backend_registry


@pytest.fixture(scope="module")
def vad():
    return SileroVAD()


def test_registered_as_silero():
    assert backend_registry("vad").get("silero") is SileroVAD


def test_finds_the_sentence_in_every_ravdess_clip(real_data, vad):
    files = ravdess_files(real_data)
    assert len(files) == 80
    for path in files:
        audio = load_16k(path)
        regions = vad.detect(audio)
        assert regions, f"no speech found in {path.name}"
        speech_s = sum(r.end - r.start for r in regions)
        # each clip says one short sentence between about a second of silence on either side
        assert 0.8 < speech_s < 3.5, (path.name, regions)
        assert regions[0].start >= 0 and regions[-1].end <= len(audio) / SAMPLE_RATE
        assert regions[0].start > 0.2, f"{path.name}: the leading silence was taken as speech"
        assert all(a.end <= b.start for a, b in itertools.pairwise(regions))


@pytest.mark.parametrize("audio", [
    np.zeros(10 * SAMPLE_RATE, dtype=np.float32),
    quiet_noise(10.0, rms=1e-3),
    np.zeros(0, dtype=np.float32),
], ids=["silence", "low-noise", "empty"])
def test_finds_nothing_in_silence_or_low_noise(vad, audio):
    assert vad.detect(audio) == []


def test_times_are_seconds_from_the_first_sample(real_data, vad):
    speech = load_16k(ravdess_files(real_data)[0])
    plain = vad.detect(speech)
    shifted = vad.detect(np.concatenate([np.zeros(3 * SAMPLE_RATE, dtype=np.float32), speech]))
    assert len(plain) == len(shifted)
    for a, b in zip(plain, shifted):
        assert b.start - a.start == pytest.approx(3.0, abs=0.07)


def test_options_are_validated_and_used(real_data):
    with pytest.raises(ValidationError):
        SileroVAD.Config(threshold=1.5)
    with pytest.raises(ValidationError):
        SileroVAD.Config(min_silence_ms=100)  # unknown option
    speech = load_16k(ravdess_files(real_data)[0])
    tight = SileroVAD(SileroVAD.Config(speech_pad_s=0.0, min_silence_s=0.3)).detect(speech)
    padded = SileroVAD(SileroVAD.Config(speech_pad_s=0.3, min_silence_s=0.3)).detect(speech)
    assert len(tight) == len(padded) == 1
    assert tight[0].start - padded[0].start == pytest.approx(0.3, abs=0.001)
    assert padded[0].end - tight[0].end == pytest.approx(0.3, abs=0.001)


def test_reports_short_regions_unless_asked_to_drop_them(real_data):
    """RAVDESS actor 14 shouting: at threshold 0.5 Silero hears one 0.22 s piece of the sentence. The
    default reports it (the segment stage joins fragments before filtering by length)."""
    speech = load_16k(real_data / "ravdess_train" / "flac" / "03-01-05-02-02-01-14.flac")
    assert SileroVAD.Config().min_speech_s == 0
    [piece] = SileroVAD(SileroVAD.Config(threshold=0.5, speech_pad_s=0.0)).detect(speech)
    assert 0.15 < piece.end - piece.start < 0.25
    assert SileroVAD(SileroVAD.Config(threshold=0.5, speech_pad_s=0.0, min_speech_s=0.25)).detect(speech) == []
