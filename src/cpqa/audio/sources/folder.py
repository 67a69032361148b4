"""Audio files under a folder, walked recursively in sorted order so ids and order never vary."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from .item import SourceItem


def discover_folder(root: Path, extensions: Iterable[str], exclude: Path | None = None) -> Iterator[SourceItem]:
    """Each audio file (by extension, any case; hidden files and folders left out) with id = its
    POSIX path relative to `root` without the extension. `exclude` (the run folder, when it lies
    inside the input) is not walked."""
    suffixes = {"." + ext.lower().lstrip(".") for ext in extensions}
    root = Path(os.path.abspath(root))
    excluded = os.path.abspath(exclude) if exclude is not None else None
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and os.path.join(folder, d) != excluded)
        for name in sorted(files):
            path = Path(folder, name)
            if name.startswith(".") or path.suffix.lower() not in suffixes:
                continue
            rel = path.relative_to(root)
            rttm = path.with_suffix(".rttm")
            yield SourceItem(id=rel.with_suffix("").as_posix(), audio=str(path),
                             rttm=str(rttm) if rttm.is_file() else None)
