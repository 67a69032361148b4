"""Files that exist only whole: written under a temporary name in the same folder, flushed and
fsynced, renamed over the target, and the folder fsynced so the rename survives a crash.

    write_atomic(run / "stats.json", text)
    with atomic_path(out / "clip.flac") as tmp:      # for writers that take a path
        sf.write(str(tmp), samples, 16000, format="FLAC", subtype="PCM_16")

The temporary name keeps the target's suffix (libraries infer the format from it) and is the same
on every try, so a resumed run overwrites what a killed one left; `unique=True` adds the process id
for files that several processes may write at once (shared model and feature caches).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def temp_name(path: Path, unique: bool = False) -> Path:
    """The hidden temporary sibling of `path` that `atomic_path` writes."""
    pid = f".{os.getpid()}" if unique else ""
    return path.with_name(f".{path.name}{pid}.tmp{path.suffix}")


def replace_synced(tmp: str | Path, path: str | Path) -> None:
    """fsync the finished file `tmp`, rename it to `path`, fsync the folder."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(Path(path).parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path, unique: bool = False) -> Iterator[Path]:
    """A temporary path to write `path`'s content to; it replaces `path` when the block ends
    without an error, and is removed when it raises. The folder is created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path, unique)
    try:
        yield tmp
        replace_synced(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, data: bytes | str, unique: bool = False) -> Path:
    """Write `data` (text as UTF-8) to `path` atomically and durably."""
    with atomic_path(path, unique) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """`obj` as indented, key-sorted UTF-8 JSON, written atomically and durably."""
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False))
