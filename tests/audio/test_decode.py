"""Probing and streaming decode to 16 kHz mono FLAC."""

from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
from audiogen import dominant_hz, encode_pyav, sine, write_audio

from cpqa.audio import decode
from cpqa.audio.decode import DecodeError, count_nonfinite, decode_to_flac, probe

pytestmark = pytest.mark.timeout(60)


def _decoded(path):
    samples, rate = sf.read(str(path), dtype="float32")
    assert rate == 16000 and samples.ndim == 1
    return samples


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resampling_keeps_duration_and_frequency(tmp_path, rate):
    src = write_audio(tmp_path / "tone.wav", sine(440, 2.5, rate), rate)
    result = decode_to_flac(src, tmp_path / "out.flac")
    assert abs(result.duration_s - 2.5) < 0.001
    assert (result.source.sample_rate, result.source.channels, result.source_frames) == (rate, 1, int(2.5 * rate))
    out = _decoded(result.path)
    assert len(out) == result.samples
    assert abs(dominant_hz(out, 16000) - 440) < 2
    assert 0.45 < np.abs(out[1000:-1000]).max() < 0.55


def test_stereo_44k_is_downmixed_by_mean(tmp_path):
    left = sine(1000, 3.0, 44100, amplitude=0.8)
    src = write_audio(tmp_path / "stereo.wav", np.stack([left, np.zeros_like(left)], axis=1), 44100)
    info = probe(src)
    assert (info.sample_rate, info.channels, info.frames, info.is_pipeline_ready) == (44100, 2, 3 * 44100, False)
    result = decode_to_flac(src, tmp_path / "out.flac", info=info)
    out = _decoded(result.path)
    assert abs(result.duration_s - 3.0) < 0.001
    assert abs(np.abs(out[2000:-2000]).max() - 0.4) < 0.01  # mean of 0.8 and 0
    assert abs(dominant_hz(out, 16000) - 1000) < 2


def test_many_channels_are_averaged(tmp_path):
    channels = np.stack([np.full(16000, 0.1 * (c + 1), dtype=np.float32) for c in range(8)], axis=1)
    src = write_audio(tmp_path / "octo.wav", channels, 16000, subtype="FLOAT")
    result = decode_to_flac(src, tmp_path / "out.flac")
    assert result.source.channels == 8
    np.testing.assert_allclose(_decoded(result.path), 0.45, atol=1e-4)


def test_float32_16k_mono_is_pipeline_ready_and_decodes_exactly(tmp_path):
    tone = sine(300, 1.0, 16000)
    src = write_audio(tmp_path / "float.wav", tone, 16000, subtype="FLOAT")
    info = probe(src)
    assert info.is_pipeline_ready and info.codec == "FLOAT" and info.duration_s == 1.0
    result = decode_to_flac(src, tmp_path / "out.flac", info=info, bit_depth=24)
    assert sf.info(str(result.path)).subtype == "PCM_24"
    np.testing.assert_allclose(_decoded(result.path), tone, atol=1e-5)


def test_nonfinite_samples_become_zero_and_are_counted(tmp_path):
    tone = sine(300, 1.0, 16000)
    tone[[10, 20, 30]] = [np.nan, np.inf, -np.inf]
    src = write_audio(tmp_path / "nan.wav", tone, 16000, subtype="FLOAT")
    assert count_nonfinite(probe(src)) == 3
    result = decode_to_flac(src, tmp_path / "out.flac")
    out = _decoded(result.path)
    assert result.n_nonfinite == 3
    assert np.isfinite(out).all() and out[[10, 20, 30]].tolist() == [0.0, 0.0, 0.0]


def test_values_beyond_full_scale_are_clipped_and_counted(tmp_path):
    loud = np.full(1600, 2.0, dtype=np.float32)
    loud[:800] = 0.5
    result = decode_to_flac(write_audio(tmp_path / "loud.wav", loud, 16000, subtype="FLOAT"), tmp_path / "o.flac")
    out = _decoded(result.path)
    assert result.n_clipped == 800
    assert out.max() <= 1.0 and abs(out[0] - 0.5) < 1e-4


@pytest.mark.parametrize("suffix,codec,rate,tolerance_s", [
    (".mp3", "mp3", 44100, 0.03),
    (".opus", "libopus", 48000, 0.03),
    (".m4a", "aac", 44100, 0.03),
    (".webm", "libopus", 48000, 0.03),
])
def test_compressed_formats_decode_with_pyav(tmp_path, suffix, codec, rate, tolerance_s):
    src = encode_pyav(tmp_path / f"tone{suffix}", sine(440, 2.0, rate), rate, codec)
    info = probe(src)
    assert info.backend == "pyav" and info.sample_rate == rate and info.frames is None
    result = decode_to_flac(src, tmp_path / "out.flac", info=info)
    assert abs(result.duration_s - 2.0) < tolerance_s
    assert result.n_bad_packets == 0
    assert abs(dominant_hz(_decoded(result.path), 16000) - 440) < 3


def test_ogg_vorbis_decodes_with_soundfile(tmp_path):
    src = write_audio(tmp_path / "tone.ogg", sine(440, 2.0, 22050), 22050, subtype="VORBIS")
    info = probe(src)
    assert (info.backend, info.container) == ("soundfile", "OGG") and not info.is_pipeline_ready
    result = decode_to_flac(src, tmp_path / "out.flac", info=info)
    assert abs(result.duration_s - 2.0) < 0.001
    assert abs(dominant_hz(_decoded(result.path), 16000) - 440) < 2


def test_audio_with_a_wrong_suffix_is_still_decoded(tmp_path):
    src = encode_pyav(tmp_path / "tone.mp3", sine(440, 1.0, 16000), 16000, "mp3")
    renamed = src.rename(tmp_path / "actually-mp3.wav")
    assert probe(renamed).backend == "pyav"
    assert abs(decode_to_flac(renamed, tmp_path / "out.flac").duration_s - 1.0) < 0.03


def _missing(path):
    return path


def _empty(path):
    path.write_bytes(b"")
    return path


def _text(path):
    path.write_text("this is not audio\n" * 50)
    return path


def _truncated_header(path):
    write_audio(path, sine(440, 1.0, 16000), 16000)
    path.write_bytes(path.read_bytes()[:30])
    return path


def _random_bytes(path):
    path.write_bytes(np.random.default_rng(0).bytes(50_000))
    return path


def _random_mp3(path):
    return _random_bytes(path.with_suffix(".mp3"))


def _no_samples(path):
    return write_audio(path, np.zeros(0, dtype=np.float32), 16000)


def _directory(path):
    path.mkdir()
    return path


@pytest.mark.parametrize("make,reason", [
    (_missing, "missing_file"),
    (_empty, "empty_file"),
    (_text, "undecodable"),
    (_truncated_header, "undecodable"),
    (_random_bytes, "undecodable"),
    (_random_mp3, "undecodable"),
    (_no_samples, "zero_length"),
    (_directory, "undecodable"),
])
def test_bad_inputs_raise_a_typed_error_and_leave_no_file(tmp_path, make, reason):
    src = make(tmp_path / "bad.wav")
    out_dir = tmp_path / "out"
    with pytest.raises(DecodeError) as caught:
        decode_to_flac(src, out_dir / "bad.flac")
    assert caught.value.reason == reason
    assert str(src) in str(caught.value)
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_permission_denied_is_unreadable(tmp_path, monkeypatch):
    src = write_audio(tmp_path / "locked.wav", sine(440, 0.5, 16000), 16000)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(decode, "open", denied, raising=False)
    with pytest.raises(DecodeError) as caught:
        probe(src)
    assert caught.value.reason == "audio_unreadable"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_mode_000_file_is_unreadable(tmp_path):
    src = write_audio(tmp_path / "locked.wav", sine(440, 0.5, 16000), 16000)
    src.chmod(0)
    with pytest.raises(DecodeError) as caught:
        probe(src)
    assert caught.value.reason == "audio_unreadable"


def test_a_corrupt_packet_in_an_mp3_is_skipped_and_counted(tmp_path):
    src = encode_pyav(tmp_path / "tone.mp3", sine(440, 3.0, 44100), 44100, "mp3")
    data = bytearray(src.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 300] = np.random.default_rng(1).bytes(300)
    src.write_bytes(bytes(data))
    result = decode_to_flac(src, tmp_path / "out.flac")
    assert result.n_bad_packets >= 1
    assert 2.7 < result.duration_s <= 3.01


def test_truncated_data_decodes_what_is_there(tmp_path):
    src = write_audio(tmp_path / "cut.wav", sine(440, 2.0, 16000), 16000)
    src.write_bytes(src.read_bytes()[:44 + 16000 * 2])  # header promises 2 s, 1 s remains
    assert abs(decode_to_flac(src, tmp_path / "out.flac").duration_s - 1.0) < 0.001


def test_too_long_is_refused_before_decoding(tmp_path):
    src = write_audio(tmp_path / "long.wav", sine(440, 3.0, 16000), 16000)
    with pytest.raises(DecodeError) as caught:
        decode_to_flac(src, tmp_path / "out.flac", max_duration_s=2.0)
    assert caught.value.reason == "too_long"
    assert list(tmp_path.iterdir()) == [src]


def test_a_long_file_decodes_in_bounded_memory(tmp_path):
    """20 min at 48 kHz: 230 MB as float32 in memory; decoding must stay far below."""
    rate, minutes = 48000, 20
    src = tmp_path / "long.wav"
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(src), "w", rate, 1, subtype="PCM_16") as f:
        for _ in range(minutes):
            f.write(rng.integers(-3000, 3000, rate * 60, dtype=np.int16))
    tracemalloc.start()
    try:
        result = decode_to_flac(src, tmp_path / "long.flac")
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert abs(result.duration_s - minutes * 60) < 0.001
    assert sf.info(str(result.path)).frames == result.samples
    assert peak_bytes < 20e6, f"peak {peak_bytes / 1e6:.1f} MB"
