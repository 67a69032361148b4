"""Labelled examples for probe heads (`cpqa probe`): the rows of a CSV/TSV/JSONL manifest (optionally
gzipped), read with ingest's table reader, and the label maps that rename or drop their labels."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..audio.sources.table import read_table
from ..errors import CPQAError
from .protocols import EMOTION2VEC_MAP

logger = logging.getLogger(__name__)

LABEL_MAPS: dict[str, dict[str, str]] = {"emotion2vec": EMOTION2VEC_MAP}


@dataclass
class Example:
    """One labelled span: the whole file when start/end are None."""

    audio: str
    label: str
    speaker: str
    start: float | None = None
    end: float | None = None
    source: str = ""
    """The manifest it came from (its folder and name)."""


def parse_label_map(spec: str | None) -> dict[str, str] | None:
    """A named map ('emotion2vec') or 'a=b,c=d' pairs; labels absent from a map are dropped."""
    if not spec:
        return None
    if spec in LABEL_MAPS:
        return LABEL_MAPS[spec]
    pairs = [p.split("=", 1) for p in spec.split(",") if p.strip()]
    if not pairs or any(len(p) != 2 for p in pairs):
        raise CPQAError(f"--label-map '{spec}': give a known map ({', '.join(LABEL_MAPS)}) or pairs like calm=neutral,anger=angry")
    return {a.strip(): b.strip() for a, b in pairs}


def _float_or_none(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def read_manifest(path: str | Path, label_column: str, speaker_column: str = "speaker", file_column: str = "file",
                  label_map: dict[str, str] | None = None) -> list[Example]:
    """Examples of a manifest. Paths are relative to the manifest's folder; optional `start_s`/
    `end_s` (or `start`/`end`) columns select a span of the file."""
    path = Path(path)
    if not path.exists():
        raise CPQAError(f"manifest {path} does not exist")
    rows = list(read_table(path))
    columns = list(rows[0]) if rows else []
    for needed in (file_column, label_column, speaker_column):
        if needed not in columns:
            raise CPQAError(f"manifest {path} has no column '{needed}' (columns: {', '.join(columns)})")
    examples, dropped = [], Counter()
    for row in rows:
        label = str(row.get(label_column) or "").strip()
        if label_map is not None:
            label = label_map.get(label, "")
        if not label:
            dropped[row.get(label_column)] += 1
            continue
        examples.append(Example(
            audio=str((path.parent / row[file_column]).resolve()), label=label,
            speaker=row.get(speaker_column) or "unknown",
            start=_float_or_none(row.get("start_s", row.get("start"))),
            end=_float_or_none(row.get("end_s", row.get("end"))),
            source=f"{path.resolve().parent.name}/{path.name}",
        ))
    if dropped:
        logger.info("%s: dropped rows with unmapped labels %s", path, dict(dropped))
    if not examples:
        raise CPQAError(f"manifest {path} has no usable rows for label column '{label_column}'")
    return examples
