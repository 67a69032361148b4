"""The `hf` format: a Hugging Face dataset, written twice from one pass over the audio.

    OUT/data/{split}-00000-of-0000N.parquet   Parquet shards (≤ 500 MB each), the Hub's layout
    OUT/dataset/                              `DatasetDict.save_to_disk`: load with `load_from_disk`

Columns: id, clip_id, recording_id, speakers, type, question and answer (the first turn as the model
is prompted), turns (every exported turn), system, labels {emotion, emotions, genders,
num_speakers}, duration_s and audio (`Audio(sampling_rate=16000)`: the clip file's bytes, its name
as path).

The rows are written with pyarrow in the `Audio` feature's storage form ({bytes, path}), so no audio
encoder is needed here: `datasets>=4` encodes and decodes audio with torchcodec only, which does not
work beside CPU torch. Readers on such a `datasets` decode with
`ds.cast_column("audio", Audio(decode=False))` and soundfile; `datasets<4` decodes as usual (with
soundfile). The Parquet shards describe their features in the form both read (checked with 3.6 and
5.2); the `save_to_disk` folder is in the form of the `datasets` that wrote it, which older majors
may not read.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..audio.io import SAMPLE_RATE
from ..errors import require
from ..io_atomic import replace_synced
from .formats import Format, Prepared

BATCH_ROWS = 32
"""Rows per Parquet row group and per write (audio rows are large)."""
SHARD_BYTES = 500 << 20


def features():
    datasets = require("datasets", extra="export")
    Value = datasets.Value
    strings = [Value("string")]
    return datasets.Features({
        "id": Value("string"), "clip_id": Value("string"), "recording_id": Value("string"), "speakers": strings,
        "type": Value("string"), "question": Value("string"), "answer": Value("string"),
        "turns": [{"question": Value("string"), "answer": Value("string")}], "system": Value("string"),
        "labels": {"emotion": Value("string"), "emotions": strings, "genders": strings,
                   "num_speakers": Value("int32")},
        "duration_s": Value("float32"),
        "audio": datasets.Audio(sampling_rate=SAMPLE_RATE),
    })


def parquet_schema(features):
    """The Arrow schema with the features in the form every `datasets` reads: lists as `[feature]`
    (what `datasets<4` writes and `datasets>=4` still reads) instead of `>=4`'s `List` type."""

    def legacy(obj):
        if isinstance(obj, dict):
            if obj.get("_type") == "List" and obj.get("length", -1) == -1:
                return [legacy(obj["feature"])]
            return {k: legacy(v) for k, v in obj.items()}
        return obj

    info = {"info": {"features": legacy(features.to_dict())}}
    return features.arrow_schema.with_metadata({b"huggingface": json.dumps(info).encode()})


def row(p: Prepared) -> dict[str, Any]:
    e = p.example
    turns = p.turns()
    return {"id": e.qa.id, "clip_id": e.qa.clip_id, "recording_id": e.recording_id, "speakers": list(e.speakers),
            "type": e.qa.type, "question": turns[0].question, "answer": turns[0].answer,
            "turns": [t.model_dump() for t in turns], "system": p.system,
            "labels": {k: e.labels.get(k) for k in ("emotion", "emotions", "genders", "num_speakers")},
            "duration_s": e.duration_s, "audio": {"bytes": e.audio.read_bytes(), "path": e.audio.name}}


class _ShardedParquet:
    """Parquet shards of one split, a new shard past SHARD_BYTES; named `-of-N` when closed."""

    def __init__(self, folder: Path, split: str, schema):
        self.pq = require("pyarrow.parquet", extra="export", package="pyarrow")
        self.folder, self.split, self.schema = folder, split, schema
        self.paths: list[Path] = []
        self.writer = None

    def write(self, table) -> None:
        table = table.replace_schema_metadata(self.schema.metadata)
        if self.writer is None or self.paths[-1].stat().st_size > SHARD_BYTES:
            self._close_writer()
            self.paths.append(self.folder / f".{self.split}-{len(self.paths):05d}.parquet.tmp")
            self.writer = self.pq.ParquetWriter(self.paths[-1], self.schema)
        self.writer.write_table(table, row_group_size=BATCH_ROWS)

    def _close_writer(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def close(self) -> list[Path]:
        self._close_writer()
        final = []
        for i, tmp in enumerate(self.paths):
            path = self.folder / f"{self.split}-{i:05d}-of-{len(self.paths):05d}.parquet"
            replace_synced(tmp, path)
            final.append(path)
        return final


@contextmanager
def _quiet(datasets):
    """No progress bars from `datasets` (the library never prints); restores the caller's setting."""
    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


class HFDataset(Format):
    name = "hf"
    description = "Hugging Face dataset: save_to_disk folder and Parquet shards, audio bytes embedded"
    extra = "export"
    embeds_audio = True
    relative_paths = "The audio bytes are embedded: there are no paths to resolve."

    def __init__(self):
        require("datasets", extra="export")  # before anything is read or written
        require("pyarrow", extra="export")

    def write(self, out: Path, splits: dict[str, list[Prepared]], dataset_name: str) -> list[Path]:
        datasets = require("datasets", extra="export")
        pa = require("pyarrow", extra="export")
        hf_features = features()
        schema = hf_features.arrow_schema
        data = out / "data"
        data.mkdir(parents=True, exist_ok=True)
        files: list[Path] = []
        with tempfile.TemporaryDirectory(prefix=".hf-", dir=out) as tmp:
            arrow: dict[str, Any] = {}
            for split, items in splits.items():
                parquet = _ShardedParquet(data, split, parquet_schema(hf_features))
                arrow_path = Path(tmp) / f"{split}.arrow"
                with pa.OSFile(str(arrow_path), "wb") as sink, pa.ipc.new_stream(sink, schema) as stream:
                    for i in range(0, len(items), BATCH_ROWS):
                        table = pa.Table.from_pylist([row(p) for p in items[i:i + BATCH_ROWS]], schema=schema)
                        parquet.write(table)
                        stream.write_table(table)
                files += parquet.close()
                arrow[split] = datasets.Dataset.from_file(str(arrow_path))
            target = out / "dataset"
            if target.exists():
                shutil.rmtree(target)
            with _quiet(datasets):
                datasets.DatasetDict(arrow).save_to_disk(str(target))
            del arrow  # release the memory maps before the temporary folder goes
        return [*files, target]
