"""Review decisions and human QA in SQLite (`RUN/review/review.sqlite`, WAL mode).

Decisions are append-only: every accept, reject and edit is a row with its reviewer and time, and
a reviewer's current verdict on an item is their latest row. Each call opens its own connection,
so the web server's worker threads share nothing; writes take the lock up front
(`BEGIN IMMEDIATE`) and wait for one another instead of failing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import CPQAError

DB_NAME = "review/review.sqlite"
BUSY_TIMEOUT_MS = 30_000

REJECT_REASONS = (
    "wrong answer",
    "not answerable from the audio",
    "assumes a transcript or labels",
    "wrong type",
    "duplicate",
    "unclear or ungrammatical",
    "other",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    qa_id TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('accept', 'reject', 'edit')),
    reason TEXT,
    type TEXT,
    turns TEXT,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_item ON decisions (qa_id, reviewer, seq);
CREATE TABLE IF NOT EXISTS human_qa (
    id TEXT PRIMARY KEY,
    clip_id TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    type TEXT NOT NULL,
    turns TEXT NOT NULL,
    created TEXT NOT NULL,
    deleted TEXT
);
CREATE INDEX IF NOT EXISTS human_clip ON human_qa (clip_id);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _row(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    if out.get("turns") is not None:
        out["turns"] = json.loads(out["turns"])
    return out


class ReviewDB:
    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / DB_NAME
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as con:
                con.execute("PRAGMA journal_mode=WAL")
                con.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise CPQAError(f"cannot open the review database {self.path}: {exc}") from exc

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        con.row_factory = sqlite3.Row
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def add_decision(self, qa_id: str, reviewer: str, action: str, reason: str | None = None,
                     type: str | None = None, turns: list[dict[str, str]] | None = None) -> dict[str, Any]:
        """Record one verdict. An edit carries the corrected type and turns and implies accept."""
        with self._write() as con:
            cur = con.execute(
                "INSERT INTO decisions (qa_id, reviewer, action, reason, type, turns, created) VALUES (?,?,?,?,?,?,?)",
                (qa_id, reviewer, action, reason, type, json.dumps(turns) if turns is not None else None, _now()))
            return _row(con.execute("SELECT * FROM decisions WHERE seq = ?", (cur.lastrowid,)).fetchone())

    def latest_verdicts(self) -> dict[str, dict[str, dict[str, Any]]]:
        """reviewer → qa_id → that reviewer's latest decision on the item."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        with self._connect() as con:
            rows = con.execute(
                "SELECT d.* FROM decisions d JOIN (SELECT MAX(seq) AS seq FROM decisions GROUP BY qa_id, reviewer) m"
                " ON d.seq = m.seq ORDER BY d.seq")
            for r in rows:
                out.setdefault(r["reviewer"], {})[r["qa_id"]] = _row(r)
        return out

    def latest_edits(self) -> dict[str, dict[str, Any]]:
        """qa_id → the latest edit of the item by anyone: the text every reviewer now sees."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT d.* FROM decisions d JOIN (SELECT MAX(seq) AS seq FROM decisions WHERE action = 'edit'"
                " GROUP BY qa_id) m ON d.seq = m.seq")
            return {r["qa_id"]: _row(r) for r in rows}

    def add_human(self, clip_id: str, reviewer: str, type: str, turns: list[dict[str, str]]) -> dict[str, Any]:
        """Store a QA written by a reviewer. Ids are `<clip>-human-NNN`, numbered per clip and never
        reused (deleted items keep their number)."""
        with self._write() as con:
            n = con.execute("SELECT COUNT(*) FROM human_qa WHERE clip_id = ?", (clip_id,)).fetchone()[0]
            qa_id = f"{clip_id}-human-{n + 1:03d}"
            con.execute("INSERT INTO human_qa (id, clip_id, reviewer, type, turns, created) VALUES (?,?,?,?,?,?)",
                        (qa_id, clip_id, reviewer, type, json.dumps(turns), _now()))
            return _row(con.execute("SELECT * FROM human_qa WHERE id = ?", (qa_id,)).fetchone())

    def delete_human(self, qa_id: str) -> bool:
        """Mark a human QA deleted; False when there is no such live item."""
        with self._write() as con:
            cur = con.execute("UPDATE human_qa SET deleted = ? WHERE id = ? AND deleted IS NULL", (_now(), qa_id))
            return cur.rowcount == 1

    def human(self, clip_id: str | None = None) -> list[dict[str, Any]]:
        """Live human QA (of one clip, or all), oldest first."""
        sql = "SELECT * FROM human_qa WHERE deleted IS NULL"
        args: tuple = ()
        if clip_id is not None:
            sql += " AND clip_id = ?"
            args = (clip_id,)
        with self._connect() as con:
            return [_row(r) for r in con.execute(sql + " ORDER BY rowid", args)]
