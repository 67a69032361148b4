"""Training and evaluating probe heads on labelled audio (the library behind `cpqa probe`).

Features are made the way the annotate stage makes them: each example's span is cut into analysis
windows (`cpqa.labels.windows.layout`), each window is pooled from the Whisper encoder's passes over
the 30-s chunks of its recording, and an example's prediction is the duration-weighted mean of its
windows' probabilities. Short whole-file examples (acted corpora) are trimmed to their speech with
Silero VAD, like the segment stage does, and by default the clips of one speaker are played one
after another into pseudo-recordings (`pack="speaker"`), so the encoder hears 30 s of speech per pass
as it does on in-the-wild recordings; `pack="none"` encodes each file alone (looped to 30 s, as the
pipeline does with a short recording); `pack="both"` trains on both.

Evaluation holds speakers out: every fold trains on the other speakers only.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.decode import load_16k_mono
from ..audio.io import SAMPLE_RATE, write_flac_16k
from ..errors import CPQAError, require
from .calibration import OutOfFold, calibrate, fit_ood
from .encoder import FeatureCache, RecordingFeatures, WhisperEncoder
from .heads import ProbeHead, speaker_normalize
from .protocols import EMOTION2VEC_MAP
from .speaker_embedding import GE2EEncoder
from .windows import layout

logger = logging.getLogger(__name__)

LABEL_MAPS: dict[str, dict[str, str]] = {"emotion2vec": EMOTION2VEC_MAP}
PACK_MODES = ("speaker", "none", "both")
PACK_MAX_S = 300.0
DEFAULT_C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
INNER_FOLDS = 8


@dataclass
class Example:
    """One labelled span: the whole file when start/end are None."""

    audio: str
    label: str
    speaker: str
    start: float | None = None
    end: float | None = None
    source: str = ""
    """The manifest it came from (its folder and name)."""


@dataclass
class FeatureSet:
    """Window features with, per window, its example's index and label and its speaker."""

    features: np.ndarray
    example: np.ndarray
    weight: np.ndarray
    """Central duration of each window (seconds): its weight when windows are aggregated."""
    labels: list[str]
    speakers: list[str]
    examples: list[Example] = field(default_factory=list)

    def window_labels(self) -> np.ndarray:
        return np.asarray([self.labels[i] for i in self.example])

    def window_speakers(self) -> np.ndarray:
        return np.asarray([self.speakers[i] for i in self.example])


def parse_label_map(spec: str | None) -> dict[str, str] | None:
    """A named map ('emotion2vec') or 'a=b,c=d' pairs; labels absent from a map are dropped."""
    if not spec:
        return None
    if spec in LABEL_MAPS:
        return LABEL_MAPS[spec]
    pairs = [p.split("=", 1) for p in spec.split(",") if p.strip()]
    if not pairs or any(len(p) != 2 for p in pairs):
        raise CPQAError(f"--label-map '{spec}': give a known map ({', '.join(LABEL_MAPS)}) or pairs like calm=neutral,anger=angry")
    return {a.strip(): b.strip() for a, b in pairs}


def _float_or_none(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def read_manifest(path: str | Path, label_column: str, speaker_column: str = "speaker", file_column: str = "file",
                  label_map: dict[str, str] | None = None) -> list[Example]:
    """Examples of a CSV manifest. Paths are relative to the manifest's folder; optional `start_s`/
    `end_s` (or `start`/`end`) columns select a span of the file."""
    path = Path(path)
    if not path.exists():
        raise CPQAError(f"manifest {path} does not exist")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        for needed in (file_column, label_column, speaker_column):
            if needed not in columns:
                raise CPQAError(f"manifest {path} has no column '{needed}' (columns: {', '.join(columns)})")
        examples, dropped = [], Counter()
        for row in reader:
            label = (row[label_column] or "").strip()
            if label_map is not None:
                label = label_map.get(label, "")
            if not label:
                dropped[row[label_column]] += 1
                continue
            examples.append(Example(
                audio=str((path.parent / row[file_column]).resolve()), label=label,
                speaker=row[speaker_column] or "unknown",
                start=_float_or_none(row.get("start_s", row.get("start"))),
                end=_float_or_none(row.get("end_s", row.get("end"))),
                source=f"{path.resolve().parent.name}/{path.name}",
            ))
    if dropped:
        logger.info("%s: dropped rows with unmapped labels %s", path, dict(dropped))
    if not examples:
        raise CPQAError(f"manifest {path} has no usable rows for label column '{label_column}'")
    return examples


def _speech_span(samples: np.ndarray) -> tuple[float, float]:
    """First speech start to last speech end (Silero VAD as bundled with faster-whisper); the whole
    clip when no speech is found."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    stamps = get_speech_timestamps(samples, VadOptions(min_silence_duration_ms=500, speech_pad_ms=200))
    if not stamps:
        return 0.0, len(samples) / SAMPLE_RATE
    return stamps[0]["start"] / SAMPLE_RATE, stamps[-1]["end"] / SAMPLE_RATE


@dataclass
class _Placed:
    """Where an example's span lies in the 16 kHz mono audio the encoder reads."""

    audio: str
    start: float
    end: float


def _digest(*parts: Any) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:16]


def place_examples(examples: list[Example], work_dir: Path, pack: str = "speaker") -> list[_Placed]:
    """Put every example into 16 kHz mono audio: spans of real recordings stay where they are
    (resampled once when needed); whole files are trimmed to speech and, with pack='speaker',
    concatenated per speaker into pseudo-recordings of at most PACK_MAX_S seconds."""
    if pack not in ("speaker", "none"):
        raise CPQAError(f"pack '{pack}': choose speaker or none")
    placed: list[_Placed | None] = [None] * len(examples)
    converted: dict[str, str] = {}

    def as_16k(path: str) -> str:
        import soundfile as sf

        if path not in converted:
            info = sf.info(path)
            if info.samplerate == SAMPLE_RATE and info.channels == 1:
                converted[path] = path
            else:
                out = work_dir / "audio" / f"{_digest(path, info.frames)}.flac"
                if not out.exists():
                    write_flac_16k(out, load_16k_mono(path))
                converted[path] = str(out)
        return converted[path]

    by_speaker: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        if ex.start is not None and ex.end is not None:
            placed[i] = _Placed(as_16k(ex.audio), ex.start, ex.end)
        else:
            by_speaker.setdefault(ex.speaker if pack == "speaker" else f"{ex.speaker}#{i}", []).append(i)

    for key, indices in by_speaker.items():
        blocks: list[list[int]] = [[]]
        total = 0.0
        clips = {}
        for i in indices:
            samples = load_16k_mono(examples[i].audio)
            clips[i] = samples
            if blocks[-1] and total + len(samples) / SAMPLE_RATE > PACK_MAX_S:
                blocks.append([])
                total = 0.0
            blocks[-1].append(i)
            total += len(samples) / SAMPLE_RATE
        for block in blocks:
            if len(block) == 1 and pack == "none":
                audio = as_16k(examples[block[0]].audio)
            else:
                audio = str(work_dir / "packed" / f"{_digest(key, *(examples[i].audio for i in block))}.flac")
                if not Path(audio).exists():
                    write_flac_16k(audio, np.concatenate([clips[i] for i in block]))
            offset = 0.0
            for i in block:
                lo, hi = _speech_span(clips[i])
                placed[i] = _Placed(audio, offset + lo, offset + hi)
                offset += len(clips[i]) / SAMPLE_RATE
    return placed  # type: ignore[return-value]


def extract_features(examples: list[Example], work_dir: str | Path, encoder: WhisperEncoder | None = None,
                     pooling: str = "mean", pack: str = "speaker", center_s: float = 2.0,
                     context_s: float = 1.0) -> FeatureSet:
    """Window features of every example; encoder passes are cached on disk under `work_dir`.
    With pack='both' every whole-file example appears twice, heard in context (among its speaker's
    clips; spans of long recordings in their recording) and alone; the copies' `source` says which
    ('[context]' / '[alone]'), so scores come per condition."""
    if pack == "both":
        packed = [replace(e, source=f"{e.source} [context]") for e in examples]
        alone = [replace(e, source=f"{e.source} [alone]") for e in examples if e.start is None or e.end is None]
        a = extract_features(packed, work_dir, encoder, pooling, "speaker", center_s, context_s)
        b = extract_features(alone, work_dir, encoder, pooling, "none", center_s, context_s)
        return FeatureSet(np.concatenate([a.features, b.features]), np.concatenate([a.example, b.example + len(packed)]),
                          np.concatenate([a.weight, b.weight]), a.labels + b.labels, a.speakers + b.speakers,
                          a.examples + b.examples)
    work_dir = Path(work_dir)
    encoder = encoder or WhisperEncoder()
    placed = place_examples(examples, work_dir, pack)
    cache = FeatureCache(lambda audio: RecordingFeatures(audio, encoder, cache_dir=work_dir / "frames"), size=4)
    rows, owner, weight = [], [], []
    for i, where in enumerate(placed):
        features = cache.get(where.audio)
        for span in layout(where.start, where.end, center_s, context_s):
            rows.append(features.pooled(span.context_start, span.context_end, pooling))
            owner.append(i)
            weight.append(span.duration)
        if (i + 1) % 50 == 0:
            logger.info("features: %d/%d examples", i + 1, len(examples))
    return FeatureSet(np.asarray(rows, dtype=np.float32), np.asarray(owner), np.asarray(weight),
                      [e.label for e in examples], [e.speaker for e in examples], examples)


def extract_ge2e_features(examples: list[Example], work_dir: str | Path, encoder: GE2EEncoder | None = None,
                          center_s: float = 2.0, context_s: float = 1.0) -> FeatureSet:
    """GE2E speaker embeddings of every example's analysis windows (the `ge2e-probe` backend's
    features). A window's embedding depends on its own audio only, so clips are never packed."""
    from ..audio.io import read_range

    encoder = encoder or GE2EEncoder()
    placed = place_examples(examples, Path(work_dir), pack="none")
    clips, owner, weight = [], [], []
    for i, where in enumerate(placed):
        for span in layout(where.start, where.end, center_s, context_s):
            clips.append(read_range(where.audio, span.context_start, span.context_end))
            owner.append(i)
            weight.append(span.duration)
    return FeatureSet(encoder.embed(clips), np.asarray(owner), np.asarray(weight),
                      [e.label for e in examples], [e.speaker for e in examples], examples)


def _fit(features: np.ndarray, labels: np.ndarray, c: float, sample_weight: np.ndarray | None = None) -> ProbeHead:
    linear_model = require("sklearn.linear_model", "labels", "scikit-learn")
    from threadpoolctl import threadpool_limits

    mean = features.mean(axis=0)
    scale = features.std(axis=0) + 1e-6
    model = linear_model.LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    with threadpool_limits(1):  # small problems: BLAS threads only oversubscribe a shared CPU
        model.fit((features - mean) / scale, labels, sample_weight=sample_weight)
    return ProbeHead(labels=[str(c) for c in model.classes_], mean=mean, scale=scale,
                     coef=model.coef_, intercept=model.intercept_)


def aggregate_examples(probs: np.ndarray, example: np.ndarray, weight: np.ndarray, n: int) -> np.ndarray:
    """Per-example probabilities: the duration-weighted mean over each example's windows."""
    out = np.zeros((n, probs.shape[1]))
    np.add.at(out, example, probs * weight[:, None])
    return out / np.maximum(out.sum(axis=1, keepdims=True), 1e-12)


def _prepared(fs: FeatureSet, normalize: str) -> np.ndarray:
    if normalize == "speaker":
        return speaker_normalize(fs.features, list(fs.window_speakers()))
    if normalize != "none":
        raise CPQAError(f"normalize '{normalize}': choose none or speaker")
    return fs.features.astype(np.float64)


def _speaker_folds(speakers: list[str], folds: int) -> list[set[str]]:
    """Speakers dealt round-robin into `folds` held-out sets (0 or more than there are: one each)."""
    n = len(speakers) if folds <= 0 else min(folds, len(speakers))
    return [set(speakers[k::n]) for k in range(n)]


def _choose_c(x: np.ndarray, y: np.ndarray, groups: np.ndarray, fs: FeatureSet, idx: np.ndarray,
              grid: tuple[float, ...]) -> float:
    """The C of the grid with the best leave-speakers-out UA within the given windows (at most
    INNER_FOLDS folds)."""
    speakers = sorted(set(groups))
    if len(grid) == 1 or len(speakers) < 3:
        return grid[-1] if len(grid) == 1 else 0.1
    scores = []
    for c in grid:
        truth, pred = [], []
        for held in _speaker_folds(speakers, INNER_FOLDS):
            test = np.isin(groups, list(held))
            head = _fit(x[~test], y[~test], c)
            ex_probs, ex_ids = _example_probs(head, x[test], fs, idx[test])
            truth += [fs.labels[i] for i in ex_ids]
            pred += [head.labels[j] for j in ex_probs.argmax(axis=1)]
        scores.append(metrics(truth, pred)["ua"])
    return grid[int(np.argmax(scores))]


def _example_probs(head: ProbeHead, x: np.ndarray, fs: FeatureSet, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = head.predict_proba(x)
    ex = fs.example[idx]
    ids, local = np.unique(ex, return_inverse=True)
    return aggregate_examples(probs, local, fs.weight[idx], len(ids)), ids


def train(fs: FeatureSet, normalize: str = "none", c_grid: tuple[float, ...] = DEFAULT_C_GRID,
          meta: dict[str, Any] | None = None) -> ProbeHead:
    """A head trained on all windows; C is chosen by leave-speakers-out UA."""
    x = _prepared(fs, normalize)
    y = fs.window_labels()
    groups = fs.window_speakers()
    c = _choose_c(x, y, groups, fs, np.arange(len(y)), c_grid)
    head = _fit(x, y, c)
    head.meta = {**(meta or {}), "normalize": normalize, "C": c, "n_windows": len(y),
                 "n_examples": len(fs.labels), "n_speakers": len(set(fs.speakers)),
                 "class_counts": dict(sorted(Counter(fs.labels).items()))}
    return head


def cross_validate(fs: FeatureSet, normalize: str = "none", c_grid: tuple[float, ...] = DEFAULT_C_GRID,
                   folds: int = 0) -> dict[str, Any]:
    """Leave-speakers-out evaluation: each fold's speakers are predicted by a head (and a C)
    trained on the other speakers only. `folds=0` holds out one speaker at a time."""
    x = _prepared(fs, normalize)
    y = fs.window_labels()
    groups = fs.window_speakers()
    speakers = sorted(set(fs.speakers))
    if len(speakers) < 2:
        raise CPQAError("leave-speakers-out evaluation needs at least two speakers")
    held_out = _speaker_folds(speakers, folds)
    n_folds = len(held_out)
    truth, pred, ids = [], [], []
    for k, held in enumerate(held_out):
        test = np.isin(groups, list(held))
        train_idx = np.flatnonzero(~test)
        c = _choose_c(x[train_idx], y[train_idx], groups[train_idx], fs, train_idx, c_grid)
        head = _fit(x[train_idx], y[train_idx], c)
        ex_probs, ex_ids = _example_probs(head, x[test], fs, np.flatnonzero(test))
        truth += [fs.labels[i] for i in ex_ids]
        pred += [head.labels[j] for j in ex_probs.argmax(axis=1)]
        ids += list(ex_ids)
        logger.info("fold %d/%d (held out %s): C=%s", k + 1, n_folds, ", ".join(sorted(held)), c)
    return {**metrics(truth, pred), **_by_source(fs, ids, truth, pred), "folds": n_folds, "normalize": normalize}


def evaluate(head: ProbeHead, fs: FeatureSet) -> dict[str, Any]:
    """Scores of a trained head on examples it did not see (e.g. held-out speakers)."""
    x = _prepared(fs, head.normalize)
    probs, ids = _example_probs(head, x, fs, np.arange(len(x)))
    truth = [fs.labels[i] for i in ids]
    pred = [head.labels[j] for j in probs.argmax(axis=1)]
    return {**metrics(truth, pred), **_by_source(fs, list(ids), truth, pred), "normalize": head.normalize}


def _by_source(fs: FeatureSet, ids: list[int], truth: list[str], pred: list[str]) -> dict[str, Any]:
    """Scores per manifest when the examples come from several."""
    sources = [fs.examples[i].source for i in ids] if fs.examples else []
    if len(set(sources)) < 2:
        return {}
    return {"by_source": {src: metrics([t for t, s in zip(truth, sources) if s == src],
                                       [p for p, s in zip(pred, sources) if s == src])
                          for src in sorted(set(sources))}}


def metrics(truth: list[str], pred: list[str]) -> dict[str, Any]:
    """UA (unweighted accuracy = mean per-class recall), WA (accuracy), macro-F1 over the true
    classes, per-class recall and the confusion matrix (rows: truth, columns: prediction)."""
    classes = sorted(set(truth) | set(pred))
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=int)
    for t, p in zip(truth, pred):
        matrix[index[t], index[p]] += 1
    true_classes = sorted(set(truth))
    recall, f1 = {}, []
    for c in true_classes:
        i = index[c]
        tp = matrix[i, i]
        r = tp / matrix[i].sum()
        precision = tp / matrix[:, i].sum() if matrix[:, i].sum() else 0.0
        recall[c] = float(r)
        f1.append(0.0 if tp == 0 else 2 * precision * r / (precision + r))
    return {
        "n": len(truth),
        "ua": float(np.mean(list(recall.values()))),
        "wa": float(np.trace(matrix) / max(1, matrix.sum())),
        "macro_f1": float(np.mean(f1)),
        "recall": recall,
        "classes": classes,
        "confusion": matrix.tolist(),
    }


def out_of_fold(fs: FeatureSet, c: float, folds: int = INNER_FOLDS, normalize: str = "none",
                sample_weight: np.ndarray | None = None) -> OutOfFold:
    """Raw logits and OOD distances of every window from a head (at the given C, windows weighted by
    `sample_weight` within their balanced classes) and OOD statistics fitted without the window's
    speaker group (speakers dealt into `folds` groups)."""
    x = _prepared(fs, normalize)
    y = fs.window_labels()
    groups = fs.window_speakers()
    classes = sorted(set(y))
    logits = np.zeros((len(y), len(classes)))
    distance = np.zeros(len(y))
    for held in _speaker_folds(sorted(set(fs.speakers)), folds):
        test = np.isin(groups, list(held))
        head = _fit(x[~test], y[~test], c, None if sample_weight is None else sample_weight[~test])
        if head.labels != classes:
            raise CPQAError(f"a fold lacks a class ({sorted(set(classes) - set(head.labels))}): use fewer folds")
        logits[test] = head.logits(x[test])
        z = head.standardised(x[~test])
        fit_ood(head, z)
        distance[test] = head.ood_distance(x[test])
    return OutOfFold(logits, distance, np.searchsorted(classes, y), classes)


def train_calibrated(fs: FeatureSet, c: float, prior: dict[str, float] | None, max_ua_loss: float,
                     folds: int = INNER_FOLDS, meta: dict[str, Any] | None = None,
                     sample_weight: np.ndarray | None = None) -> tuple[ProbeHead, OutOfFold]:
    """A head trained on all windows at the given C, calibrated on held-out speakers
    (`cpqa.labels.calibration`); also the out-of-fold predictions it was calibrated on."""
    oof = out_of_fold(fs, c, folds, sample_weight=sample_weight)
    x = fs.features.astype(np.float64)
    head = _fit(x, fs.window_labels(), c, sample_weight)
    head.meta = {**(meta or {}), "normalize": "none", "C": c, "n_windows": len(x), "n_examples": len(fs.labels),
                 "n_speakers": len(set(fs.speakers)), "class_counts": dict(sorted(Counter(fs.labels).items()))}
    calibrate(head, head.standardised(x), oof, prior, max_ua_loss)
    return head, oof
