"""The event store: an eventsourcing Application on SQLite, PostgreSQL or memory, one
notification log for orders and return requests.

The library is synchronous: only the writer thread (`service.writer`) writes, and
readers call it off the event loop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Transcoder

from service.transcoding import OrjsonTranscoder


class EventStore(Application[UUID]):
    """Returnflow's event store: orders and return requests, one notification log."""

    name = "Returnflow"

    def construct_transcoder(self) -> Transcoder:
        transcoder = OrjsonTranscoder()
        self.register_transcodings(transcoder)
        return transcoder


def store_env(url: str) -> dict[str, str]:
    """Map RETURNFLOW_STORE (`sqlite:///path`, `postgresql://…`, `memory:`) to library settings."""
    if url in ("memory:", "memory://"):
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if not path:
            raise ValueError("sqlite store needs a path: sqlite:///returnflow.db")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "service.sqlite_recorder:Factory",
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    if url.startswith(("postgresql://", "postgres://")):
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(url)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parts.path.lstrip("/") or "returnflow",
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
        }
    raise ValueError(f"unsupported RETURNFLOW_STORE {url!r} (sqlite:///…, postgresql://…, memory:)")


SCHEMA_LOCK = 0x52460001
"""The PostgreSQL advisory lock key held while a process creates the store's tables."""


def open_store(url: str) -> EventStore:
    """On PostgreSQL the tables are created under an advisory lock: replicas starting together
    on an empty database would otherwise race on CREATE TYPE/TABLE and one of them fail."""
    env = store_env(url)
    if env["PERSISTENCE_MODULE"] != "eventsourcing.postgres":
        return EventStore(env=env)
    with _schema_lock(env):
        return EventStore(env=env)


@contextlib.contextmanager
def _schema_lock(env: dict[str, str]) -> Iterator[None]:
    import psycopg

    with psycopg.connect(
        host=env["POSTGRES_HOST"],
        port=int(env["POSTGRES_PORT"]),
        dbname=env["POSTGRES_DBNAME"],
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"],
        autocommit=True,
    ) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))
