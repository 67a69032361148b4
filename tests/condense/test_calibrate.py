"""Calibration of x, y, k, r on a labelled dev set: label mapping, the grid search, its outputs and
the `calibrate` command (on a synthetic labelled run of the RAVDESS dev set)."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest
import yaml
from condense_synth import SENTIMENT, make_recipe
from typer.testing import CliRunner

from cpqa.condense.calibrate import (
    LabelledItem,
    WindowPrediction,
    calibrate,
    human_labels,
    load_label_mapping,
    map_labels,
    write_recipe_thresholds,
)
from cpqa.condense.cli import app
from cpqa.errors import CPQAError
from cpqa.manifest import iter_jsonl
from cpqa.records import Recording
from cpqa.run import LocalExecutor


def test_corpus_labels_map_onto_the_vocabulary_and_the_rest_is_reported(tmp_path):
    mapping = load_label_mapping(None)
    raw = {"a": "happiness", "b": "anger", "c": "calm", "d": "fear", "e": "disgust", "f": "sadness",
           "g": "surprise", "h": "boredom", "i": "Neutral", "j": "boredom"}
    mapped = map_labels(raw, mapping)
    assert mapped.labels == {"a": "happy", "b": "angry", "c": "neutral", "d": "fearful", "e": "disgusted",
                             "f": "sad", "g": "surprised", "i": "neutral"}
    assert mapped.unmappable == {"boredom": 2}
    path = tmp_path / "map.yaml"
    path.write_text("boredom: neutral\ncalm: null\n")
    mapped = map_labels(raw, load_label_mapping(path))
    assert mapped.labels["h"] == "neutral" and "c" not in mapped.labels
    assert mapped.excluded == {"calm": 1} and mapped.unmappable == {}
    path.write_text("boredom: bored\n")
    with pytest.raises(CPQAError, match="not in the emotion vocabulary"):
        load_label_mapping(path)


def test_labels_join_by_metadata_then_manifest_path_then_id(tmp_path):
    (tmp_path / "wav").mkdir()
    manifest = tmp_path / "m.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "id", "label"])
        w.writerows([["wav/a.wav", "", "anger"], ["wav/b.wav", "rec-b", "calm"], ["wav/c.wav", "", "fear"]])
    recordings = [
        Recording(id="x", audio="/run/x.flac", duration=1, sample_rate=16000, channels=1,
                  source=str(tmp_path / "wav" / "a.wav")),
        Recording(id="rec-b", audio="/run/b.flac", duration=1, sample_rate=16000, channels=1, source="/elsewhere/b.wav"),
        Recording(id="c", audio="/run/c.flac", duration=1, sample_rate=16000, channels=1, metadata={"label": "sadness"}),
        Recording(id="d", audio="/run/d.flac", duration=1, sample_rate=16000, channels=1),
    ]
    assert human_labels(recordings, manifest, "label") == {"x": "anger", "rec-b": "calm", "c": "sadness"}
    with pytest.raises(CPQAError, match="no column 'emotion'"):
        human_labels(recordings, manifest, "emotion")
    gzipped = tmp_path / "m.csv.gz"  # read as ingest reads it (it used to be taken for JSONL)
    gzipped.write_bytes(gzip.compress(manifest.read_bytes()))
    assert human_labels(recordings, gzipped, "label") == {"x": "anger", "rec-b": "calm", "c": "sadness"}


def _item(i: int, label: str, *windows) -> LabelledItem:
    return LabelledItem(f"i{i}", label, tuple(WindowPrediction(*w) for w in windows))


def test_grid_search_finds_the_thresholds_that_separate_true_from_false_windows():
    # Correct predictions carry valence on the right side of 0.6 / 0.3; wrong ones the opposite.
    items = []
    for i in range(30):
        items.append(_item(i, "happy", ("happy", 0.9, 0.7)))
        items.append(_item(100 + i, "sad", ("sad", 0.9, 0.2)))
        items.append(_item(200 + i, "sad", ("happy", 0.9, 0.55)))  # wrong, valence 0.55
        items.append(_item(300 + i, "happy", ("sad", 0.9, 0.35)))  # wrong, valence 0.35
    result = calibrate(items, xs=(0.5, 0.6), ys=(0.3, 0.4), min_windows=(1,), min_window_shares=(1.0,))
    assert (result.best.x, result.best.y, result.best.ua, result.best.kept_share) == (0.6, 0.3, 1.0, 0.5)
    assert {(p.x, p.y) for p in result.grid} == {(0.5, 0.3), (0.5, 0.4), (0.6, 0.3), (0.6, 0.4)}
    assert next(p for p in result.grid if (p.x, p.y) == (0.5, 0.4)).ua == 0.5
    with pytest.raises(CPQAError, match="no setting keeps"):
        calibrate(items[:4], xs=(0.9,), ys=(0.05,), min_kept_share=0.9)


@pytest.fixture
def dev_run(real_data, tmp_path) -> tuple[Path, Path]:
    """A labelled run of the RAVDESS dev set: recordings keep the manifest's columns as metadata
    (as ingest does); synthetic annotation with 60 % correct windows."""
    manifest = real_data / "ravdess" / "manifest.csv"
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    entries = [{"id": Path(r["file"]).stem, "audio": str(real_data / "ravdess" / r["file"]),
                "duration": float(r["duration_s"]), "metadata": {"kind": "ravdess", **r}} for r in rows]
    entries.append({"id": "bored", "audio": "-", "duration": 3.0, "metadata": {"kind": "ravdess", "label": "boredom", "speaker": "x", "gender": "male"}})
    corpus = tmp_path / "dev.json"
    corpus.write_text(json.dumps(entries))
    run = tmp_path / "run"
    LocalExecutor().build(corpus, run, make_recipe(agree=0.6))
    return run, manifest


def _recompute_ua(run: Path, report: dict) -> tuple[float, float]:
    """UA and kept share from the annotate records, written out independently of the library."""
    truth = {"neutral": "neutral", "calm": "neutral", "happiness": "happy", "sadness": "sad", "anger": "angry",
             "fear": "fearful", "disgust": "disgusted", "surprise": "surprised"}
    labels = {r["id"]: truth[r["metadata"]["label"]] for r in iter_jsonl(next(run.glob("00-ingest-*")) / "records.jsonl")
              if r["metadata"]["label"] in truth}
    windows: dict[str, list[dict]] = {}
    for seg in iter_jsonl(next(run.glob("01-annotate-*")) / "records.jsonl"):
        windows.setdefault(seg["recording_id"], []).extend(seg["windows"])
    x, y, k, r = report["x"], report["y"], report["min_windows"], report["min_window_share"]
    hits: dict[str, list[bool]] = {}
    for rid, label in labels.items():
        kept = []
        for w in windows[rid]:
            e, score, v = w["emotion"]["label"], w["emotion"]["score"], w["valence"]
            s = SENTIMENT.get(e)
            if ((s == "positive" and v >= x) or (s == "negative" and v <= y) or (s == "neutral" and y < v < x)
                    or (s == "ambiguous" and score >= 0.5)):
                kept.append((e, score))
        qualifying = {}
        for e in {e for e, _ in kept}:
            scores = [score for name, score in kept if name == e]
            if len(scores) >= k or len(scores) / len(windows[rid]) >= r:
                qualifying[e] = (len(scores), sum(scores) / len(scores))
        if qualifying:  # most windows, then the higher mean score, then the name
            best = min(qualifying, key=lambda e: (-qualifying[e][0], -qualifying[e][1], e))
            hits.setdefault(label, []).append(best == label)
    ua = sum(sum(v) / len(v) for v in hits.values()) / len(hits)
    return ua, sum(len(v) for v in hits.values()) / len(labels)


def test_calibrate_command_reports_the_recomputable_best_setting(dev_run, tmp_path):
    run, manifest = dev_run
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("documentation: test\nstages:\n  ingest: {}\n  condense:\n    x: 0.5\n    min_segment_duration_s: 2\n")
    out = tmp_path / "cal"
    result = CliRunner().invoke(app, ["--manifest", str(manifest), "--label-column", "label", "--run", str(run),
                                      "-o", str(out), "--write-recipe", str(recipe), "--min-kept-share", "0.6"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["y"] < report["x"] and report["kept_share"] >= 0.6
    assert report["unmappable"] == {"boredom": 1}
    ua, kept_share = _recompute_ua(run, report)
    assert report["ua"] == pytest.approx(ua, abs=1e-6) and report["kept_share"] == pytest.approx(kept_share, abs=1e-6)
    assert 1 / 7 * 2 < report["ua"] < 1  # well above chance on the 7 classes, below perfect
    assert (out / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((out / "calibration.json").read_text())
    assert max(p["ua"] for p in saved["points"] if p["kept_share"] >= 0.6) == report["ua"]
    assert len(report["grid"]["ua"]) == len(report["grid"]["ys"])
    condense = yaml.safe_load(recipe.read_text())["stages"]["condense"]
    assert condense == {"x": report["x"], "min_segment_duration_s": 2, "y": report["y"],
                        "min_windows": report["min_windows"], "min_window_share": report["min_window_share"]}


def test_write_recipe_needs_a_condense_stage(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("stages:\n  ingest: {}\n")
    with pytest.raises(CPQAError, match="no 'condense' stage"):
        write_recipe_thresholds(recipe, {"x": 0.5, "y": 0.4, "min_windows": 1, "min_window_share": 0.5})


def test_calibrate_command_errors_are_one_line(tmp_path):
    result = CliRunner().invoke(app, ["--manifest", str(tmp_path / "none.csv"), "--run", str(tmp_path)])
    assert result.exit_code == 2 and "error" in result.output
