"""Export the reviewed set and the human set as JSONL `QAItem`s, the format `cpqa evaluate` reads.

Every exported item carries `metadata.audio`, the absolute path of its clip's audio, so a reader
needs no run directory to find it. Reviewed items keep their generator; `metadata.review` says how
they were judged and, for edited items, what the generator first wrote. Human items have
`generator = {"model": "human", "reviewer": NAME}`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from ..errors import CPQAError
from ..manifest import write_jsonl
from ..records import QAItem, Turn
from .consensus import item_states
from .data import RunData, load_run
from .db import ReviewDB

What = Literal["reviewed", "human"]


def reviewed_items(data: RunData, db: ReviewDB) -> Iterator[QAItem]:
    """The accepted items (edits applied), in run order."""
    for state in item_states(data, db).values():
        if not state.accepted:
            continue
        counts = state.counts
        review = {"status": "edited" if state.edit else "accepted", "accepts": counts["accept"],
                  "rejects": counts["reject"], "reviewers": sorted(state.verdicts)}
        if state.edit:
            review["edited_by"] = state.edit["reviewer"]
            review["original"] = {"type": state.generated.type,
                                  "turns": [t.model_dump() for t in state.generated.turns]}
        metadata = {**state.current.metadata, "audio": data.absolute_audio(state.current.clip_id), "review": review}
        yield state.current.model_copy(update={"metadata": metadata})


def human_items(data: RunData, db: ReviewDB) -> Iterator[QAItem]:
    """The QA written by reviewers, oldest first."""
    for h in db.human():
        if h["clip_id"] not in data.clips:
            continue  # written on a clip a rebuilt run no longer has
        yield QAItem(id=h["id"], clip_id=h["clip_id"], type=h["type"], turns=[Turn(**t) for t in h["turns"]],
                     generator={"model": "human", "reviewer": h["reviewer"]},
                     metadata={"audio": data.absolute_audio(h["clip_id"]), "created": h["created"]})


def export(run_dir: str | Path, what: What, output: str | Path) -> int:
    """Write one set to `output` (JSONL, `.gz` allowed) atomically; returns the number of items."""
    sources = {"reviewed": reviewed_items, "human": human_items}
    if what not in sources:
        raise CPQAError(f"unknown export '{what}': choose one of {', '.join(sources)}")
    data = load_run(run_dir)
    return write_jsonl(output, sources[what](data, ReviewDB(run_dir)))
