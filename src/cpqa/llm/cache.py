"""A SQLite cache of finished LLM requests, so a rerun of finished work makes no backend calls.

Keyed by a sha256 of (backend, model, backend options that change output, messages, sampling
parameters, schema). Only successful results are stored: a failure is retried on the next run.
WAL mode and one connection per thread make it safe to share between threads and processes.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import CPQAError
from .protocol import LLMRequest, LLMResult

_STORED = ("text", "parsed", "finish_reason", "model", "prompt_tokens", "completion_tokens", "repaired")


def request_key(identity: dict[str, Any], request: LLMRequest) -> str:
    """The cache key of `request` sent to the backend described by `identity`."""
    payload = {
        "backend": identity,
        "messages": request.messages,
        "params": request.params(),
        "schema": request.json_schema,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class RequestCache:
    """`get_many` / `put_many` over a SQLite file; create it once and share it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connect()  # fail fast on an unusable path

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT,"
                    " result TEXT NOT NULL, created REAL NOT NULL)"
                )
            except sqlite3.Error as exc:
                raise CPQAError(f"cannot open the LLM request cache {self.path}: {exc}") from exc
            self._local.conn = conn
        return conn

    def get_many(self, keys: list[str]) -> dict[str, LLMResult]:
        conn = self._connect()
        found: dict[str, LLMResult] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), 500):  # SQLite caps the number of bound parameters
            chunk = unique[i:i + 500]
            rows = conn.execute(
                f"SELECT key, result FROM responses WHERE key IN ({','.join('?' * len(chunk))})", chunk
            )
            for key, blob in rows:
                found[key] = LLMResult(**json.loads(blob), cached=True)
        return found

    def put_many(self, items: list[tuple[str, LLMResult]]) -> None:
        rows = [
            (key, result.model, json.dumps({name: getattr(result, name) for name in _STORED}), time.time())
            for key, result in items
            if result.ok
        ]
        if not rows:
            return
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")  # one write transaction per batch, not one per row
        try:
            conn.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def __len__(self) -> int:
        return self._connect().execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
