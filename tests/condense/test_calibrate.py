"""Calibration of x, y, k, r on a labelled dev set: label mapping, the grid search, its outputs and
the `calibrate` command (on a synthetic labelled run of the RAVDESS dev set)."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest
import yaml
from condense_synth import RAVDESS_TO_VOCAB, SENTIMENT, make_recipe
from typer.testing import CliRunner

from cpqa.cli.calibrate import app
from cpqa.condense.calibrate import LabelledItem, WindowPrediction, calibrate
from cpqa.condense.calibrate_run import items_from_segments, write_recipe_thresholds
from cpqa.condense.calibration_labels import human_labels, load_label_mapping, map_labels
from cpqa.errors import CPQAError
from cpqa.executors.local import LocalExecutor
from cpqa.manifest import iter_jsonl
from cpqa.records import Recording, Segment


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


def test_ua_counts_every_labelled_class_and_reports_coverage():
    # At y = 0.3 sad and fearful keep nothing: UA used to average over happy alone (1.0) and pick it.
    items = [_item(i, "happy", ("happy", 0.9, 0.7)) for i in range(4)]
    items += [_item(10 + i, "sad", ("sad" if i else "fearful", 0.9, 0.35)) for i in range(4)]
    items += [_item(20 + i, "fearful", ("fearful", 0.9, 0.35)) for i in range(4)]
    result = calibrate(items, xs=(0.5,), ys=(0.3, 0.4), min_windows=(1,), min_window_shares=(1.0,))
    strict = next(p for p in result.grid if p.y == 0.3)
    assert strict.ua == pytest.approx(1 / 3, abs=1e-6) and strict.kept_share == pytest.approx(1 / 3, abs=1e-6)
    assert (result.best.y, result.best.ua, result.best.kept_share) == (0.4, pytest.approx((1 + 0.75 + 1) / 3, abs=1e-6), 1.0)
    assert result.items.recalls == {"fearful": 1.0, "happy": 1.0, "sad": 0.75}
    assert result.items.coverage == {"fearful": 1.0, "happy": 1.0, "sad": 1.0}
    summary = result.summary()
    assert summary["grid"]["ua"] == [[pytest.approx(1 / 3, abs=1e-6)], [summary["ua"]]]  # rows y = 0.3, 0.4


def test_kept_windows_are_compared_with_all_windows_and_abstentions_are_errors():
    abstained = (None, 0.3, 0.7)  # what an abstaining emotion head leaves: no label
    items = [_item(0, "happy", ("happy", 0.9, 0.8), ("sad", 0.9, 0.8), abstained),
             _item(1, "sad", ("sad", 0.9, 0.1), ("happy", 0.9, 0.1), abstained, abstained),
             _item(2, "neutral", abstained)]
    result = calibrate(items, xs=(0.5,), ys=(0.3,), min_windows=(1,), min_window_shares=(0.0,))
    # all windows: happy 1 of 3 right, sad 1 of 4, neutral 0 of 1 (every abstention an error)
    assert result.all_windows.ua == pytest.approx((1 / 3 + 1 / 4 + 0) / 3, abs=1e-6)
    assert result.all_windows.recalls == {"happy": pytest.approx(1 / 3, abs=1e-6), "neutral": 0.0, "sad": 0.25}
    # kept windows: only those whose valence agrees, never an abstention
    assert result.best.window_ua == pytest.approx((1 + 1 + 0) / 3, abs=1e-6)
    assert result.best.window_ua > result.all_windows.ua
    assert result.best.window_kept_share == pytest.approx(2 / 8, abs=1e-6)
    assert result.windows.coverage == {"happy": pytest.approx(1 / 3, abs=1e-6), "neutral": 0.0, "sad": 0.25}
    assert result.windows.recalls == {"happy": 1.0, "neutral": 0.0, "sad": 1.0}
    assert (result.best.kept, result.items.coverage) == (2, {"happy": 1.0, "neutral": 0.0, "sad": 1.0})
    assert result.summary()["window_ua_all"] == result.all_windows.ua


def test_segments_with_abstentions_and_an_independent_valence_model():
    def seg(n, rid, emotion, valence_model="prosody-valence", derived=False):
        return Segment(id=f"{rid}-{n:06d}", recording_id=rid, start=0, end=2,
                       windows=[{"start": 0, "end": 2, "emotion": emotion, "valence": 0.45}],
                       labels={"emotion": {"label": None, "abstained": True, "model": "probe-emotion"},
                               "valence": {"value": 0.45, "model": valence_model, "derived": derived}})

    abstained = {"label": None, "abstained": True, "reason": "low-confidence", "score": 0.31,
                 "probs": {"neutral": 0.31, "sad": 0.3}, "model": "probe-emotion"}
    flagged = {**abstained, "label": "neutral", "reason": "out-of-distribution"}  # a label beside abstained: not used
    models: dict = {}
    items = items_from_segments([seg(0, "a", abstained), seg(1, "a", {"label": "neutral", "score": 0.8}),
                                 seg(0, "b", flagged), seg(0, "c", abstained)], {"a": "neutral", "b": "neutral"}, models)
    assert [[w.label for w in item.windows] for item in items] == [[None, "neutral"], [None]]
    assert models == {"emotion": {"probe-emotion"}, "valence": {"prosody-valence"}}
    result = calibrate(items, xs=(0.5,), ys=(0.4,), min_windows=(1,), min_window_shares=(0.0,))
    assert result.all_windows.ua == pytest.approx(1 / 3, abs=1e-6) and result.best.window_ua == 1.0
    assert result.best.kept == 1 and result.items.coverage == {"neutral": 0.5}
    items_from_segments([seg(0, "a", abstained, "circumplex(probe-emotion)", derived=True)], {"a": "neutral"}, models)
    assert models["derived valence"] == {"circumplex(probe-emotion)"}


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


def _gold(run: Path) -> dict[str, str]:
    """Recording id → its RAVDESS label in the vocabulary (boredom has none)."""
    return {r["id"]: RAVDESS_TO_VOCAB[r["metadata"]["label"]]
            for r in iter_jsonl(next(run.glob("00-ingest-*")) / "records.jsonl")
            if r["metadata"]["label"] in RAVDESS_TO_VOCAB}


def _recompute_ua(run: Path, report: dict) -> tuple[float, float]:
    """UA and kept share from the annotate records, written out independently of the library."""
    labels = _gold(run)
    windows: dict[str, list[dict]] = {}
    for seg in iter_jsonl(next(run.glob("01-annotate-*")) / "records.jsonl"):
        windows.setdefault(seg["recording_id"], []).extend(seg["windows"])
    x, y, k, r = report["x"], report["y"], report["min_windows"], report["min_window_share"]
    hits: dict[str, list[bool]] = {label: [] for label in labels.values()}
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
            hits[label].append(best == label)
    ua = sum(sum(v) / len(v) if v else 0.0 for v in hits.values()) / len(hits)  # every class, kept or not
    return ua, sum(len(v) for v in hits.values()) / len(labels)


def _recompute_window_ua_all(run: Path) -> float:
    """Mean over the seven classes of the share of their windows whose own label is right."""
    labels = _gold(run)
    hits: dict[str, list[bool]] = {}
    for seg in iter_jsonl(next(run.glob("01-annotate-*")) / "records.jsonl"):
        if seg["recording_id"] in labels:
            label = labels[seg["recording_id"]]
            hits.setdefault(label, []).extend((w["emotion"] or {}).get("label") == label for w in seg["windows"])
    return sum(sum(v) / len(v) for v in hits.values()) / len(hits)


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
    assert set(report["recalls"]) == set(report["coverage"]) == set(report["window_recalls_all"]) == {
        "angry", "disgusted", "fearful", "happy", "neutral", "sad", "surprised"}
    assert report["window_ua_all"] == pytest.approx(_recompute_window_ua_all(run), abs=1e-6)
    assert report["models"] == {"emotion": ["synthetic"], "valence": ["synthetic"]}
    assert "calibrate: each (x, y)" in result.stderr and "calibrate: per class" in result.stderr
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
