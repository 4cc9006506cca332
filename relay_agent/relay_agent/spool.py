"""SQLite spool: a result is stored before it is posted and deleted only once the hub acknowledges it."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from .files import create_private, ensure_private_dir

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    command_id TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (command_id, attempt)
)
"""

SpoolKey = tuple[str, int]


class ResultSpool:
    FILE = "spool.sqlite3"

    def __init__(self, store_dir: Path | str) -> None:
        path = self.path = ensure_private_dir(Path(store_dir)) / self.FILE
        # SQLite gives its -wal/-shm files the database file's mode, so creating it 0600 covers all three.
        create_private(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL keeps every commit through a crash or kill of the agent; only a power loss
        # may drop the last few, which the hub then times out. FULL would fsync on the path of each result.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    @staticmethod
    def key_of(body: dict) -> SpoolKey:
        return str(body["commandId"]), int(body.get("attempt") or 0)

    def put(self, body: dict) -> SpoolKey:
        key = self.key_of(body)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO results (command_id, attempt, body, created_at) VALUES (?, ?, ?, ?)",
                (*key, json.dumps(body), int(time.time() * 1000)),
            )
        return key

    def command_ids(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT DISTINCT command_id FROM results")]

    def pending(self, limit: int = 100) -> list[tuple[SpoolKey, dict]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT command_id, attempt, body FROM results ORDER BY created_at, rowid LIMIT ?", (limit,)
            ).fetchall()
        return [((cid, attempt), json.loads(body)) for cid, attempt, body in rows]

    def ack(self, *keys: SpoolKey) -> None:
        """Forget results the hub has answered, in one transaction."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("DELETE FROM results WHERE command_id = ? AND attempt = ?", keys)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def replace(self, key: SpoolKey, body: dict) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE results SET body = ? WHERE command_id = ? AND attempt = ?", (json.dumps(body), *key)
            )

    def mark_tried(self, key: SpoolKey) -> None:
        with self._lock:
            self._db.execute("UPDATE results SET tries = tries + 1 WHERE command_id = ? AND attempt = ?", key)

    def probe(self) -> None:
        """Raise if a write cannot be committed now (a full disk): one row written and deleted."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute("INSERT OR REPLACE INTO results (command_id, attempt, body, created_at) "
                                 "VALUES ('', -1, '', 0)")
                self._db.execute("DELETE FROM results WHERE command_id = '' AND attempt = -1")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
