"""Where each follower of the notification log has got to, kept beside the event store.

A position advances only after its side effect succeeded (a Kafka ack, a
Commerce call), so a crash replays from the last position: at least once, made
effectively once by the consumers' idempotence.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


def side_database(store_url: str) -> str:
    """The SQLite file for read models, positions and the sync ledger: beside the store's file.

    Not inside it: SQLite has one writer at a time per file, and the event
    store's writer must never wait for a projection's transaction.
    """
    if store_url.startswith("sqlite:///"):
        path = Path(store_url.removeprefix("sqlite:///"))
        if str(path) == ":memory:":
            return ":memory:"
        return str(path.with_name(f"{path.stem}.projections{path.suffix or '.db'}"))
    if store_url.startswith(("postgresql://", "postgres://")):
        return str(Path("returnflow-projections.db").resolve())
    return ":memory:"


def connect(database: str) -> sqlite3.Connection:
    """Projections are rebuildable from the store, so they skip the per-commit fsync."""
    db = sqlite3.connect(database, check_same_thread=False, isolation_level=None, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


class PositionStore:
    """Named positions in table `rf_positions`; thread-safe, one short transaction per write."""

    def __init__(self, database: str) -> None:
        self._lock = threading.Lock()
        self._db = connect(database)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS rf_positions (name TEXT PRIMARY KEY, position INTEGER NOT NULL)"
        )

    def get(self, name: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT position FROM rf_positions WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def set(self, name: str, position: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO rf_positions (name, position) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET position = excluded.position",
                (name, position),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
