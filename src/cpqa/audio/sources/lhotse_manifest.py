"""lhotse manifests: a RecordingSet (with its SupervisionSet beside it) or a CutSet, JSONL(.gz).

Supervisions become given segments in recording time. Consecutive cuts of one recording are one
recording; their supervisions are merged (each once). Relative audio paths are read from the
manifest's folder when the file is there, else as lhotse does (from the working directory).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...errors import CPQAError, require
from .item import SourceItem, bad_row, segment


def lhotse_kind(first: dict[str, Any]) -> str | None:
    """'recordings', 'cuts' or 'supervisions' from the first object of a JSONL manifest, else None."""
    if "sources" in first and "sampling_rate" in first:
        return "recordings"
    if str(first.get("type", "")).endswith("Cut"):
        return "cuts"
    if "recording_id" in first and "duration" in first and "start" in first:
        return "supervisions"
    return None


def discover_lhotse(manifest: Path, kind: str) -> Iterator[SourceItem]:
    lhotse = require("lhotse", extra="lhotse")
    if kind == "supervisions":
        raise CPQAError(f"{manifest} holds lhotse supervisions: give the recordings manifest instead "
                        "(the supervisions are found beside it by name)")
    manifest_set = lhotse.load_manifest_lazy(manifest)
    if kind == "recordings":
        supervisions = _supervisions_beside(manifest, lhotse)
        for recording in manifest_set:
            yield _item(recording, supervisions.get(recording.id, []), manifest)
    else:
        yield from _from_cuts(manifest_set, manifest)


def _supervisions_beside(manifest: Path, lhotse) -> dict[str, list]:
    """Supervisions by recording id, from `*supervisions*` named like the recordings manifest."""
    path = manifest.with_name(manifest.name.replace("recordings", "supervisions"))
    if path == manifest or not path.exists():
        return {}
    by_recording: dict[str, list] = {}
    for sup in lhotse.load_manifest_lazy(path):
        by_recording.setdefault(sup.recording_id, []).append(sup)
    return by_recording


def _from_cuts(cuts, manifest: Path) -> Iterator[SourceItem]:
    recording, supervisions = None, {}
    for cut in cuts:
        if getattr(cut, "recording", None) is None:
            yield bad_row(cut.id, "", f"{manifest.name}: cut {cut.id} ({type(cut).__name__}) has no single recording")
            continue
        if recording is not None and cut.recording.id != recording.id:
            yield _item(recording, list(supervisions.values()), manifest)
            supervisions = {}
        recording = cut.recording
        for sup in cut.supervisions:  # times relative to the cut
            supervisions.setdefault(sup.id, sup.with_offset(cut.start))
    if recording is not None:
        yield _item(recording, list(supervisions.values()), manifest)


def _item(recording, supervisions: list, manifest: Path) -> SourceItem:
    source = recording.sources[0]
    if len(recording.sources) != 1 or source.type != "file":
        kinds = ", ".join(s.type for s in recording.sources)
        return bad_row(recording.id, "", f"{manifest.name}: recording {recording.id} has sources of type "
                                         f"{kinds}; only one 'file' source is supported")
    if recording.transforms:
        return bad_row(recording.id, source.source, f"{manifest.name}: recording {recording.id} has transforms "
                                                    "(speed, volume...), which ingest cannot apply")
    segments = [_given(sup) for sup in sorted(supervisions, key=lambda s: (s.start, s.id))]
    return SourceItem(id=recording.id, audio=_resolve(source.source, manifest), given_segments=segments)


def _given(sup) -> dict[str, Any]:
    custom = sup.custom or {}
    labels = {"speaker": sup.speaker, "gender": sup.gender, "language": sup.language, "emotion": custom.get("emotion")}
    seg = segment(sup.start, sup.end, sup.text, {k: str(v) for k, v in labels.items() if v is not None}, sup.id)
    extra = {k: v for k, v in custom.items() if k != "emotion"}
    if extra:
        seg["metadata"] = json.loads(json.dumps(extra, default=str))
    return seg


def _resolve(source: str, manifest: Path) -> str:
    path = Path(source)
    beside = manifest.parent / path
    return str(beside if not path.is_absolute() and beside.exists() else path.absolute())
