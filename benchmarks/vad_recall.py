"""Recall and false alarm of speech time of the segment stage, its old settings against its
defaults, per corpus, measured in one run.

    python -m benchmarks.vad_recall [--data ../shared/data/real] [--choose]

Every file is decoded to 16 kHz mono FLAC as ingest does; the `silero` VAD runs over it and
`segment.cut_speech` merges, splits and length-filters its regions exactly as the stage does. The
speech time found is the union of the kept pieces without their lead-in (`lead_in_s` reaches into
silence on purpose, to give ASR the onset; the `fa+lead` column counts it too).

References:
- AMI (`ami_meetings`): the union of the RTTM turns.
- RAVDESS (acted, no reference): an energy reference independent of the VAD. 10 ms frames whose
  level is at least `REF_MARGIN_DB` above the clip's noise floor (its 10th-percentile frame level)
  and within `REF_RANGE_DB` of its loudest frame; gaps under `REF_BRIDGE_S` are bridged (stop
  closures, short breaths) and runs under `REF_MIN_S` dropped. RAVDESS is studio speech with about
  a second of near-silence around each sentence, so this is close to a hand marking; sobs and
  audible breaths count as speech.
- `natural_speech` (read LibriSpeech and LJSpeech, a few others; no reference): energy fails
  there (some files have no pause, so their floor is speech; others are noisy), so the proxy is
  Silero at faster-whisper's own defaults (`PROXY_VAD`: threshold 0.5, 2 s min silence, 0.4 s
  padding), generous on purpose: recall says what a setting loses of what plain Silero calls
  speech; false alarm counts only time well away from it.

recall = found ∩ reference / reference; fa = found outside the reference / time outside the
reference (`-` where the reference leaves none: the AMI 60 s excerpt is all turns); both pooled
over a corpus. `no-speech` counts files the stage would skip as no-speech.

`--choose` scores the whole grid on the tuning corpora (`ravdess_train`, actors 09-16; the 84
`natural_speech` files; the ten AMI 30 s clips) and prints the setting the defaults should hold:
among the settings that leave no clean tuning clip without speech, the highest mean of (recall - fa)
over the three corpora; of the settings within `TIE` of the best, the one that changes fewest of
the old settings. The AMI 60 s excerpt (the demo audio) and the 80 `ravdess` clips (a subset of
`ravdess_train`) are scored, never used to choose.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from cpqa.audio.decode import decode_to_flac
from cpqa.audio.io import SAMPLE_RATE
from cpqa.audio.protocols import SpeechRegion
from cpqa.audio.segment import SegmentStage, cut_speech, quietest_time
from cpqa.audio.speakers import read_rttm
from cpqa.audio.vad import SileroVAD
from cpqa.labels.event_frames import true_runs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
FRAME_S = 0.01
REF_MARGIN_DB = 15.0
REF_RANGE_DB = 50.0
REF_BRIDGE_S = 0.2
REF_MIN_S = 0.05

PROXY_VAD = {"threshold": 0.5, "min_speech_s": 0.0, "min_silence_s": 2.0, "speech_pad_s": 0.4}
"""The natural-speech reference: faster-whisper's VadOptions defaults."""
OLD = ({"threshold": 0.5, "min_speech_s": 0.25, "min_silence_s": 0.1, "speech_pad_s": 0.1},
       {"merge_gap_s": 0.3, "min_segment_s": 1.0})
"""The settings before issue 15: Silero dropped regions under 0.25 s before the stage merged."""
VAD_GRID = {"threshold": (0.5, 0.35, 0.25), "min_silence_s": (0.1, 0.25), "speech_pad_s": (0.1, 0.2, 0.3)}
SEGMENT_GRID = {"merge_gap_s": (0.3, 0.5, 0.75, 1.0), "min_segment_s": (1.0, 0.75, 0.5)}
TUNING = ("ravdess_train", "natural", "ami-trn")
TIE = 0.001
"""Objectives closer than this are a tie: 2.6 s of the 882 s of RAVDESS speech, 0.5 s of the AMI clips'."""
CLEAN = ("ravdess_train", "natural")
"""Tuning corpora where every file holds a sentence or more of clean speech: none may end as no-speech
(an AMI clip may hold less than a segment's worth: trn02 has 0.7 s)."""

Setting = tuple[tuple[tuple[str, float], ...], tuple[tuple[str, float], ...]]
"""(VAD options, segment options) as hashable pairs."""


@dataclass
class File:
    corpus: str
    name: str
    flac: str
    reference: np.ndarray
    """Per FRAME_S frame: whether the reference calls it speech."""


def frames(intervals, n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    for start, end in intervals:
        mask[round(start / FRAME_S):round(end / FRAME_S)] = True
    return mask


def energy_reference(samples: np.ndarray) -> np.ndarray:
    frame = round(FRAME_S * SAMPLE_RATE)
    n = len(samples) // frame
    level = 10 * np.log10(np.mean(samples[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    speech = level >= max(np.percentile(level, 10) + REF_MARGIN_DB, level.max() - REF_RANGE_DB)
    for a, b in true_runs(~speech):
        if 0 < a and b < n and (b - a) * FRAME_S < REF_BRIDGE_S:
            speech[a:b] = True
    for a, b in true_runs(speech):
        if (b - a) * FRAME_S < REF_MIN_S:
            speech[a:b] = False
    return speech


def load(data: Path, work: Path) -> list[File]:
    sources = [("ravdess_train", p) for p in sorted((data / "ravdess_train" / "flac").glob("*.flac"))]
    sources += [("ravdess", p) for p in sorted((data / "ravdess" / "wav").glob("*.wav"))]
    sources += [("natural", p) for p in sorted((data / "natural_speech").iterdir())
                if p.suffix in {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a"}]
    ami = data / "ami_meetings"
    sources += [("ami-trn", p) for p in sorted((ami / "meeting_clips_30s").glob("trn*.wav"))]
    sources += [("ami-60s (demo, held out)", ami / "meeting_excerpt_60s" / "mixture.wav")]
    files = []
    for corpus, source in sources:
        flac = work / corpus.split()[0] / f"{source.stem}.flac"
        decode_to_flac(source, flac)
        samples = sf.read(str(flac), dtype="float32")[0]
        n = len(samples) // round(FRAME_S * SAMPLE_RATE)
        if corpus.startswith("ami"):
            reference = frames([(t.start, t.end) for t in read_rttm(source.with_suffix(".rttm"))], n)
        elif corpus == "natural":
            reference = frames([(r.start, r.end) for r in _vad(tuple(PROXY_VAD.items())).detect(samples)], n)
        else:
            reference = energy_reference(samples)
        files.append(File(corpus, source.stem, str(flac), reference))
    return files


_REGIONS: dict[tuple, list[SpeechRegion]] = {}


def regions(file: File, vad_options: tuple) -> list[SpeechRegion]:
    key = (file.flac, vad_options)
    if key not in _REGIONS:
        _REGIONS[key] = _vad(vad_options).detect(sf.read(file.flac, dtype="float32")[0])
    return _REGIONS[key]


_VADS: dict[tuple, SileroVAD] = {}


def _vad(vad_options: tuple) -> SileroVAD:
    if vad_options not in _VADS:
        _VADS[vad_options] = SileroVAD(SileroVAD.Config(**dict(vad_options)))
    return _VADS[vad_options]


@dataclass
class Score:
    speech: int = 0
    found: int = 0
    silence: int = 0
    false_alarm: int = 0
    false_alarm_lead: int = 0
    files: int = 0
    no_speech: int = 0

    @property
    def recall(self) -> float:
        return self.found / max(self.speech, 1)

    @property
    def fa(self) -> float:
        return self.false_alarm / max(self.silence, 1)


def score(files: list[File], setting: Setting) -> Score:
    vad_options, segment_options = setting
    config = SegmentStage.Config(**dict(segment_options))
    bare = config.model_copy(update={"lead_in_s": 0.0})
    total = Score()
    for file in files:
        found = regions(file, vad_options)
        quietest = lambda lo, hi, path=file.flac: quietest_time(path, lo, hi)  # noqa: E731
        pieces = cut_speech(found, bare, quietest).pieces
        led = cut_speech(found, config, quietest).pieces
        n = len(file.reference)
        hyp, hyp_led = frames(pieces, n), frames(led, n)
        total.speech += int(file.reference.sum())
        total.found += int((hyp & file.reference).sum())
        total.silence += int((~file.reference).sum())
        total.false_alarm += int((hyp & ~file.reference).sum())
        total.false_alarm_lead += int((hyp_led & ~file.reference).sum())
        total.files += 1
        total.no_speech += not pieces
    return total


def as_setting(vad_options: dict, segment_options: dict) -> Setting:
    return tuple(sorted(vad_options.items())), tuple(sorted(segment_options.items()))


def default_setting() -> Setting:
    """The settings the stage and the silero backend hold by default."""
    vad, segment = SileroVAD.Config(), SegmentStage.Config()
    return as_setting({k: getattr(vad, k) for k in OLD[0]}, {k: getattr(segment, k) for k in OLD[1]})


def grid() -> list[Setting]:
    vad_names, segment_names = list(VAD_GRID), list(SEGMENT_GRID)
    return [as_setting({"min_speech_s": 0.0, **dict(zip(vad_names, v))}, dict(zip(segment_names, s)))
            for v in itertools.product(*VAD_GRID.values()) for s in itertools.product(*SEGMENT_GRID.values())]


def objective(by_corpus: dict[str, list[File]], setting: Setting) -> float | None:
    """Mean (recall - fa) over the tuning corpora; None when a clean tuning file ends without speech."""
    scores = {c: score(by_corpus[c], setting) for c in TUNING}
    if any(scores[c].no_speech for c in CLEAN):
        return None
    return float(np.mean([s.recall - s.fa for s in scores.values()]))


def describe(setting: Setting) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in (*setting[0], *setting[1]))


def changes(setting: Setting) -> int:
    """How many settings differ from OLD (min_speech_s aside: it is 0 in every grid setting)."""
    old = dict((*as_setting(*OLD)[0], *as_setting(*OLD)[1]))
    return sum(old[k] != v for k, v in (*setting[0], *setting[1]) if k != "min_speech_s")


def choose(by_corpus: dict[str, list[File]]) -> Setting:
    started = time.perf_counter()
    scored = [(objective(by_corpus, s), s) for s in grid()]
    admissible = [(j, s) for j, s in scored if j is not None]
    print(f"grid: {len(scored)} settings, {len(admissible)} leave no clean tuning file without speech "
          f"({time.perf_counter() - started:.0f} s)")
    ranked = sorted(admissible, key=lambda js: -js[0])
    for j, s in ranked[:8]:
        scores = " ".join(f"{c} {x.recall:.3f}/{x.fa:.3f}" for c in TUNING for x in [score(by_corpus[c], s)])
        print(f"  {j:.4f}  {describe(s)}  (recall/fa: {scores})")
    near = [(changes(s), -j, s) for j, s in ranked if j >= ranked[0][0] - TIE]
    return min(near)[2]


def rate(part: int, whole: int) -> str:
    return f"{part / whole:.3f}" if whole else "-"


def report(by_corpus: dict[str, list[File]], settings: dict[str, Setting]) -> None:
    for label, setting in settings.items():
        print(f"{label}: {describe(setting)}")
    print(f"\n{'corpus':26} {'files':>5} {'speech s':>8} {'other s':>7}  " + "  ".join(
        f"{label:>7} {'recall':>6} {'fa':>5} {'fa+lead':>7} {'no-sp':>5}" for label in settings))
    for corpus, files in by_corpus.items():
        scores = [score(files, s) for s in settings.values()]
        print(f"{corpus:26} {len(files):5d} {scores[0].speech * FRAME_S:8.0f} {scores[0].silence * FRAME_S:7.0f}  "
              + "  ".join(f"{'':>7} {s.recall:6.3f} {rate(s.false_alarm, s.silence):>5} "
                          f"{rate(s.false_alarm_lead, s.silence):>7} {s.no_speech:5d}" for s in scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--choose", action="store_true", help="score the grid and print the best setting")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        files = load(args.data, Path(work))
        by_corpus: dict[str, list[File]] = {}
        for f in files:
            by_corpus.setdefault(f.corpus, []).append(f)
        print(f"{len(files)} files decoded, references made ({time.perf_counter() - started:.0f} s)")
        settings = {"old": as_setting(*OLD), "default": default_setting()}
        if args.choose:
            settings["chosen"] = choose(by_corpus)
        report(by_corpus, settings)


if __name__ == "__main__":
    main()
