"""`annotate` in a real build: ingest of 48 kHz RAVDESS files, Silero VAD, dummy ASR, then annotate."""

import json
import shutil
from pathlib import Path

import pytest

from cpqa.manifest import iter_jsonl
from cpqa.run import build

RAVDESS = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "ravdess" / "wav"
pytestmark = pytest.mark.skipif(not RAVDESS.exists(), reason="shared RAVDESS data not present")

RECIPE = """
documentation: Silero VAD, dummy ASR, real annotate
stages:
  ingest: {}
  segment:
    backend: {name: silero}
  transcribe:
    backend: {name: dummy}
  annotate: {}
"""


def test_build_until_annotate_fills_windows_labels_and_word_tags(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    for wav in sorted(RAVDESS.glob("*.wav"))[:2]:
        shutil.copy(wav, data / wav.name)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    result = build(data, tmp_path / "run", recipe=str(recipe), until="annotate")
    annotate_dir = result.stages[-1].dir
    records = list(iter_jsonl(annotate_dir / "records.jsonl"))
    upstream = list(iter_jsonl(result.stages[-2].dir / "records.jsonl"))
    skipped = list(iter_jsonl(annotate_dir / "skipped.jsonl"))
    assert records and len(records) + len(skipped) == len(upstream)
    for seg in records:
        assert seg["windows"] and all(w["emotion"]["label"] for w in seg["windows"])
        for key in ("emotion", "valence", "gender", "pitch_mean_hz", "loudness_lufs", "snr_db"):
            assert seg["labels"][key]["model"], key
        assert all(w["emotion"] and w["gender"] for w in seg["words"])
    stats = json.loads((annotate_dir / "stats.json").read_text())
    assert stats["counters"]["segments"] == len(records) and stats["counters"]["windows"] >= len(records)

    again = build(data, tmp_path / "run", recipe=str(recipe), until="annotate")  # resume: nothing to redo
    assert not again.did_work and list(iter_jsonl(annotate_dir / "records.jsonl")) == records
