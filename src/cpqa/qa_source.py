"""Reading QA back, for evaluation, export, review and fine-tuning: from a run, from an exported QA
file, or from a human-made table.

- a **run directory**: the QAItems its last QA stage (`qa_dataset`, else `qa`) kept (the filters'
  drops are in excluded.jsonl: `run_qa_records`), their audio and words from the `clips` stage;
- a **QA JSONL(.gz)** of QAItems, as `cpqa review export` writes it (reviewed or human sets): the
  audio is `metadata.audio` (absolute, or relative to the file's folder);
- a **human set** as CSV or JSONL rows with columns `audio` (or `clip_audio`, `audio_path`),
  `question`, `answer`, `type`, and optionally `id`, `clip_id`, `emotion`. A JSONL file may mix
  QAItem lines and such rows.

`clips` (a run directory or a clips JSONL) adds clip records to a file source by `clip_id`, for the
cascade baselines and the per-emotion results. An item's emotion is `metadata.emotion` when set,
else its clip's dominant word emotion by duration (`unknown`/`other` aside), else `unknown`.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from .errors import CPQAError
from .manifest import iter_jsonl
from .records import Clip, QAItem, QAType, Turn
from .rundir import EXCLUDED, RUN_INFO, iter_stage_file, iter_stage_records, read_run_info, resolve_path
from .vocabulary import NOT_A_LABEL, UNKNOWN

logger = logging.getLogger(__name__)

QA_STAGES = ("qa_dataset", "qa")
"""The stages whose records are QA items, the final one first."""
CLIPS_STAGE = "clips"
AUDIO_COLUMNS = ("audio", "clip_audio", "audio_path")
QA_TYPES = frozenset(get_args(QAType))


@dataclass
class EvalItem:
    qa: QAItem
    audio: str | None
    """Absolute path of the clip's audio; None when the source gives none."""
    clip: Clip | None
    emotion: str


def is_run(path: Path) -> bool:
    return path.is_dir() and (path / RUN_INFO).is_file()


def load_items(source: str | Path, clips: str | Path | None = None) -> list[EvalItem]:
    """Every QA item of `source` with its audio, clip and emotion. Raises CPQAError on a source
    that cannot be read; an item whose audio is missing is kept (its answer becomes a skip)."""
    source = Path(source)
    if is_run(source):
        qa = _run_qa(source)
        clip_index = _run_clips(source)
        items = [_item(q, clip_index.get(q.clip_id), None, source) for q in qa]
    elif source.is_file():
        clip_index = load_clips(clips) if clips is not None else {}
        items = [_item(q, clip_index.get(q.clip_id), audio, source.parent) for q, audio in _file_items(source)]
    else:
        raise CPQAError(f"{source} is neither a cpqa run directory nor a QA file (JSONL or CSV)")
    if not items:
        raise CPQAError(f"{source} holds no QA items to evaluate")
    duplicates = [i for i, n in Counter(item.qa.id for item in items).items() if n > 1]
    if duplicates:
        raise CPQAError(f"{source}: QA ids must be unique; repeated: {', '.join(duplicates[:5])}")
    return items


def load_clips(path: str | Path) -> dict[str, Clip]:
    """Clip records by id, from a run directory or a clips JSONL."""
    path = Path(path)
    if is_run(path):
        return _run_clips(path)
    if not path.is_file():
        raise CPQAError(f"clips: {path} is neither a run directory nor a clips JSONL file")
    clips = {}
    for n, obj in enumerate(iter_jsonl(path), 1):
        try:
            clip = Clip.model_validate(obj)
        except ValidationError as exc:
            raise CPQAError(f"{path}:{n}: not a clip record: {_first_error(exc)}") from None
        clip.audio = str(resolve_path(clip.audio, path.parent))
        clips[clip.id] = clip
    return clips


def qa_stage(run: Path) -> str:
    """The run's final QA stage: the first of QA_STAGES it has. Raises CPQAError when it has none."""
    names = [s["name"] for s in read_run_info(run)["stages"]]
    stage = next((s for s in QA_STAGES if s in names), None)
    if stage is None:
        raise CPQAError(f"run {run} has no QA stage ({' or '.join(QA_STAGES)}); stages: {', '.join(names)}; "
                        "build it to the end first")
    return stage


def run_qa_records(run: Path, include_dropped: bool = False) -> Iterator[dict[str, Any]]:
    """The QA items the run kept (its final QA stage's records); with `include_dropped`, then the
    items every QA stage dropped (each sees only what the one before kept)."""
    yield from iter_stage_records(run, qa_stage(run))
    if include_dropped:
        names = {s["name"] for s in read_run_info(run)["stages"]}
        for stage in reversed(QA_STAGES):
            if stage in names:
                yield from (d["item"] for d in iter_stage_file(run, stage, EXCLUDED) if d.get("item"))


def _run_qa(run: Path) -> list[QAItem]:
    where = f"{run} (stage {qa_stage(run)})"
    return [_qa(obj, where) for obj in run_qa_records(run)]


def _run_clips(run: Path) -> dict[str, Clip]:
    clips = {}
    for obj in iter_stage_records(run, CLIPS_STAGE):
        clip = Clip.model_validate(obj)
        clip.audio = str(resolve_path(clip.audio, run))
        clips[clip.id] = clip
    return clips


def _item(qa: QAItem, clip: Clip | None, audio: str | None, base: Path) -> EvalItem:
    path = audio if audio is not None else (clip.audio if clip is not None else None)
    return EvalItem(qa=qa, audio=str(resolve_path(path, base)) if path else None, clip=clip,
                    emotion=qa.metadata.get("emotion") or dominant_emotion(clip))


def dominant_emotion(clip: Clip | None) -> str:
    """The emotion its words carry longest (tags that name no class aside)."""
    if clip is None:
        return UNKNOWN
    seconds: Counter = Counter()
    for w in clip.words:
        if w.emotion and w.emotion not in NOT_A_LABEL:
            seconds[w.emotion] += max(w.end - w.start, 0.0)
    return max(sorted(seconds), key=seconds.__getitem__) if seconds else UNKNOWN


def _file_items(path: Path) -> Iterator[tuple[QAItem, str | None]]:
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as f:
            for n, row in enumerate(csv.DictReader(f), 2):
                yield _human_row(row, f"{path}:{n}")
        return
    try:
        for n, obj in enumerate(iter_jsonl(path), 1):
            where = f"{path}:{n}"
            if not isinstance(obj, dict):
                raise CPQAError(f"{where}: expected a JSON object")
            if "turns" in obj:
                qa = _qa(obj, where)
                yield qa, qa.metadata.get("audio")
            else:
                yield _human_row(obj, where)
    except UnicodeDecodeError as exc:
        raise CPQAError(f"{path} is not a UTF-8 JSONL or CSV file ({exc.reason})") from None
    except ValueError as exc:  # json.JSONDecodeError
        raise CPQAError(f"{path}: not JSONL ({exc}); QA files are JSONL QAItems or CSV/JSONL rows") from None


def _qa(obj: dict[str, Any], where: str) -> QAItem:
    try:
        return QAItem.model_validate(obj)
    except ValidationError as exc:
        raise CPQAError(f"{where}: not a QA item: {_first_error(exc)}") from None


def _human_row(row: dict[str, Any], where: str) -> tuple[QAItem, str]:
    """A human-made row: `audio, question, answer, type` (+ optional `id, clip_id, emotion`)."""
    row = {str(k).strip().lower(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k}
    audio = next((row[c] for c in AUDIO_COLUMNS if row.get(c)), None)
    missing = [c for c, v in (("audio", audio), ("question", row.get("question")), ("answer", row.get("answer")),
                              ("type", row.get("type"))) if not v]
    if missing:
        raise CPQAError(f"{where}: a human QA row needs {', '.join(missing)} "
                        f"(columns: audio, question, answer, type; optional id, clip_id, emotion)")
    qa_type = str(row["type"]).upper()
    if qa_type not in QA_TYPES:
        raise CPQAError(f"{where}: type '{row['type']}' is not one of {', '.join(sorted(QA_TYPES))}")
    digest = hashlib.sha256(f"{audio}\n{row['question']}".encode()).hexdigest()[:12]
    metadata = {"audio": audio, **({"emotion": row["emotion"]} if row.get("emotion") else {})}
    qa = QAItem(id=str(row.get("id") or f"human-{digest}"), clip_id=str(row.get("clip_id") or Path(audio).stem),
                type=qa_type, turns=[Turn(question=str(row["question"]), answer=str(row["answer"]))],
                generator={"model": "human"}, metadata=metadata)
    return qa, audio


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc']) or 'record'}: {err['msg']}"
