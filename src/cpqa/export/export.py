"""`export`: a run's QA (or an exported QA file) as training data for speech-LLMs.

    OUT/
      export.json            source, options, per-split counts (items, clips, recordings, speakers,
                             types), items left out by reason, the files written
      train.jsonl, dev.jsonl, test.jsonl     (JSONL formats; empty splits are not written)
      dataset_info.json      (llamafactory)
      data/, dataset/        (hf)
      audio/                 heard windows of long clips; copies of the clips (audio_paths=copy)
      README.md              what was exported, and how its trainer finds relative audio paths

**What the model hears** (`cpqa.evaluate.heard`): each format knows its model's audio window
(`Format.audio_window_s`: 30 s, Qwen2-Audio's, for the training formats; `window_s` overrides it).
A clip longer than the window is cut into heard windows and each item goes with the window its
evidence lies in (`long_audio="split"`), or only items whose evidence lies in the first window are
kept (`"drop"`); either way the window's audio is written to OUT/audio/ and the items the model
would not hear are left out and counted in `export.json` (`heard`). No exported item is about
audio past the window of the audio it names.

Audio paths in the JSONL formats are absolute by default (ms-swift recommends it); `relative` makes
them relative to OUT; `copy` copies each clip's audio into OUT/audio/ and names it relatively, so
OUT stands alone. The README written in OUT says how its trainer resolves relative paths.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from .. import __version__
from ..audio.decode import load_16k_mono
from ..audio.io import write_flac_16k
from ..errors import CPQAError
from ..evaluate.audio import window_samples
from ..evaluate.heard import Placement, evidence_span, place
from ..io_atomic import write_atomic
from ..registry import EXPORT_FORMATS
from ..stage import Config
from .conversation import DEFAULT_SYSTEM, MultiTurn, build_messages
from .formats import Prepared
from .readme import write_readme
from .source import Example, heard_example, load_examples
from .splits import SPLIT_NAMES, assign_splits, recording_groups

logger = logging.getLogger(__name__)

SUMMARY = "export.json"
AudioPaths = Literal["absolute", "relative", "copy"]


class ExportOptions(Config):
    splits: dict[str, float] = Field(default_factory=lambda: {"train": 0.8, "dev": 0.1, "test": 0.1},
                                     description="Split name → share of the QA items (the order is the line order).")
    split_seed: str = Field("cpqa", description="Salt of the group hash; another salt gives other splits.")
    split_by_speaker: bool = Field(True, description="Keep recordings that share a speaker in one split. Turn off "
                                                     "when speaker ids are local to a recording (SPEAKER_00 …).")
    explicit: bool = Field(False, description="Open each first question with the clip's paralinguistic labels.")
    multi_turn: MultiTurn = Field("conversation", description="conversation: every turn of an item in one example; "
                                                              "first: its first turn only.")
    system: str | None = Field(DEFAULT_SYSTEM, description="The system message; None or '' for none.")
    audio_paths: AudioPaths = Field("absolute", description="absolute, relative (to OUT) or copy (into OUT/audio).")
    include_failed: bool = Field(False, description="Export items the QA filters failed too.")
    long_audio: Literal["split", "drop"] = Field("split", description=(
        "Clips longer than the model's window: split (each item with the heard window its evidence lies in) or "
        "drop (the first window only); items the model would not hear are left out and counted."))
    window_s: float | None = Field(None, gt=0, description=(
        "Seconds the model hears at once; unset: the format's (30 s, Qwen2-Audio's; none for jsonl)."))
    dataset_name: str = Field("cpqa", description="Prefix of the dataset names (llamafactory's dataset_info.json).")

    @field_validator("splits")
    @classmethod
    def _check_splits(cls, value: dict[str, float]) -> dict[str, float]:
        if not value or any(r < 0 for r in value.values()) or sum(value.values()) <= 0:
            raise ValueError("split shares must be non-negative and not all zero")
        bad = [name for name in value if not name.replace("_", "").replace("-", "").isalnum()]
        if bad:
            raise ValueError(f"split names must be letters, digits, '-' or '_': {bad}")
        return value


@dataclass
class ExportResult:
    out: Path
    format: str
    files: list[Path]
    summary: dict[str, Any] = field(default_factory=dict)


def parse_splits(text: str) -> dict[str, float]:
    """`train=0.8,dev=0.1,test=0.1`, or bare shares for train, dev, test (`0.9,0.1`)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        if all("=" in p for p in parts):
            return {name.strip(): float(share) for name, share in (p.split("=", 1) for p in parts)}
        if len(parts) <= len(SPLIT_NAMES) and not any("=" in p for p in parts):
            return dict(zip(SPLIT_NAMES, (float(p) for p in parts)))
    except ValueError:
        pass
    raise CPQAError(f"--splits takes name=share pairs (train=0.8,dev=0.1,test=0.1) or up to three shares, got '{text}'")


def export(source: str | Path, fmt: str, out: str | Path, clips: str | Path | None = None,
           **options: Any) -> ExportResult:
    """Export the QA of `source` (a run directory or a QA JSONL) in format `fmt` under `out`.
    `options` are `ExportOptions` fields. Raises CPQAError on a bad format, option or source."""
    format_cls = EXPORT_FORMATS.get(fmt)
    try:
        opts = ExportOptions(**options)
    except ValueError as exc:  # pydantic's ValidationError
        raise CPQAError(f"export options: {exc}") from None
    writer = format_cls()
    out = Path(out).resolve()
    _prepare_out(out)
    loaded = load_examples(source, clips=clips, include_failed=opts.include_failed)
    window_s = opts.window_s or writer.audio_window_s
    with tempfile.TemporaryDirectory(prefix=".heard-", dir=out) as tmp:
        # embedded audio needs no files beside the export: its heard windows go to a temporary folder
        audio_ref = _AudioRefs(out, opts.audio_paths if not writer.embeds_audio else "absolute",
                               Path(tmp) if writer.embeds_audio else out / "audio")
        examples, heard = _heard(loaded.examples, window_s, opts.long_audio, audio_ref)
        splits = _prepared(examples, opts, audio_ref)
        files = writer.write(out, splits, opts.dataset_name) + ([] if writer.embeds_audio else audio_ref.written)
    summary = {
        "cpqa_version": __version__, "source": str(Path(source).resolve()), "source_kind": loaded.source_kind,
        "qa_stage": loaded.qa_stage, "clips": str(Path(clips).resolve()) if clips is not None else None,
        "format": fmt, "options": opts.model_dump(mode="json"),
        "splits": {name: _split_stats(items) for name, items in splits.items()},
        "skipped": dict(sorted(loaded.skipped.items())),
        "heard": {"window_s": window_s, "long_audio": opts.long_audio, **heard},
        "files": sorted(str(f.relative_to(out)) for f in files if f.parent != out / "audio") +
                 (["audio"] if audio_ref.written else []),
    }
    files.append(write_readme(out, writer, summary))
    summary["files"].append("README.md")
    write_atomic(out / SUMMARY, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    logger.info("exported %d item(s) as %s to %s", sum(len(v) for v in splits.values()), fmt, out)
    return ExportResult(out, fmt, files, summary)


def _heard(examples: list[Example], window_s: float | None, long_audio: str,
           audio_ref: _AudioRefs) -> tuple[list[Example], dict[str, Any]]:
    """The examples as the model hears them (a window's audio for an item of a longer clip), and
    the counts: items heard whole, items kept in a window, clips split, items dropped by reason."""
    kept: list[Example] = []
    counts: Counter = Counter()
    dropped: Counter = Counter()
    split_clips: set[Path] = set()
    for e in sorted(examples, key=lambda e: e.qa.id):
        placement = place(e.duration_s, evidence_span(e.qa, e.clip), window_s, long_audio)
        if placement.dropped:
            dropped[placement.dropped] += 1
            continue
        audio = e.audio
        if placement.cut == "window":
            audio = audio_ref.cut(e.audio, placement)
            split_clips.add(e.audio)
        counts[placement.cut] += 1
        kept.append(heard_example(e, placement, audio))
    if dropped:
        logger.warning("%d item(s) left out: about audio past the %g s the model hears at once (%s)",
                       sum(dropped.values()), window_s, ", ".join(f"{r}: {n}" for r, n in sorted(dropped.items())))
    if not kept:
        raise CPQAError(f"no item is about audio the model hears in {window_s:g} s ({dict(dropped)}); "
                        "give a longer window_s (--window-s) if the model hears more")
    return kept, {"items_whole": counts["none"], "items_in_windows": counts["window"], "clips_split": len(split_clips),
                  "windows_written": len(audio_ref.windows), "dropped": dict(sorted(dropped.items()))}


def _prepared(examples: list[Example], opts: ExportOptions, audio_ref: _AudioRefs) -> dict[str, list[Prepared]]:
    split_of = _splits(examples, opts)
    splits: dict[str, list[Prepared]] = {name: [] for name in opts.splits}
    for e in examples:
        messages = build_messages(e, system=opts.system or None, explicit=opts.explicit, multi_turn=opts.multi_turn)
        splits[split_of[e.recording_id]].append(Prepared(e, split_of[e.recording_id], messages, audio_ref(e.audio)))
    for name, items in splits.items():
        if not items and opts.splits[name] > 0:
            logger.warning("split '%s' got no items: too few recording/speaker groups for the shares asked", name)
    return {name: items for name, items in splits.items() if items}


def _prepare_out(out: Path) -> None:
    """Create OUT, or clear what an earlier export wrote there; refuse a folder of something else."""
    summary = out / SUMMARY
    if summary.exists():
        for name in json.loads(summary.read_text()).get("files", []):
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        summary.unlink()
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CPQAError(f"{out} exists and is not an earlier export (no {SUMMARY}); choose a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)


def _splits(examples: list[Example], opts: ExportOptions) -> dict[str, str]:
    groups = recording_groups(((e.recording_id, e.speakers) for e in examples), by_speaker=opts.split_by_speaker)
    weights = Counter(e.recording_id for e in examples)
    group_items = Counter()
    for recording, n in weights.items():
        group_items[groups[recording]] += n
    largest, n = group_items.most_common(1)[0]
    share = n / len(examples)
    logger.info("splits: %d recording(s) in %d group(s); the largest (%s) holds %.0f %% of the items",
                len(weights), len(group_items), largest, 100 * share)
    if share > max(opts.splits.values()) / sum(opts.splits.values()):
        logger.warning("one group of recordings linked by shared speakers holds %.0f %% of the items, more than any "
                       "split's share; if speaker ids are local to each recording (diarization labels), export "
                       "with split_by_speaker=False", 100 * share)
    return assign_splits(weights, groups, opts.splits, seed=opts.split_seed)


def _split_stats(items: list[Prepared]) -> dict[str, Any]:
    return {"items": len(items), "clips": len({p.example.qa.clip_id for p in items}),
            "recordings": len({p.example.recording_id for p in items}),
            "speakers": len({s for p in items for s in p.example.speakers}),
            "audio_hours": round(sum({p.example.audio: p.example.duration_s for p in items}.values()) / 3600, 4),
            "types": dict(sorted(Counter(p.example.qa.type for p in items).items()))}


class _AudioRefs:
    """How the files name each audio file. Writes heard windows (and, under `copy`, copies of the
    clips) into `folder` (OUT/audio, or a temporary folder for formats that embed the audio)."""

    def __init__(self, out: Path, mode: AudioPaths, folder: Path):
        self.out, self.mode, self.folder = out, mode, folder
        self.copies: dict[Path, Path] = {}
        self.windows: dict[tuple[Path, int], Path] = {}
        self.written: list[Path] = []
        # a clip's items come together (sorted by id): its windows are cut from one decoding
        self._samples = functools.lru_cache(maxsize=1)(load_16k_mono)

    def __call__(self, audio: Path) -> str:
        if self.mode == "absolute":
            return str(audio)
        if self.mode == "copy" and audio.parent != self.folder:
            if audio not in self.copies:
                self.copies[audio] = self._write(audio, "", lambda target: shutil.copy2(audio, target))
            audio = self.copies[audio]
        return os.path.relpath(audio, self.out)

    def cut(self, audio: Path, placement: Placement) -> Path:
        """The file of the heard window `placement` of `audio`, written once."""
        key = (audio, placement.index)
        if key not in self.windows:
            samples = window_samples(self._samples(audio), placement.window)
            self.windows[key] = self._write(audio, f"-w{placement.index}", lambda t: write_flac_16k(t, samples),
                                            suffix=".flac")
        return self.windows[key]

    def _write(self, audio: Path, tag: str, write, suffix: str | None = None) -> Path:
        name = f"{audio.stem}{tag}{suffix or audio.suffix}"
        if (self.folder / name).exists():  # another file of that name: tell them apart by their source path
            digest = hashlib.blake2b(str(audio).encode(), digest_size=4).hexdigest()
            name = f"{audio.stem}-{digest}{tag}{suffix or audio.suffix}"
        target = self.folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        write(target)
        self.written.append(target)
        return target
