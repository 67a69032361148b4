"""The human labels of a calibration dev set: read from the recordings' metadata or the manifest,
and corpus label names mapped onto the emotion vocabulary (`DEFAULT_LABEL_MAP`, extended or
overridden by a mapping file); labels with no mapping (e.g. boredom) are reported, never guessed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..audio.sources.table import read_table
from ..emotions import EMOTIONS
from ..errors import CPQAError
from ..labels.protocols import EMOTION2VEC_MAP
from ..records import Recording

DEFAULT_LABEL_MAP: dict[str, str] = {
    **{e: e for e in EMOTIONS},
    **EMOTION2VEC_MAP,
    "hap": "happy", "ang": "angry", "neu": "neutral", "fea": "fearful", "dis": "disgusted", "sur": "surprised",
}
"""Common corpus label names → the emotion vocabulary. Deliberately absent: labels with no
counterpart (boredom, contempt, frustration, excitement…) — map them in a mapping file if you
decide they should count as one of the vocabulary's emotions."""


def load_label_mapping(path: str | Path | None) -> dict[str, str | None]:
    """DEFAULT_LABEL_MAP updated by a YAML/JSON file `{corpus_label: vocabulary_label | null}`;
    null excludes a label on purpose (it is then reported as excluded, not unmappable)."""
    mapping: dict[str, str | None] = dict(DEFAULT_LABEL_MAP)
    if path is None:
        return mapping
    path = Path(path)
    try:
        extra = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CPQAError(f"cannot read the label mapping {path}: {exc}") from exc
    if not isinstance(extra, dict):
        raise CPQAError(f"label mapping {path}: write it as `corpus_label: vocabulary_label` lines")
    for key, value in extra.items():
        if value is not None and value not in EMOTIONS:
            raise CPQAError(f"label mapping {path}: '{key}: {value}': '{value}' is not in the emotion "
                            f"vocabulary ({', '.join(EMOTIONS)})")
        mapping[str(key).strip().lower()] = value
    return mapping


@dataclass
class MappedLabels:
    labels: dict[str, str]
    """Item id → vocabulary label."""
    unmappable: dict[str, int] = field(default_factory=dict)
    """Corpus label → number of items, for labels with no mapping."""
    excluded: dict[str, int] = field(default_factory=dict)
    """Corpus label → number of items, for labels the mapping file maps to null."""


def map_labels(raw: Mapping[str, str], mapping: Mapping[str, str | None]) -> MappedLabels:
    out = MappedLabels({})
    unmappable: Counter = Counter()
    excluded: Counter = Counter()
    for item_id, label in raw.items():
        key = str(label).strip().lower()
        if key not in mapping:
            unmappable[label] += 1
        elif mapping[key] is None:
            excluded[label] += 1
        else:
            out.labels[item_id] = mapping[key]
    out.unmappable, out.excluded = dict(sorted(unmappable.items())), dict(sorted(excluded.items()))
    return out


def read_manifest_rows(manifest: str | Path) -> list[dict[str, Any]]:
    manifest = Path(manifest)
    if not manifest.exists():
        raise CPQAError(f"manifest {manifest} does not exist")
    return list(read_table(manifest))


def human_labels(recordings: Iterable[Recording], manifest: str | Path, label_column: str) -> dict[str, str]:
    """Recording id → the manifest's label: from the recording's metadata when ingest kept the
    column, else from the manifest row whose audio path (column `audio` or `file`, relative to the
    manifest) is the recording's source, else the row whose `id` is the recording id."""
    rows = read_manifest_rows(manifest)
    if rows and label_column not in rows[0]:
        raise CPQAError(f"manifest {manifest} has no column '{label_column}'. Columns: {', '.join(rows[0])}")
    base = Path(manifest).parent
    by_path = {str((base / str(row.get("audio") or row.get("file"))).resolve()): row
               for row in rows if row.get("audio") or row.get("file")}
    by_id = {str(row["id"]): row for row in rows if row.get("id")}
    out = {}
    for rec in recordings:
        if rec.metadata.get(label_column) not in (None, ""):
            out[rec.id] = str(rec.metadata[label_column])
            continue
        row = by_path.get(str(Path(rec.source or rec.audio).resolve())) or by_id.get(rec.id)
        if row is not None and row.get(label_column) not in (None, ""):
            out[rec.id] = str(row[label_column])
    return out
