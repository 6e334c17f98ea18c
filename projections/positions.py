"""Where each follower of the notification log has got to, kept beside the event store.

A position advances only after its side effect succeeded (a Kafka ack, a
Commerce call), so a crash replays from the last position: at least once, made
effectively once by the consumers' idempotence.
"""

from __future__ import annotations

from pathlib import Path

from projections.database import Database, is_postgres


def side_database(store_url: str) -> str:
    """Where read models, positions and the sync ledger live by default.

    With a SQLite store: a file beside the store's, not inside it (SQLite has one
    writer at a time per file, and the event store's writer must never wait for a
    projection's transaction). With PostgreSQL: the same database (tables `rf_*`),
    so every replica, and `audit` or `replay` on any host, sees the same.
    """
    if store_url.startswith("sqlite:///"):
        path = Path(store_url.removeprefix("sqlite:///"))
        if str(path) == ":memory:":
            return ":memory:"
        return str(path.with_name(f"{path.stem}.projections{path.suffix or '.db'}"))
    if is_postgres(store_url):
        return store_url
    return ":memory:"


class PositionStore:
    """Named positions in table `rf_positions`; thread-safe, one short transaction per write."""

    def __init__(self, database: str) -> None:
        self.database = database
        self._db = Database(database)
        self._db.create_schema(
            [
                self._db.ddl(
                    "CREATE TABLE IF NOT EXISTS rf_positions (name TEXT PRIMARY KEY, position {int} NOT NULL)"
                )
            ]
        )

    def get(self, name: str) -> int:
        row = self._db.fetchone("SELECT position FROM rf_positions WHERE name = ?", (name,))
        return int(row[0]) if row else 0

    def set(self, name: str, position: int) -> None:
        self._db.execute(
            "INSERT INTO rf_positions (name, position) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET position = excluded.position",
            (name, position),
        )

    def close(self) -> None:
        self._db.close()
