"""Audio embedded in a Parquet file or a Hugging Face `save_to_disk` folder (Dataset or DatasetDict).

The `audio` column holds {bytes, path} structs (the `datasets` Audio feature, undecoded). The
bytes ride on the item and are written to the stage folder only when the item is processed, so
a resumed run never extracts audio it already has. A struct without bytes names a file, read
relative to the data file's folder. Row ids: the `id` column, else the row number (prefixed by
the split in a DatasetDict: `train/00000012`). The other columns are read as in a CSV manifest.
Rows are read one small batch at a time; a whole shard is never in memory.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...errors import require
from .item import SourceItem, bad_row, take, whole_file_item
from .table import AUDIO_KEYS

PARQUET_BATCH_ROWS = 16


def is_hf_dataset(folder: Path) -> bool:
    return (folder / "state.json").is_file() or (folder / "dataset_dict.json").is_file()


def discover_parquet(path: Path) -> Iterator[SourceItem]:
    pq = require("pyarrow.parquet", extra="parquet", package="pyarrow")
    batches = pq.ParquetFile(path).iter_batches(batch_size=PARQUET_BATCH_ROWS)
    yield from _items(batches, path, "", itertools.count())


def discover_hf_dataset(folder: Path) -> Iterator[SourceItem]:
    require("pyarrow", extra="parquet")
    if (folder / "dataset_dict.json").is_file():
        splits = json.loads((folder / "dataset_dict.json").read_text())["splits"]
        for split in splits:
            yield from _hf_split(folder / split, f"{split}/")
    else:
        yield from _hf_split(folder, "")


def _hf_split(folder: Path, prefix: str) -> Iterator[SourceItem]:
    import pyarrow as pa

    state = json.loads((folder / "state.json").read_text())
    numbers = itertools.count()  # row numbers run on across the shards of a split
    for data_file in state["_data_files"]:
        path = folder / data_file["filename"]
        with pa.memory_map(str(path)) as source:
            yield from _items(pa.ipc.open_stream(source), path, prefix, numbers)


def _items(batches, data_file: Path, prefix: str, numbers: Iterator[int]) -> Iterator[SourceItem]:
    row_in_file = 0
    for batch in batches:
        for i in range(batch.num_rows):
            row = batch.slice(i, 1).to_pylist()[0]  # one row at a time: its bytes only
            yield _row_item(row, f"{prefix}{next(numbers):08d}", f"{data_file}#row={row_in_file}", data_file)
            row_in_file += 1


def _row_item(row: dict[str, Any], number_id: str, locator: str, data_file: Path) -> SourceItem:
    row_id = take(row, ("id",))
    item_id = number_id if row_id is None else str(row_id)
    audio = take(row, AUDIO_KEYS)
    name = audio.get("path") if isinstance(audio, dict) else audio if isinstance(audio, str) else None
    data = audio.get("bytes") if isinstance(audio, dict) else None
    metadata = _jsonable(row)
    if name:
        metadata["audio_path"] = name
    if data:
        return whole_file_item(item_id, locator, metadata, audio_bytes=data, audio_suffix=Path(name or "").suffix)
    if name:
        return whole_file_item(item_id, str(data_file.parent / name), metadata)
    return bad_row(item_id, locator, f"{locator}: no audio (an `audio` column of {{bytes, path}} or a path)")


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """Cells that fit in JSON metadata: binary cells are dropped, dates and decimals become text."""
    return {k: json.loads(json.dumps(v, default=str)) for k, v in row.items() if not isinstance(v, bytes)}
