"""DER and speaker-count accuracy of the `embedding-cluster` diarizer on the AMI samples.

    python -m benchmarks.der_ami [--data /work/shared/data/real/ami_meetings]

The ten 30 s clips (`meeting_clips_30s/trnNN`) choose the settings: every grid point is scored by
the DER pooled over them (collar 0, overlap included), and leave-one-clip-out (choose on nine,
score the tenth) tells how much that choice flatters itself. The 60 s excerpt
(`meeting_excerpt_60s/mixture`) is held out: scored once, with the chosen settings. Collars are
md-eval style (± around each reference boundary). Speaker counts compare the number of speakers
found with the number the RTTM names.
"""

from __future__ import annotations

import argparse
import itertools
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from cpqa.audio.der import DERResult, diarization_error_rate
from cpqa.audio.diarize import EmbeddingClusterDiarizer, SpeechEmbeddings, assign_speakers
from cpqa.labels.speakers import Turn, read_rttm

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "ami_meetings"
VAD_THRESHOLDS = (0.5, 0.35, 0.25)
CLUSTER_THRESHOLDS = tuple(round(t, 3) for t in np.arange(0.2, 0.6001, 0.025))
MIN_SPEAKER_S = (0.0, 1.0, 2.0)


@dataclass
class File:
    name: str
    reference: list[Turn]
    speech: dict[float, SpeechEmbeddings]
    """Per VAD threshold: what the diarizer found before clustering."""


def load(data: Path) -> tuple[list[File], File, float]:
    wavs = sorted((data / "meeting_clips_30s").glob("trn*.wav")) + [data / "meeting_excerpt_60s" / "mixture.wav"]
    files = [File(w.stem, read_rttm(w.with_suffix(".rttm")), {}) for w in wavs]
    started = time.perf_counter()
    for vad_threshold in VAD_THRESHOLDS:
        diarizer = EmbeddingClusterDiarizer(_config(vad_threshold))
        for wav, file in zip(wavs, files):
            file.speech[vad_threshold] = diarizer.embed(str(wav), sf.info(str(wav)).duration)
    embed_s = (time.perf_counter() - started) / len(VAD_THRESHOLDS)
    return files[:-1], files[-1], embed_s


def _config(vad_threshold: float, threshold: float = 0.3, min_speaker_s: float = 0.0):
    return EmbeddingClusterDiarizer.Config(threshold=threshold, min_speaker_s=min_speaker_s,
                                           vad={"threshold": vad_threshold})


_SCORES: dict[tuple, tuple[DERResult, int]] = {}


def score(file: File, setting: tuple[float, float, float], collar_s: float = 0.0) -> tuple[DERResult, int]:
    """(DER result, speakers found) of one file with one (vad threshold, threshold, min_speaker_s)."""
    key = (file.name, setting, collar_s)
    if key not in _SCORES:  # leave-one-out asks for every score ten times
        vad_threshold, threshold, min_speaker_s = setting
        hypothesis = assign_speakers(file.speech[vad_threshold], _config(vad_threshold, threshold, min_speaker_s))
        _SCORES[key] = (diarization_error_rate(file.reference, hypothesis, collar_s=collar_s), speakers(hypothesis))
    return _SCORES[key]


def pooled(results: list[DERResult]) -> float:
    return sum(r.missed_s + r.false_alarm_s + r.confusion_s for r in results) / sum(r.total_s for r in results)


def best_setting(files: list[File], settings: list[tuple]) -> tuple:
    """The lowest pooled DER; ties go to the earlier setting (higher VAD threshold, lower cluster threshold)."""
    return min(settings, key=lambda s: round(pooled([score(f, s)[0] for f in files]), 6))


def speakers(turns: list[Turn]) -> int:
    return len({t.speaker for t in turns})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    data = parser.parse_args().data
    tune, held_out, embed_s = load(data)
    settings = list(itertools.product(VAD_THRESHOLDS, CLUSTER_THRESHOLDS, MIN_SPEAKER_S))
    chosen = best_setting(tune, settings)
    print(f"embedding pass over the 11 files (330 s of audio): {embed_s:.0f} s")
    print(f"chosen on trn00-09: vad threshold {chosen[0]}, cluster threshold {chosen[1]}, min_speaker_s {chosen[2]}")

    print(f"\n{'file':8} {'DER@0.25':>8} {'DER@0':>7} {'miss':>6} {'fa':>6} {'conf':>6} {'true':>5} {'found':>5}")
    rows = {}
    for file in [*tune, held_out]:
        strict, found = score(file, chosen)
        forgiving, _ = score(file, chosen, collar_s=0.25)
        rows[file.name] = (strict, forgiving, found)
        t = strict.total_s or 1.0
        print(f"{file.name:8} {forgiving.der:8.3f} {strict.der:7.3f} {strict.missed_s / t:6.3f} "
              f"{strict.false_alarm_s / t:6.3f} {strict.confusion_s / t:6.3f} {speakers(file.reference):5d} {found:5d}")

    loo = []
    for i, file in enumerate(tune):
        setting = best_setting(tune[:i] + tune[i + 1:], settings)
        loo.append(score(file, setting)[0])
    tune_rows = [rows[f.name] for f in tune]
    print(f"\ntrn pooled DER (tuned on itself): {pooled([r[1] for r in tune_rows]):.3f} collar 0.25, "
          f"{pooled([r[0] for r in tune_rows]):.3f} collar 0")
    print(f"trn pooled DER, leave-one-clip-out, collar 0: {pooled(loo):.3f}")
    strict, forgiving, found = rows[held_out.name]
    print(f"held-out mixture DER: {forgiving.der:.3f} collar 0.25, {strict.der:.3f} collar 0")
    others = [(t, *score(held_out, (chosen[0], t, chosen[2]))) for t in CLUSTER_THRESHOLDS[4:13:2]]
    print("held-out mixture at other cluster thresholds (seen after the choice, not used for it): "
          + ", ".join(f"{t}: {r.der:.3f} ({n} spk)" for t, r, n in others))
    counts = [(speakers(f.reference), rows[f.name][2]) for f in tune]
    print(f"speaker count on trn: {sum(a == b for a, b in counts)}/10 exact, mean |error| "
          f"{np.mean([abs(a - b) for a, b in counts]):.1f}; held-out mixture: {found} found of "
          f"{speakers(held_out.reference)}")


if __name__ == "__main__":
    main()
