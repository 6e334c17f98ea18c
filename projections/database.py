"""The projections' database: a SQLite file (embedded default) or PostgreSQL (a cluster).

Read models, positions, the sync ledger and the Commerce call log are written
with one set of SQL statements; this adapter hides what differs between the
two: how to connect, the placeholder style (statements are written with `?`,
PostgreSQL is sent `%s`), column types (`{int}`, `{blob}`, `{real}`, `{serial}`
in table definitions), how a write transaction begins, and schema creation
that stays safe when several processes start together on an empty database.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

SCHEMA_LOCK = 0x7266_5F73_6368_656D
"""pg_advisory_xact_lock key held while the projections' tables are created ("rf_schem")."""
_TYPES = {
    "sqlite": {"int": "INTEGER", "blob": "BLOB", "real": "REAL", "serial": "INTEGER PRIMARY KEY"},
    "postgresql": {
        "int": "BIGINT",
        "blob": "BYTEA",
        "real": "DOUBLE PRECISION",
        "serial": "BIGSERIAL PRIMARY KEY",
    },
}


def is_postgres(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


class Database:
    """One connection, shared by threads under a re-entrant lock; autocommit outside `transaction`."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.kind = "postgresql" if is_postgres(target) else "sqlite"
        self.types = _TYPES[self.kind]
        self._lock = threading.RLock()
        self._in_transaction = False
        self._conn: Any = self._connect()

    def _connect(self) -> Any:
        if self.kind == "postgresql":
            import psycopg

            return psycopg.connect(self.target, autocommit=True, connect_timeout=10)
        db = sqlite3.connect(self.target, check_same_thread=False, isolation_level=None, timeout=30)
        _wal(db)
        # Projections are rebuildable from the store, so they skip the per-commit fsync.
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    @property
    def postgres(self) -> bool:
        return self.kind == "postgresql"

    def ddl(self, template: str, **names: str) -> str:
        """A table definition with this backend's column types filled in."""
        return template.format(**self.types, **names)

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.postgres else statement

    def _live(self) -> Any:
        """A PostgreSQL connection the server closed (restart, failover) is opened again."""
        if self.postgres and self._conn.closed and not self._in_transaction:
            self._conn = self._connect()
        return self._conn

    def execute(self, statement: str, parameters: Sequence[Any] = ()) -> int:
        """Answers the number of rows changed."""
        with self._lock:
            cursor = self._live().execute(self._sql(statement), tuple(parameters))
            return int(cursor.rowcount)

    def executemany(self, statement: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        with self._lock:
            if self.postgres:
                with self._live().cursor() as cursor:
                    cursor.executemany(self._sql(statement), rows)
            else:
                self._conn.executemany(statement, rows)

    def fetchone(self, statement: str, parameters: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        with self._lock:
            row = self._live().execute(self._sql(statement), tuple(parameters)).fetchone()
        return None if row is None else tuple(row)

    def fetchall(self, statement: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            rows = self._live().execute(self._sql(statement), tuple(parameters)).fetchall()
        return [tuple(row) for row in rows]

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """A write transaction; SQLite takes its write lock at once (BEGIN IMMEDIATE)."""
        with self._lock:
            if self.postgres:
                with self._live().transaction():
                    self._in_transaction = True
                    try:
                        yield self
                    finally:
                        self._in_transaction = False
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def create_schema(self, statements: Iterable[str]) -> None:
        """CREATE ... IF NOT EXISTS is not safe against a concurrent CREATE on PostgreSQL (a
        duplicate `pg_type` row): processes starting together take turns under a lock."""
        with self.transaction():
            if self.postgres:
                self.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))
            for statement in statements:
                self.execute(statement)

    def rename_table(self, old: str, new: str) -> None:
        """Inside a transaction; PostgreSQL's primary-key index keeps its old name otherwise,
        and the next table called `old` could not be created."""
        self.execute(f"ALTER TABLE {old} RENAME TO {new}")
        if self.postgres:
            self.execute(f"ALTER INDEX IF EXISTS {old}_pkey RENAME TO {new}_pkey")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _wal(db: sqlite3.Connection, timeout: float = 30) -> None:
    """Switching a new file to WAL takes an exclusive lock without waiting for a busy one:
    processes opening it together retry (the busy timeout does not cover this pragma)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def upsert(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """INSERT, or UPDATE every other column of the row with the same key (both backends)."""
    others = [c for c in columns if c not in key]
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in others)
    )
