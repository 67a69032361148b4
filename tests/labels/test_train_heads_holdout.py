"""tools/train_heads.py --hold-out: a held-out speaker's windows leave every feature set."""

import importlib.util
from pathlib import Path

import numpy as np

from cpqa.labels.probe_features import FeatureSet
from cpqa.labels.probe_manifest import Example

TOOL = Path(__file__).resolve().parents[2] / "tools" / "train_heads.py"


def _tool():
    spec = importlib.util.spec_from_file_location("train_heads", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_examples_drops_the_held_out_speakers_windows_and_renumbers():
    examples = [Example(f"{s}.wav", label, s) for s, label in (("a", "sad"), ("b", "happy"), ("a", "angry"),
                                                               ("c", "neutral"))]
    fs = FeatureSet(np.arange(12, dtype=np.float32).reshape(6, 2), np.array([0, 0, 1, 2, 3, 3]),
                    np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), [e.label for e in examples],
                    [e.speaker for e in examples], examples)
    keep = np.array([e.speaker != "a" for e in examples])
    out = _tool().without_examples(fs, keep)
    assert out.speakers == ["b", "c"] and out.labels == ["happy", "neutral"]
    assert [e.speaker for e in out.examples] == ["b", "c"]
    assert out.example.tolist() == [0, 1, 1]
    assert out.features.tolist() == [[4.0, 5.0], [8.0, 9.0], [10.0, 11.0]]
    assert out.weight.tolist() == [3.0, 5.0, 6.0]
    assert list(out.window_speakers()) == ["b", "c", "c"]
