"""Finding the recordings of an input: a folder, a manifest, a lhotse manifest, Parquet/Arrow data.

`discover_sources` picks the reader from the input itself and guarantees unique ids: a later
input with an id already seen is yielded as a `duplicate_id` error item under a new id.
"""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ...errors import CPQAError
from ...reasons import BAD_MANIFEST_ROW, DUPLICATE_ID
from .arrow import discover_hf_dataset, discover_parquet, is_hf_dataset
from .folder import discover_folder
from .item import SourceItem
from .lhotse_manifest import discover_lhotse, lhotse_kind
from .table import discover_table

__all__ = ["BAD_MANIFEST_ROW", "DUPLICATE_ID", "SourceItem", "discover_sources", "unique_ids"]


def discover_sources(input_path: str | Path, extensions: Iterable[str], exclude: Path | None = None) -> Iterator[SourceItem]:
    """The items of INPUT, in a deterministic order. Raises CPQAError for an input of unknown kind."""
    return unique_ids(_reader(Path(os.path.abspath(input_path)), list(extensions), exclude))


def _reader(path: Path, extensions: list[str], exclude: Path | None) -> Iterator[SourceItem]:
    if path.is_dir():
        return discover_hf_dataset(path) if is_hf_dataset(path) else discover_folder(path, extensions, exclude)
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".parquet"):
        return discover_parquet(path)
    if name.endswith((".csv", ".tsv")):
        return discover_table(path)
    if name.endswith((".jsonl", ".json")):
        kind = lhotse_kind(_first_object(path))
        return discover_lhotse(path, kind) if kind else discover_table(path)
    if path.suffix.lower().lstrip(".") in {ext.lower().lstrip(".") for ext in extensions}:
        return iter([SourceItem(id=path.stem, audio=str(path))])
    raise CPQAError(
        f"cannot tell how to read {path}: give a folder of audio, a CSV/TSV/JSONL manifest, a lhotse "
        "recordings or cuts manifest, a Parquet file, a Hugging Face save_to_disk folder, or one audio file"
    )


def _first_object(path: Path) -> dict[str, Any]:
    """The first JSON object of a JSONL(.gz) file, or {} when it does not start with one."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig") as f:
        for line in f:
            if line.strip():
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    return {}
                return obj if isinstance(obj, dict) else {}
    return {}


def unique_ids(items: Iterable[SourceItem]) -> Iterator[SourceItem]:
    """Pass items through; a later one with an id already seen gets the id `ID#dupN` and becomes a
    `duplicate_id` item (an item already in error keeps its own reason)."""
    first_audio: dict[str, str] = {}
    dups: Counter[str] = Counter()
    for item in items:
        original = item.id
        if original in first_audio:
            while item.id in first_audio:
                dups[original] += 1
                item = item.model_copy(update={"id": f"{original}#dup{dups[original]}"})
            if item.error is None:
                earlier = first_audio[original] or "an earlier input"
                item = item.model_copy(update={"error_reason": DUPLICATE_ID,
                                               "error": f"id '{original}' is already taken by {earlier}"})
        first_audio[item.id] = item.audio
        yield item
