"""`cpqa probe train/eval` end to end on a tiny synthetic manifest (real Whisper-base encoder)."""

import csv
import json

import numpy as np
import soundfile as sf
from typer.testing import CliRunner

from cpqa.cli.probe import app
from cpqa.labels.heads import ProbeHead
from cpqa.labels.probe_manifest import parse_label_map, read_manifest
from cpqa.labels.protocols import EMOTION2VEC_MAP

SR = 16000


def _manifest(tmp_path):
    """Three speakers, each with 'low' and 'high' hums (harmonic tones at 120 / 320 Hz) at 8 kHz
    stereo, so reading also resamples and downmixes."""
    rows = []
    rng = np.random.default_rng(0)
    t = np.arange(int(1.5 * 8000)) / 8000
    for spk in ("s1", "s2", "s3"):
        for label, f0 in (("low", 120.0), ("high", 320.0)):
            for take in range(2):
                f = f0 * (1 + 0.03 * rng.standard_normal())
                x = sum(0.2 / k * np.sin(2 * np.pi * k * f * t) for k in range(1, 6))
                x = np.stack([x, x], axis=1) + 0.005 * rng.standard_normal((len(t), 2))
                name = f"{spk}_{label}_{take}.wav"
                sf.write(tmp_path / name, x.astype(np.float32), 8000)
                rows.append({"file": name, "label": label, "speaker": spk})
    path = tmp_path / "manifest.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file", "label", "speaker"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_train_then_eval(tmp_path):
    manifest = _manifest(tmp_path)
    head_path = tmp_path / "pitch.npz"
    runner = CliRunner()
    result = runner.invoke(app, ["train", "-m", str(manifest), "--label-column", "label", "-o", str(head_path),
                                 "--work-dir", str(tmp_path / "work")])
    assert result.exit_code == 0, result.output
    assert "leave-speakers-out" in result.output and "UA=" in result.output
    head = ProbeHead.load(head_path)
    assert head.labels == ["high", "low"] and head.name == "pitch" and head.meta["n_speakers"] == 3
    assert head.meta["leave_speakers_out"]["ua"] >= 0.8

    scores = tmp_path / "scores.json"
    result = runner.invoke(app, ["eval", "-m", str(manifest), "--label-column", "label", "--head", str(head_path),
                                 "--work-dir", str(tmp_path / "work"), "--json", str(scores)])
    assert result.exit_code == 0, result.output
    data = json.loads(scores.read_text())
    assert data["n"] == 12 and data["wa"] >= 0.9 and len(data["confusion"]) == 2


def test_user_errors_exit_cleanly(tmp_path):
    manifest = _manifest(tmp_path)
    result = CliRunner().invoke(app, ["eval", "-m", str(manifest), "--label-column", "nope"])
    assert result.exit_code == 2 and "no column 'nope'" in result.output


def test_label_maps(tmp_path):
    assert parse_label_map("emotion2vec") is EMOTION2VEC_MAP
    assert parse_label_map("calm=neutral, anger=angry") == {"calm": "neutral", "anger": "angry"}
    manifest = _manifest(tmp_path)
    examples = read_manifest(manifest, "label", label_map={"low": "male"})
    assert {e.label for e in examples} == {"male"} and len(examples) == 6
    assert EMOTION2VEC_MAP["calm"] == "neutral"


def test_pack_both_gives_each_clip_packed_and_alone(tmp_path):
    from test_encoder import FrameClock

    from cpqa.labels.probe_features import extract_features

    examples = read_manifest(_manifest(tmp_path), "label")
    encoder = FrameClock()
    fs = extract_features(examples, tmp_path / "work", encoder, pack="both")
    assert len(fs.labels) == 2 * len(examples) and len(fs.features) == 2 * len(examples)  # 1.5-s clips: one window
    sources = {e.source for e in fs.examples}
    assert sources == {f"{tmp_path.name}/manifest.csv [context]", f"{tmp_path.name}/manifest.csv [alone]"}
    assert len(encoder.heard) == 3 + 12  # one pass per speaker's 6 s of packed clips, one per clip alone
    assert fs.speakers[:12] == fs.speakers[12:] and fs.labels[:12] == fs.labels[12:]


def test_window_clips_are_the_windows_of_the_clips_heard_alone(tmp_path):
    from test_encoder import FrameClock

    from cpqa.labels.probe_features import extract_features, window_clips

    examples = read_manifest(_manifest(tmp_path), "label")
    fs = extract_features(examples, tmp_path / "work", FrameClock(), pack="none")
    rows = list(window_clips(examples, tmp_path / "work"))
    assert [i for i, _, _ in rows] == fs.example.tolist()
    assert [span.duration for _, span, _ in rows] == fs.weight.tolist()
    assert all(len(clip) == round((span.context_end - span.context_start) * 16000) for _, span, clip in rows)


def test_ge2e_speaker_embedding_heads(tmp_path):
    manifest = _manifest(tmp_path)
    head_path = tmp_path / "pitch-ge2e.npz"
    runner = CliRunner()
    result = runner.invoke(app, ["train", "-m", str(manifest), "--label-column", "label", "-o", str(head_path),
                                 "--encoder", "resemblyzer-ge2e", "--work-dir", str(tmp_path / "work")])
    assert result.exit_code == 0, result.output
    head = ProbeHead.load(head_path)
    assert head.encoder == "resemblyzer-ge2e" and head.mean.shape == (256,) and head.pooling == "partials-mean"
    assert head.meta["leave_speakers_out"]["ua"] >= 0.8
    result = runner.invoke(app, ["eval", "-m", str(manifest), "--label-column", "label", "--head", str(head_path),
                                 "--work-dir", str(tmp_path / "work")])
    assert result.exit_code == 0 and "WA=1.000" in result.output, result.output
