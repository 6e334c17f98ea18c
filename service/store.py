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


class NoStore(LookupError):
    """A command that only reads found no event store where the configuration points."""


def require_existing(url: str) -> None:
    """Refuse, in words, before anything would create a store at `url` (audit, replay, reconcile)."""
    hint = "set RETURNFLOW_STORE (or --store) to the store `returnflow serve` writes"
    if url in ("memory:", "memory://"):
        raise NoStore(f"a memory: store lives only inside its `serve` process: {hint}")
    env = store_env_unchecked(url)
    if env["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
        if not _postgres_has_events(env):
            raise NoStore(
                f"no Returnflow event store in PostgreSQL database {env['POSTGRES_DBNAME']!r}: {hint}"
            )
        return
    path = Path(env["SQLITE_DBNAME"])
    if str(path) == ":memory:" or not path.is_file() or path.stat().st_size == 0:
        raise NoStore(f"no event store at {path.resolve()}: {hint}")


def store_env_unchecked(url: str) -> dict[str, str]:
    """`store_env` without creating a SQLite store's directory."""
    if url.startswith("sqlite:///"):
        return {"PERSISTENCE_MODULE": "sqlite", "SQLITE_DBNAME": url.removeprefix("sqlite:///") or ":memory:"}
    return store_env(url)


def check_reachable(url: str) -> None:
    """A PostgreSQL store that cannot be reached is one line at start-up, not a hang or a traceback."""
    env = store_env_unchecked(url)
    if env["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
        _postgres_has_events(env)


def _postgres_has_events(env: dict[str, str]) -> bool:
    import psycopg

    try:
        with psycopg.connect(
            host=env["POSTGRES_HOST"],
            port=int(env["POSTGRES_PORT"]),
            dbname=env["POSTGRES_DBNAME"],
            user=env["POSTGRES_USER"],
            password=env["POSTGRES_PASSWORD"],
            connect_timeout=10,
        ) as conn:
            row = conn.execute("SELECT to_regclass('returnflow_events') IS NOT NULL").fetchone()
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NoStore(
            f"cannot reach the PostgreSQL store at {env['POSTGRES_HOST']}:{env['POSTGRES_PORT']}: {first}"
        ) from None
    return bool(row and row[0])
