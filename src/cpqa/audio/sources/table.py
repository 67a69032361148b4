"""CSV/TSV and JSONL manifests: one row per audio file, or one row per segment of a file.

Columns: `audio` (or `file`, `path`: relative to the manifest's folder, or absolute); optional
`id`, `text` (or `transcript`), `speaker`, `gender`, `emotion`, `language`, `start` and `end`
(or `start_s`, `end_s`) in seconds, `rttm` (or `rttm_file`: the recording's speaker turns, relative
to the manifest's folder). Every other column is kept as metadata.

- A row without times is one recording: id = its `id`, else its audio path without extension;
  its labels go to the recording's metadata and its text becomes one given segment covering
  the whole file.
- Consecutive rows with the same audio and times are ONE recording (id from the audio path),
  each row a given segment {start, end, text?, speaker?, gender?, emotion?, language?, row_id?}
  (row_id = the row's `id`). Other columns equal on every row of the group go to the
  recording's metadata; those that vary stay on each segment under `metadata`. Rows of one
  audio that are not consecutive make a second recording with the same id: a `duplicate-id` skip.
- A malformed row (no audio, a bad or missing time, end <= start, not a JSON object) is yielded
  with `error` set and does not break the group around it.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .item import (
    RTTM_KEYS,
    SourceItem,
    bad_row,
    id_from_path,
    parse_time,
    segment,
    take,
    take_labels,
    take_text,
    whole_file_item,
)

AUDIO_KEYS = ("audio", "file", "path")
START_KEYS = ("start", "start_s")
END_KEYS = ("end", "end_s")


@dataclass
class _Row:
    audio_value: str
    audio: str
    row_id: str | None
    times: tuple[float, float] | None
    rttm: str | None
    fields: dict[str, Any]
    """The cells left once audio, id, times and RTTM path are taken."""


def discover_table(manifest: Path) -> Iterator[SourceItem]:
    group: list[_Row] = []
    for row in _rows(manifest):
        if isinstance(row, SourceItem):
            yield row
        elif row.times is None:
            yield from _flush(group)
            yield whole_file_item(row.row_id or id_from_path(row.audio_value), row.audio, row.fields, rttm=row.rttm)
        elif group and group[0].audio == row.audio:
            group.append(row)
        else:
            yield from _flush(group)
            group.append(row)
    yield from _flush(group)


def _flush(group: list[_Row]) -> Iterator[SourceItem]:
    """Turn the pending rows of one audio into one recording, and empty the group."""
    if not group:
        return
    shared = _shared_fields([row.fields for row in group])
    segments = []
    for row in group:
        fields = dict(row.fields)
        text, labels = take_text(fields), take_labels(fields)
        seg = segment(*row.times, text, labels, row.row_id)
        varying = {k: v for k, v in fields.items() if k not in shared}
        if varying:
            seg["metadata"] = varying
        segments.append(seg)
    yield SourceItem(id=id_from_path(group[0].audio_value), audio=group[0].audio, metadata=shared,
                     given_segments=segments, rttm=group[0].rttm)
    group.clear()


def _shared_fields(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Metadata columns (not text or labels) whose value is the same on every row."""
    first = dict(rows[0])
    take_text(first)
    take_labels(first)
    return {k: v for k, v in first.items() if all(k in r and r[k] == v for r in rows[1:])}


def _rows(manifest: Path) -> Iterator[_Row | SourceItem]:
    for line, raw in _raw_rows(manifest):
        yield raw if isinstance(raw, SourceItem) else _parse(raw, line, manifest)


def _raw_rows(manifest: Path) -> Iterator[tuple[int, dict[str, Any] | SourceItem]]:
    return _jsonl_rows(manifest) if _is_jsonl(manifest) else _csv_rows(manifest)


def read_table(manifest: Path) -> Iterator[dict[str, Any]]:
    """The well-formed rows of a CSV/TSV/JSONL manifest (optionally .gz) as dicts, read as ingest
    reads them (malformed rows left out): for tools that look up a manifest's columns."""
    for _, raw in _raw_rows(manifest):
        if not isinstance(raw, SourceItem):
            yield raw


def _is_jsonl(path: Path) -> bool:
    return path.name.lower().removesuffix(".gz").endswith((".jsonl", ".json"))


def _open_text(path: Path):
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _csv_rows(manifest: Path) -> Iterator[tuple[int, dict[str, Any] | SourceItem]]:
    delimiter = "\t" if manifest.name.lower().removesuffix(".gz").endswith(".tsv") else ","
    with _open_text(manifest) as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        for row in reader:
            line = reader.line_num
            if None in row:
                yield line, bad_row(f"{manifest.name}#line{line}", "",
                                    f"{manifest.name} line {line}: more cells than the header has columns")
                continue
            yield line, {k: v for k, v in row.items() if v is not None}


def _jsonl_rows(manifest: Path) -> Iterator[tuple[int, dict[str, Any] | SourceItem]]:
    with _open_text(manifest) as f:
        for line, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                obj = exc
            if not isinstance(obj, dict):
                yield line, bad_row(f"{manifest.name}#line{line}", "",
                                    f"{manifest.name} line {line}: not a JSON object")
                continue
            yield line, obj


def _parse(raw: dict[str, Any], line: int, manifest: Path) -> _Row | SourceItem:
    fields = dict(raw)
    row_id = take(fields, ("id",))
    row_id = None if row_id is None else str(row_id)
    audio = take(fields, AUDIO_KEYS)
    where = f"{manifest.name} line {line}"
    error_id = row_id or f"{manifest.name}#line{line}"
    if not isinstance(audio, str):
        return bad_row(error_id, "", f"{where}: no audio path (a column audio, file or path)")
    path = str(manifest.parent / audio)
    try:
        times = _times(take(fields, START_KEYS), take(fields, END_KEYS))
    except ValueError as exc:
        return bad_row(error_id, path, f"{where}: {exc}")
    rttm = take(fields, RTTM_KEYS)
    return _Row(audio, path, row_id, times, None if rttm is None else str(manifest.parent / str(rttm)), fields)


def _times(start: Any, end: Any) -> tuple[float, float] | None:
    if start is None and end is None:
        return None
    if start is None or end is None:
        raise ValueError("start and end must both be given, or neither")
    start_s, end_s = parse_time(start, "start"), parse_time(end, "end")
    if end_s <= start_s:
        raise ValueError(f"end={end_s} is not after start={start_s}")
    return start_s, end_s
