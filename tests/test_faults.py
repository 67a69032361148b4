"""Faults and fuzz: a generated corpus of broken and odd audio is processed to the end (every file
either processed or skipped with a reason, no crash); a full disk is a clear error and the run
resumes to the same records."""

import errno
import json
import struct

import numpy as np
import pytest
import soundfile as sf

from cpqa.errors import CPQAError
from cpqa.manifest import RecordWriter
from cpqa.run import build
from cpqa.status import run_status
from cpqa.testing.audio import bursts


def wav_header(data_bytes: int, rate: int = 16000, channels: int = 1) -> bytes:
    return (b"RIFF" + struct.pack("<I", min(36 + data_bytes, 0xFFFFFFFF)) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16) +
            b"data" + struct.pack("<I", data_bytes))


@pytest.fixture
def fuzz_corpus(tmp_path):
    d = tmp_path / "fuzz"
    d.mkdir()
    rng = np.random.default_rng(0)
    speechlike = bursts(6.0, 16000, seed=1)
    (d / "truncated_header.wav").write_bytes(wav_header(32000)[:20])
    (d / "random_bytes.wav").write_bytes(rng.bytes(50_000))
    (d / "random_bytes.mp3").write_bytes(rng.bytes(20_000))
    (d / "huge_declared_size.wav").write_bytes(wav_header(0xFFFFFFF0) + (speechlike * 20000).astype("<i2").tobytes())
    with_nan = speechlike.copy()
    with_nan[1000:1100] = np.nan
    with_nan[5000:5010] = np.inf
    sf.write(d / "nan_inf.wav", with_nan, 16000, subtype="FLOAT")
    sf.write(d / "one_sample.wav", np.array([0.1], dtype=np.float32), 16000)
    sf.write(d / "rate_8k.wav", bursts(6.0, 8000, seed=2), 8000)
    sf.write(d / "six_channels.flac", np.tile(bursts(6.0, 48000, seed=3)[:, None], (1, 6)), 48000)
    sf.write(d / "long_silence.flac", np.zeros(16000 * 60 * 20, dtype=np.int16), 16000)  # 20 min of silence
    sf.write(d / "clipping.wav", np.clip(speechlike * 8, -1, 1), 16000)
    return d, {"huge_declared_size", "nan_inf", "rate_8k", "six_channels", "clipping"}


@pytest.mark.timeout(300)
def test_fuzz_corpus_is_processed_or_skipped_with_reasons(tmp_path, fuzz_corpus):
    folder, speechy = fuzz_corpus
    run = tmp_path / "run"
    result = build(folder, run, recipe="dummy")
    status = run_status(run)
    recordings = status["recordings"]
    assert len(recordings) == len(list(folder.iterdir()))  # nothing silently lost
    for rid, state in recordings.items():
        assert state["state"] == "ok" or state.get("reason"), (rid, state)
    assert {rid for rid, s in recordings.items() if s["state"] == "ok"} >= speechy
    assert recordings["truncated_header"]["reason"] == "undecodable"
    assert recordings["random_bytes"]["reason"] == "undecodable"
    assert recordings["long_silence"]["reason"] == "no_speech"
    assert all(s.already_done is False for s in result.stages)
    segments = [json.loads(line) for line in (next(run.glob("02-transcribe-*")) / "records.jsonl").open()]
    assert all(np.isfinite([s["start"], s["end"]]).all() for s in segments)


def test_disk_full_is_a_clear_error_and_the_run_resumes(tmp_path, monkeypatch):
    (tmp_path / "in").mkdir()
    for i in range(6):
        sf.write(tmp_path / "in" / f"r{i}.wav", bursts(5.0, 16000, seed=i), 16000)
    reference = build(tmp_path / "in", tmp_path / "ref", recipe="dummy")

    real_write = RecordWriter.write
    calls = {"n": 0}

    def failing_write(self, record):
        calls["n"] += 1
        if calls["n"] > 20:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, record)

    monkeypatch.setattr(RecordWriter, "write", failing_write)
    with pytest.raises(CPQAError, match="no space left.*rerun the same command"):
        build(tmp_path / "in", tmp_path / "run", recipe="dummy", overrides=["transcribe.batch_size=2"])
    monkeypatch.setattr(RecordWriter, "write", real_write)
    resumed = build(tmp_path / "in", tmp_path / "run", recipe="dummy", overrides=["transcribe.batch_size=2"])
    for ref, res in zip(reference.stages, resumed.stages):
        ref_lines = (ref.dir / "records.jsonl").read_text().replace(str(tmp_path / "ref"), "RUN")
        res_lines = (res.dir / "records.jsonl").read_text().replace(str(tmp_path / "run"), "RUN")
        assert sorted(ref_lines.splitlines()) == sorted(res_lines.splitlines())
