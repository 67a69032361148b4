"""DER and speaker-count accuracy of the `embedding-cluster` diarizer on the AMI samples, with
each of its clusterings (spectral, ahc).

    python -m benchmarks.der_ami [--data /work/shared/data/real/ami_meetings]

The ten 30 s clips (`meeting_clips_30s/trnNN`) choose the settings: every grid point of a
clustering is scored by the DER pooled over them (collar 0, overlap included), and
leave-one-clip-out (choose on nine, score the tenth) tells how much that choice flatters itself.
The 60 s excerpt (`meeting_excerpt_60s/mixture`) is scored with the chosen settings and never used
to choose them (though its spectral figures were seen while spectral clustering was developed).
Collars are md-eval style (± around each reference boundary). Speaker counts compare the number
of speakers found with the number the RTTM names. The default clustering is the one with the
lower pooled DER on the clips; spectral when they are within `TIE_DER`, as it needs no distance
threshold fitted to a corpus.
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
from cpqa.audio.embedding_cluster import EmbeddingClusterDiarizer, SpeechEmbeddings, assign_speakers
from cpqa.audio.speakers import Turn, read_rttm

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "ami_meetings"
VAD_THRESHOLDS = (0.5, 0.35, 0.25)
MIN_SPEAKER_S = (0.0, 1.0, 2.0)
GRIDS = {
    "spectral": {"neighbour_fraction": (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)},
    "ahc": {"threshold": tuple(round(t, 3) for t in np.arange(0.2, 0.6001, 0.025))},
}
"""Per clustering, the parameter tuned besides the VAD threshold and min_speaker_s."""
ONE_SPEAKER_SIMILARITIES = (0.6, 0.65, 0.7, 0.75, 0.8, 1.0)
TIE_DER = 0.01
AUDIBLE_S = 2.0

Setting = tuple[tuple[str, object], ...]
"""Config overrides as (field, value) pairs, hashable; the VAD threshold under "vad"."""


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
        diarizer = EmbeddingClusterDiarizer(_config((("vad", vad_threshold),)))
        for wav, file in zip(wavs, files):
            file.speech[vad_threshold] = diarizer.embed(str(wav), sf.info(str(wav)).duration)
    embed_s = (time.perf_counter() - started) / len(VAD_THRESHOLDS)
    return files[:-1], files[-1], embed_s


def _config(setting: Setting) -> EmbeddingClusterDiarizer.Config:
    fields = dict(setting)
    vad_threshold = fields.pop("vad")
    return EmbeddingClusterDiarizer.Config(**fields, vad={"threshold": vad_threshold})


def grid(clustering: str) -> list[Setting]:
    """Every setting of one clustering; in order of preference on a tie (higher VAD threshold,
    then lower tuned parameter, then less min_speaker_s)."""
    [(name, values)] = GRIDS[clustering].items()
    return [(("clustering", clustering), ("vad", vad), (name, value), ("min_speaker_s", min_s))
            for vad, value, min_s in itertools.product(VAD_THRESHOLDS, values, MIN_SPEAKER_S)]


def replaced(setting: Setting, field: str, value: object) -> Setting:
    return tuple((k, v) for k, v in setting if k != field) + ((field, value),)


_SCORES: dict[tuple, tuple[DERResult, int]] = {}


def score(file: File, setting: Setting, collar_s: float = 0.0) -> tuple[DERResult, int]:
    """(DER result, speakers found) of one file with one setting."""
    key = (file.name, setting, collar_s)
    if key not in _SCORES:  # leave-one-out asks for every score ten times
        hypothesis = assign_speakers(file.speech[dict(setting)["vad"]], _config(setting))
        _SCORES[key] = (diarization_error_rate(file.reference, hypothesis, collar_s=collar_s), speakers(hypothesis))
    return _SCORES[key]


def pooled(results: list[DERResult]) -> float:
    return sum(r.missed_s + r.false_alarm_s + r.confusion_s for r in results) / sum(r.total_s for r in results)


def pooled_der(files: list[File], setting: Setting, collar_s: float = 0.0) -> float:
    return pooled([score(f, setting, collar_s)[0] for f in files])


def best_setting(files: list[File], settings: list[Setting]) -> Setting:
    """The lowest pooled DER; ties go to the earlier setting."""
    return min(settings, key=lambda s: round(pooled_der(files, s), 6))


def speakers(turns: list[Turn]) -> int:
    return len({t.speaker for t in turns})


def audible_speakers(turns: list[Turn]) -> int:
    """Speakers with at least AUDIBLE_S of turns: a count a clustering of 0.75 s spans can hope to match."""
    speech_s: dict[str, float] = {}
    for t in turns:
        speech_s[t.speaker] = speech_s.get(t.speaker, 0.0) + t.end - t.start
    return sum(s >= AUDIBLE_S for s in speech_s.values())


def report(clustering: str, tune: list[File], held_out: File) -> float:
    """Print one clustering's chosen setting and scores; return its pooled DER on the clips."""
    settings = grid(clustering)
    chosen = best_setting(tune, settings)
    [tuned] = GRIDS[clustering]
    print(f"\n=== {clustering}: chosen on trn00-09: " + ", ".join(f"{k} {v}" for k, v in chosen[1:]))
    print(f"{'file':8} {'DER@0.25':>8} {'DER@0':>7} {'miss':>6} {'fa':>6} {'conf':>6} {'true':>5} {'found':>5}")
    for file in [*tune, held_out]:
        strict, found = score(file, chosen)
        forgiving, _ = score(file, chosen, collar_s=0.25)
        t = strict.total_s or 1.0
        print(f"{file.name:8} {forgiving.der:8.3f} {strict.der:7.3f} {strict.missed_s / t:6.3f} "
              f"{strict.false_alarm_s / t:6.3f} {strict.confusion_s / t:6.3f} {speakers(file.reference):5d} {found:5d}")

    loo = [score(file, best_setting(tune[:i] + tune[i + 1:], settings))[0] for i, file in enumerate(tune)]
    trn_der = pooled_der(tune, chosen)
    print(f"trn pooled DER (tuned on itself): {pooled_der(tune, chosen, 0.25):.3f} collar 0.25, "
          f"{trn_der:.3f} collar 0")
    print(f"trn pooled DER, leave-one-clip-out, collar 0: {pooled(loo):.3f}")
    print(f"mixture DER: {score(held_out, chosen, 0.25)[0].der:.3f} collar 0.25, "
          f"{score(held_out, chosen)[0].der:.3f} collar 0")
    print(f"trn pooled DER by {tuned} (collar 0): " + ", ".join(
        f"{v}: {pooled_der(tune, replaced(chosen, tuned, v)):.3f}" for v in GRIDS[clustering][tuned]))
    others = [(v, *score(held_out, replaced(chosen, tuned, v))) for v in GRIDS[clustering][tuned]]
    print(f"mixture at other {tuned} (not used for the choice): "
          + ", ".join(f"{v}: {r.der:.3f} ({n} spk)" for v, r, n in others))
    if clustering == "spectral":
        print("trn pooled DER by one_speaker_similarity (collar 0): " + ", ".join(
            f"{s}: {pooled_der(tune, replaced(chosen, 'one_speaker_similarity', s)):.3f}"
            for s in ONE_SPEAKER_SIMILARITIES))
    found = [score(f, chosen)[1] for f in tune]
    for label, true in (("all", [speakers(f.reference) for f in tune]),
                        (f">= {AUDIBLE_S:.0f} s", [audible_speakers(f.reference) for f in tune])):
        print(f"speaker count on trn, {label} reference speakers: {sum(a == b for a, b in zip(true, found))}/10 "
              f"exact, mean |error| {np.mean([abs(a - b) for a, b in zip(true, found)]):.1f}")
    print(f"mixture: {score(held_out, chosen)[1]} speakers found of {speakers(held_out.reference)} "
          f"({audible_speakers(held_out.reference)} with >= {AUDIBLE_S:.0f} s)")
    return trn_der


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    data = parser.parse_args().data
    tune, held_out, embed_s = load(data)
    print(f"embedding pass over the 11 files (330 s of audio): {embed_s:.0f} s")
    trn_der = {clustering: report(clustering, tune, held_out) for clustering in GRIDS}
    default = "spectral" if trn_der["spectral"] <= trn_der["ahc"] + TIE_DER else "ahc"
    print(f"\ndefault clustering by trn pooled DER (collar 0; spectral within {TIE_DER}): {default}")


if __name__ == "__main__":
    main()
