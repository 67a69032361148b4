"""Train, calibrate and validate the shipped offline heads on the project's shared data, and print
the figures the model card reports (`src/cpqa/labels/heads/MODEL_CARD.md`).

    python tools/train_heads.py [--data ../shared/data/real] [--out src/cpqa/labels/heads]
                                [--hold-out SPEAKER ...]

`--hold-out` leaves the named speakers' examples (RAVDESS actors such as `ravdess_actor_16`,
natural-speech speaker ids, AMI groups such as `ami-m0`) out of every head and every figure, so that
the heads can be validated on those speakers afterwards (`cpqa calibrate`, docs/labels.md); write
such heads to a folder of their own (`--out`), never over the shipped ones.

Training data: RAVDESS actors 09–16 (acted, 7 classes; calm → neutral), the natural-speech set
(51 speakers of read and conversational speech: neutral) and the turns of at least 1 s of the ten
30-s AMI meeting clips (neutral). The 60-s AMI excerpt, the demo's input, is never read. Every
figure comes from held-out speaker groups: 8 folds, each one RAVDESS actor, an eighth of the
natural speakers and at most one AMI meeting (clips of one meeting share a fold). emotion-short's
figures are nested (`cpqa.labels.nested`): each outer fold chooses C, class prior, temperature,
reject and OOD thresholds on its 7 training folds alone (~10 more minutes).
"""

from __future__ import annotations

import argparse
import csv
import logging
from pathlib import Path

import numpy as np

from cpqa.condense.rules import ConsistencyRule
from cpqa.emotions import SENTIMENT_OF
from cpqa.labels.heads import softmax
from cpqa.labels.nested import Chosen, choose, nested, subset
from cpqa.labels.probe import out_of_fold, speaker_folds, train
from cpqa.labels.probe_features import FeatureSet, extract_features, extract_ge2e_features, window_clips
from cpqa.labels.probe_manifest import Example
from cpqa.labels.probe_scores import metrics
from cpqa.labels.protocols import EMOTION2VEC_MAP
from cpqa.labels.regression import targets, train_dimensions

FOLDS = 8
C_GRID = (0.01, 0.03, 0.1, 0.3)


def neutral_prior(share: float) -> dict[str, float]:
    """A class prior with `share` neutral, the rest spread evenly: everyday speech is mostly neutral."""
    others = ("angry", "disgusted", "fearful", "happy", "sad", "surprised")
    return {"neutral": share, **dict.fromkeys(others, round((1 - share) / len(others), 4))}


PRIOR = neutral_prior(0.4)
"""The class prior the context head is corrected to."""
MAX_UA_LOSS = 0.03
SHORT_C_GRID = (0.03, 0.1, 0.3)
SHORT_PRIORS = [neutral_prior(share) for share in (0.3, 0.4, 0.5)]
SHORT_MAX_UA_LOSS = 0.01
"""emotion-short abstains only where that costs at most 0.01 held-out UA: at 0.03 the reject option
cost 1.8 points of RAVDESS UA while the prior, not the threshold, kept natural speech neutral."""
NEGATIVE_CAP = 0.02
"""A setting is eligible only if held-out natural and AMI speech is at most this share negative."""
NEGATIVE = {label for label, sentiment in SENTIMENT_OF.items() if sentiment == "negative"}
AMI_MEETING = {**dict.fromkeys(("trn00", "trn01", "trn02", "trn03"), "m0"), **dict.fromkeys(("trn07", "trn08"), "m7")}
EXCERPT = "meeting_excerpt_60s"


def examples(data: Path) -> list[Example]:
    """RAVDESS, natural speech and AMI-clip turns. `speaker` is the fold group (AMI: the meeting);
    `source` is `corpus|gender` (AMI: `corpus|gender|speaker`)."""
    out = []
    for row in csv.DictReader(open(data / "ravdess_train" / "manifest.csv", newline="")):
        out.append(Example(str(data / "ravdess_train" / row["file"]), EMOTION2VEC_MAP[row["label"]], row["speaker"],
                           source=f"ravdess|{row['gender']}"))
    for row in csv.DictReader(open(data / "natural_speech" / "manifest.csv", newline="")):
        gender = {"F": "female", "M": "male"}.get(row["gender"], "")
        out.append(Example(str(data / "natural_speech" / row["file"]), "neutral", row["speaker"],
                           source=f"natural|{gender}"))
    for row in csv.DictReader(open(data / "ami_meetings" / "segments.csv", newline="")):
        if row["file"].startswith(EXCERPT) or float(row["duration_s"]) < 1.0:
            continue  # the demo excerpt stays out of training and calibration
        clip = Path(row["file"]).stem
        out.append(Example(str(data / "ami_meetings" / row["file"]), "neutral",
                           f"ami-{AMI_MEETING.get(clip, clip)}", float(row["start_s"]), float(row["end_s"]),
                           source=f"ami|{row['gender']}|{row['speaker']}"))
    assert not any(EXCERPT in e.audio for e in out)
    return out


def corpus(e: Example) -> str:
    return e.source.split("|")[0]


def emotion_report(fs: FeatureSet, probs: np.ndarray, ood: np.ndarray, threshold: np.ndarray) -> dict:
    """Per corpus, from calibrated held-out probabilities, out-of-distribution flags and reject
    thresholds (per window): RAVDESS UA with abstentions as errors, coverage, accuracy at that
    coverage, UA without abstaining and per-class recall (clip level); natural and AMI: shares of
    speech time labelled negative / neutral / abstained."""
    classes = sorted(set(fs.labels))
    source = np.array([corpus(fs.examples[i]) for i in fs.example])
    out = {}
    for name in ("ravdess", "natural", "ami"):
        rows = np.flatnonzero(source == name)
        if name == "ravdess":
            truth, pred, plain = [], [], []
            for e in np.unique(fs.example[rows]):
                own = rows[fs.example[rows] == e]
                inside = own[~ood[own]]
                mean = np.average(probs[inside], axis=0, weights=fs.weight[inside]) if len(inside) else None
                ok = mean is not None and fs.weight[inside].sum() >= 0.5 * fs.weight[own].sum()
                pred.append(classes[int(mean.argmax())] if ok and mean.max() >= threshold[own[0]] else "abstained")
                plain.append(classes[int(np.average(probs[own], axis=0, weights=fs.weight[own]).argmax())])
                truth.append(fs.labels[e])
            recall = metrics(truth, pred)["recall"]
            kept = [p != "abstained" for p in pred]
            out[name] = {"ua_abstain_as_error": round(float(np.mean([recall.get(c, 0.0) for c in classes])), 3),
                         "coverage": round(float(np.mean(kept)), 3),
                         "accuracy_at_coverage": round(float(np.mean([p == t for p, t, k in zip(pred, truth, kept)
                                                                      if k])), 3),
                         "ua_without_abstaining": round(float(metrics(truth, plain)["ua"]), 3),
                         "recall": {c: round(recall.get(c, 0.0), 2) for c in classes}}
        else:
            w = fs.weight[rows]
            top = np.array(classes)[probs[rows].argmax(axis=1)]
            abstain = ood[rows] | (probs[rows].max(axis=1) < threshold[rows])
            negative = np.isin(top, list(NEGATIVE)) & ~abstain
            neutral = (top == "neutral") & ~abstain
            out[name] = {"negative": round(float(w[negative].sum() / w.sum()), 3),
                         "neutral": round(float(w[neutral].sum() / w.sum()), 3),
                         "abstained": round(float(w[abstain].sum() / w.sum()), 3),
                         "out_of_distribution": round(float(w[ood[rows]].sum() / w.sum()), 3)}
    return out


def emotion_key(fs: FeatureSet, probs: np.ndarray, ood: np.ndarray, threshold: np.ndarray) -> tuple[bool, float]:
    """How a setting of an emotion head is chosen: everyday speech at most NEGATIVE_CAP negative
    first, then RAVDESS UA with abstentions counted as errors."""
    report = emotion_report(fs, probs, ood, threshold)
    everyday = [report[name]["negative"] for name in ("natural", "ami") if name in report]
    return max(everyday, default=0.0) <= NEGATIVE_CAP, report["ravdess"]["ua_abstain_as_error"]


def neutral_balanced(fs: FeatureSet) -> np.ndarray:
    """Window weights under which the neutral class is half acted (RAVDESS neutral and calm) and half
    everyday speech (natural, AMI): unweighted, the many natural-speech windows make neutral mean
    'a read recording' more than 'a calm voice', and acted sad is taken for neutral."""
    neutral = fs.window_labels() == "neutral"
    acted = np.array([corpus(fs.examples[i]) == "ravdess" for i in fs.example])
    weight = np.ones(len(fs.example))
    for part in (acted, ~acted):
        weight[neutral & part] = 0.5 * neutral.sum() / max(1, (neutral & part).sum())
    return weight


def train_emotion(fs: FeatureSet, name: str, out: Path, extra: dict | None = None, c_grid=C_GRID,
                  priors=(PRIOR,), max_ua_loss: float = MAX_UA_LOSS, weights: np.ndarray | None = None,
                  nested_figure: bool = False) -> tuple[dict, Chosen]:
    """The calibrated head of the C and class prior `emotion_key` prefers on held-out speakers. With
    `nested_figure` the figures come from nested folds (every setting chosen without the scored
    speakers); otherwise from the folds the choice was made on, which flatters it a little."""
    chosen = choose(fs, c_grid, list(priors), emotion_key, max_ua_loss, FOLDS, weights, meta={
        "name": name, "encoder": "embedded:base", "pooling": "mean", "acoustic": True, **(extra or {})})
    head = chosen.head
    report = emotion_report(fs, chosen.probs, chosen.ood, np.full(len(chosen.probs), head.min_confidence))
    logging.info("%s: C=%s T=%s prior=%s min_confidence=%s %s", name, head.meta["C"], head.temperature,
                 head.meta["calibration"]["prior"], head.min_confidence, report)
    if nested_figure:  # the settings each outer fold chose, and the flattering figures, kept beside
        probs, ood, threshold, choices = nested(fs, c_grid, list(priors), emotion_key, max_ua_loss, FOLDS, weights)
        head.meta["nested"] = {"outer_fold_choices": choices, "not_nested_figures": report}
        report = {**emotion_report(fs, probs, ood, threshold), "method": f"nested {FOLDS}-fold"}
    head.meta["validation"] = report
    head.save(out)
    return report, chosen


def with_acoustic(fs: FeatureSet, acoustic: np.ndarray) -> FeatureSet:
    """The pooled Whisper features with each window's acoustic features appended (what the emotion
    heads read)."""
    return FeatureSet(np.concatenate([fs.features, acoustic], axis=1), fs.example, fs.weight, fs.labels,
                      fs.speakers, fs.examples)


def acoustic_set(examples_: list[Example], work: Path) -> np.ndarray:
    from cpqa.labels.acoustic import acoustic_features

    cache = work / "acoustic.npy"
    if cache.exists():
        return np.load(cache)
    rows = [acoustic_features(clip) for _, _, clip in window_clips(examples_, work)]
    np.save(cache, np.asarray(rows))
    return np.asarray(rows)


def agreement_table(chosen: Chosen, emotion_fs: FeatureSet, valence: np.ndarray) -> list[dict]:
    """On held-out RAVDESS windows: UA of the windows whose emotion agrees with the independent
    valence (x, y as in condensation) vs all windows, abstentions counted as errors."""
    probs = chosen.probs
    classes = np.array(chosen.head.labels)
    abstained = probs.max(axis=1) < chosen.head.min_confidence
    pred = np.where(abstained, "abstained", classes[probs.argmax(axis=1)])
    truth = emotion_fs.window_labels()
    acted = np.array([corpus(emotion_fs.examples[i]) == "ravdess" for i in emotion_fs.example])
    rows = []
    for x in (0.45, 0.5, 0.55):
        for y in (0.3, 0.35, 0.4):
            rule = ConsistencyRule(x, y)  # condensation's own rule
            keep = np.array([rule.drop_reason(p, s, v, a) is None
                             for p, s, v, a in zip(pred, probs.max(axis=1), valence, abstained)]) & acted
            recall_all = {c: float(np.mean(pred[acted & (truth == c)] == c)) for c in classes}
            recall_kept = {c: float(np.mean(pred[keep & (truth == c)] == c)) if (keep & (truth == c)).any() else 0.0
                           for c in classes}
            rows.append({"x": x, "y": y, "ua_all": round(float(np.mean(list(recall_all.values()))), 3),
                         "ua_kept": round(float(np.mean(list(recall_kept.values()))), 3),
                         "share_kept": round(float(keep.sum() / acted.sum()), 3),
                         "coverage": {c: round(float((keep & (truth == c)).sum() / (acted & (truth == c)).sum()), 2)
                                      for c in classes}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "real")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "src/cpqa/labels/heads")
    parser.add_argument("--work-dir", type=Path, default=Path.home() / ".cache" / "cpqa" / "train-heads")
    parser.add_argument("--hold-out", nargs="+", default=[], metavar="SPEAKER",
                        help="speakers (manifest `speaker`; AMI: ami-<meeting>) left out of every head and figure")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    exs = examples(args.data)

    acoustic = acoustic_set(exs, args.work_dir)  # cached for all examples: held-out rows are dropped below
    context = extract_features(exs, args.work_dir, pack="speaker")
    alone = extract_features(exs, args.work_dir, pack="none")
    if args.hold_out:
        unknown = sorted(set(args.hold_out) - {e.speaker for e in exs})
        if unknown:
            parser.error(f"--hold-out: no examples of {', '.join(unknown)}")
        keep = np.array([e.speaker not in args.hold_out for e in exs])
        assert len(acoustic) == len(alone.example)  # acoustic rows are the unpacked windows
        acoustic = acoustic[keep[alone.example]]
        context, alone = subset(context, keep), subset(alone, keep)
        exs = [e for e, k in zip(exs, keep) if k]
        print(f"held out: {', '.join(sorted(args.hold_out))} ({int((~keep).sum())} examples); "
              f"training on {len(exs)} examples")
    acoustic = np.where(np.isnan(acoustic), np.nanmean(acoustic, axis=0), acoustic)  # not measured: the mean
    context = with_acoustic(context, acoustic)
    alone = with_acoustic(alone, acoustic)
    extra = {"held_out": sorted(args.hold_out)} if args.hold_out else {}  # recorded in every head's meta
    print("emotion (in context):",
          train_emotion(context, "whisper-base-probe-emotion-v3", args.out / "emotion.npz", extra)[0])
    short_report, short = train_emotion(alone, "whisper-base-probe-emotion-short-v3", args.out / "emotion-short.npz",
                                        extra, SHORT_C_GRID, SHORT_PRIORS, SHORT_MAX_UA_LOSS,
                                        neutral_balanced(alone), nested_figure=True)
    print("emotion-short (alone):", short_report)

    ge2e = extract_ge2e_features(exs, args.work_dir)
    x = ge2e.features
    groups = ge2e.window_speakers()
    folds = speaker_folds(sorted(set(ge2e.speakers)), FOLDS)
    source = np.array([corpus(exs[i]) for i in ge2e.example])
    weights = np.array([1.0 / np.sum(source == s) for s in source])  # each corpus counts alike
    fit = train_dimensions(x, list(ge2e.window_labels()), groups, folds, weights,
                           meta={"name": "ge2e-ridge-vad-v1", "encoder": "resemblyzer-ge2e", **extra})
    acted = source == "ravdess"
    gold = targets(list(ge2e.window_labels()))
    fit.head.meta["validation"] = {
        "pearson_all_windows": fit.correlations,
        "pearson_ravdess_windows": {d: round(float(np.corrcoef(fit.predictions[acted, i], gold[acted, i])[0, 1]), 3)
                                    for i, d in enumerate(("valence", "arousal", "dominance"))},
        "mean_natural_and_ami": {d: round(float(fit.predictions[~acted, i].mean()), 3)
                                 for i, d in enumerate(("valence", "arousal", "dominance"))},
    }
    fit.head.save(args.out / "dimensions-ge2e.npz")
    print("dimensions:", fit.head.meta["validation"], "alpha", fit.head.meta["alpha"])
    # the agreement effect on held-out actors: alone (emotion-short) windows line up with GE2E windows
    assert np.array_equal(alone.example, ge2e.example)
    for row in agreement_table(short, alone, fit.predictions[:, 0]):
        print("agreement", row)

    print("gender (GE2E):", train_gender(exs, args.work_dir, args.out / "gender-ge2e.npz", extra))
    gender_of = [e.source.split("|")[1] or None for e in exs]
    pooled_only = 512  # the Whisper gender head reads the pooled frames only
    whisper = (relabelled(context, gender_of, " [context]", pooled_only),
               relabelled(alone, gender_of, " [alone]", pooled_only))
    both = FeatureSet(np.concatenate([whisper[0].features, whisper[1].features]),
                      np.concatenate([whisper[0].example, whisper[1].example + len(whisper[0].labels)]),
                      np.concatenate([whisper[0].weight, whisper[1].weight]), whisper[0].labels + whisper[1].labels,
                      whisper[0].speakers + whisper[1].speakers, whisper[0].examples + whisper[1].examples)
    head = train(both, meta={"name": "whisper-base-probe-gender-v2", "encoder": "embedded:base", "pooling": "mean",
                             **extra})
    oof = out_of_fold(both, head.meta["C"], FOLDS)  # held-out figures at the chosen C
    right = oof.logits.argmax(axis=1) == oof.labels
    source = np.array([both.examples[i].source for i in both.example])
    head.meta["validation"] = {s: round(float(right[source == s].mean()), 3) for s in sorted(set(source))}
    head.save(args.out / "gender.npz")
    print("gender (Whisper):", head.meta["validation"])


def relabelled(fs: FeatureSet, labels: list[str | None], condition: str, columns: int) -> FeatureSet:
    """The examples of `fs` that have a label in `labels` (per example), with those labels and the
    first `columns` features."""
    keep = [i for i, label in enumerate(labels) if label]
    new_index = {old: new for new, old in enumerate(keep)}
    rows = np.isin(fs.example, keep)
    examples = [fs.examples[i] for i in keep]
    return FeatureSet(fs.features[rows, :columns], np.array([new_index[i] for i in fs.example[rows]]), fs.weight[rows],
                      [labels[i] for i in keep], [fs.speakers[i] for i in keep],
                      [Example(e.audio, labels[i], e.speaker, e.start, e.end, corpus(e) + condition)
                       for i, e in zip(keep, examples)])


def train_gender(exs: list[Example], work: Path, out: Path, extra: dict | None = None) -> dict:
    """The GE2E gender head on every example with a known gender; accuracy on held-out speaker
    groups per corpus, per window and per speaker (windows pooled as the annotate stage pools them)."""
    chosen = [Example(e.audio, e.source.split("|")[1], e.speaker, e.start, e.end, e.source)
              for e in exs if e.source.split("|")[1] in ("female", "male")]
    fs = extract_ge2e_features(chosen, work)
    oof = out_of_fold(fs, 0.1, FOLDS)
    probs = softmax(oof.logits)
    right = probs.argmax(axis=1) == oof.labels
    report = {}
    for name in ("ravdess", "natural", "ami"):
        rows = np.flatnonzero([corpus(chosen[i]) == name for i in fs.example])
        speaker_of = [(chosen[i].speaker, chosen[i].source) for i in fs.example[rows]]  # AMI: source names it
        pooled = {}
        for row, key in zip(rows, speaker_of):
            pooled.setdefault(key, []).append(row)
        speaker_right = [probs[idx].mean(axis=0).argmax() == oof.labels[idx[0]] for idx in pooled.values()]
        report[name] = {"windows": round(float(right[rows].mean()), 3), "speakers": len(pooled),
                        "speaker_accuracy": round(float(np.mean(speaker_right)), 3)}
    head = train(fs, meta={"name": "ge2e-probe-gender-v2", "encoder": "resemblyzer-ge2e", "pooling": "mean",
                           "validation": report, **(extra or {})})
    head.save(out)
    return report

if __name__ == "__main__":
    main()
