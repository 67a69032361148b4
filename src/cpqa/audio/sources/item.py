"""The input record of the ingest stage, and the manifest fields every source kind shares."""

from __future__ import annotations

import math
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ...reasons import BAD_MANIFEST_ROW

LABEL_KEYS = ("speaker", "gender", "emotion", "language")
RTTM_KEYS = ("rttm", "rttm_file")
TEXT_KEYS = ("text", "transcript")
"""`transcript` is read as `text` when there is no `text` (the shared emotion corpora use it)."""


class SourceItem(BaseModel):
    """One recording to ingest, as found in the input; or a malformed input (`error` set)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    audio: str = ""
    """The source's absolute path, or a locator such as `data.parquet#row=12` for embedded bytes."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    given_segments: list[dict[str, Any]] = Field(default_factory=list)
    """Segments the input already names: {start, end, text?, speaker?, gender?, emotion?,
    language?, row_id?}; `end` None means the end of the file (known once decoded)."""
    error: str | None = None
    """Why this input cannot be ingested (a malformed row, a repeated id): it becomes a skip."""
    error_reason: str = BAD_MANIFEST_ROW
    audio_bytes: bytes | None = Field(None, exclude=True, repr=False)
    """Audio embedded in the input (Parquet/Arrow); written to the stage folder before decoding."""
    audio_suffix: str = ""
    """File suffix of the embedded audio (e.g. `.mp3`), from its original name."""
    rttm: str | None = None
    """An RTTM file with the recording's speaker turns (a manifest's `rttm`/`rttm_file` column, or
    `<name>.rttm` beside a file of a folder input)."""


def bad_row(item_id: str, audio: str, detail: str) -> SourceItem:
    return SourceItem(id=item_id, audio=audio, error=detail)


def id_from_path(value: str) -> str:
    """A recording id from a path as written in a manifest: POSIX, no extension, no leading `./` or `/`."""
    path = PurePosixPath(value.replace("\\", "/"))
    return str(path.with_suffix("")).lstrip("/")


def take(row: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """Pop the first of `keys` with a value in `row` (empty cells of earlier keys are popped too;
    later keys stay as metadata); '' counts as absent."""
    for key in keys:
        if key in row:
            value = row.pop(key)
            if value is not None and value != "":
                return value
    return None


def take_labels(row: dict[str, Any]) -> dict[str, str]:
    labels = {key: take(row, (key,)) for key in LABEL_KEYS}
    return {key: str(value) for key, value in labels.items() if value is not None}


def take_text(row: dict[str, Any]) -> str | None:
    text = take(row, TEXT_KEYS)
    return None if text is None else str(text)


def segment(start: float, end: float | None, text: str | None, labels: dict[str, str],
            row_id: str | None = None) -> dict[str, Any]:
    """A given segment with only the fields that have a value."""
    out: dict[str, Any] = {"start": start, "end": end}
    if text is not None:
        out["text"] = text
    out.update(labels)
    if row_id is not None:
        out["row_id"] = row_id
    return out


def parse_time(value: Any, name: str) -> float:
    """A time in seconds from a manifest cell; ValueError names the column."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not a number") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{name}={value!r} is not a time in seconds")
    return seconds


def whole_file_item(item_id: str, audio: str, row: dict[str, Any], **extra: Any) -> SourceItem:
    """A recording from one row without times: labels describe the whole file, text becomes
    one given segment covering it."""
    text = take_text(row)
    labels = take_labels(row)
    segments = [segment(0.0, None, text, labels)] if text is not None else []
    return SourceItem(id=item_id, audio=audio, metadata={**row, **labels}, given_segments=segments, **extra)
