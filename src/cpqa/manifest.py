"""Streaming JSONL(.gz) manifests.

Readers stream line by line. `RecordWriter` appends and skips ids already present, and a torn last
line left by a killed process is cut away when the file is reopened, so a resumed writer never
duplicates or corrupts records. Run directories use plain JSONL (appendable); `.gz` is for
finished files written atomically (`write_jsonl`).
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from .io_atomic import atomic_path

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


def _open_text(path: Path, mode: str):
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, mode.replace("t", "") + "b"), encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield each JSON object of a JSONL(.gz) file. A torn final line (no newline) is ignored."""
    path = Path(path)
    if not path.exists():
        return
    with _open_text(path, "rt") as f:
        for lineno, line in enumerate(f, 1):
            if not line.endswith("\n"):
                logger.warning("%s:%d: ignoring a torn last line", path, lineno)
                return
            if line.strip():
                yield json.loads(line)


def read_records(path: str | Path, model: type[M]) -> Iterator[M]:
    for obj in iter_jsonl(path):
        yield model.model_validate(obj)


def dumps(record: BaseModel | dict) -> str:
    obj = record.model_dump(mode="json") if isinstance(record, BaseModel) else record
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def write_jsonl(path: str | Path, records: Iterable[BaseModel | dict]) -> int:
    """Write a whole file atomically (temp file, fsync, rename). Returns the number of lines."""
    n = 0
    with atomic_path(path) as tmp, _open_text(tmp, "wt") as f:  # the temporary name keeps the .gz suffix
        for record in records:
            f.write(dumps(record) + "\n")
            n += 1
    return n


def _cut_torn_tail(path: Path) -> None:
    """Truncate a plain-text file after its last newline (a line torn by a kill)."""
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(max(0, size - 1))
        if f.read(1) == b"\n":
            return
        block = 1 << 16
        pos = size
        while pos > 0:
            start = max(0, pos - block)
            f.seek(start)
            chunk = f.read(pos - start)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                f.truncate(start + nl + 1)
                break
            pos = start
        else:
            f.truncate(0)
    logger.warning("%s: cut a torn last line left by an interrupted run", path)


class RecordWriter:
    """Append records to a plain JSONL file, skipping ids it already holds.

    `flush()` makes everything written so far durable (fsync); the executor calls it before it
    marks inputs as done, so a kill loses at most the records of the batch in flight.
    """

    def __init__(self, path: str | Path, id_field: str = "id"):
        self.path = Path(path)
        if self.path.suffix == ".gz":
            raise ValueError("RecordWriter appends; use a plain .jsonl path")
        self.id_field = id_field
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.ids: set[str] = set()
        if self.path.exists():
            _cut_torn_tail(self.path)
            self.ids = {obj[id_field] for obj in iter_jsonl(self.path)}
        self._file = open(self.path, "a", encoding="utf-8")
        self.written = 0

    def __contains__(self, record_id: str) -> bool:
        return record_id in self.ids

    def write(self, record: BaseModel | dict) -> bool:
        """Append one record; False (and nothing written) when its id is already present."""
        record_id = record[self.id_field] if isinstance(record, dict) else getattr(record, self.id_field)
        if record_id in self.ids:
            return False
        self._file.write(dumps(record) + "\n")
        self.ids.add(record_id)
        self.written += 1
        return True

    def flush(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self.flush()
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class IdLog:
    """An append-only, durable set of ids (e.g. the inputs a stage has finished)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.ids: set[str] = set()
        if self.path.exists():
            _cut_torn_tail(self.path)
            with open(self.path, encoding="utf-8") as f:
                self.ids = {line.rstrip("\n") for line in f if line.strip()}
        self._file = open(self.path, "a", encoding="utf-8")

    def __contains__(self, item: str) -> bool:
        return item in self.ids

    def __len__(self) -> int:
        return len(self.ids)

    def add_all(self, ids: Iterable[str]) -> None:
        new = [i for i in dict.fromkeys(ids) if i not in self.ids]
        if new:
            self._file.write("".join(f"{i}\n" for i in new))
            self._file.flush()
            os.fsync(self._file.fileno())
            self.ids.update(new)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
