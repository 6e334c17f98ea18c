"""The record of reconciliation runs and their findings, beside the Commerce call log.

Tables `rf_reconcile_runs` (one row a run: options, counts, status and the last
return id done, which `--resume` continues after) and `rf_reconcile_findings`
(one row a difference, with its verdict and whether it was fixed), so the audit
of a return shows what reconciliation found and did.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from projections.drift import Finding
from projections.positions import connect

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rf_reconcile_runs (id INTEGER PRIMARY KEY, started_at TEXT NOT "
    "NULL, finished_at TEXT, options TEXT NOT NULL, status TEXT NOT NULL, checked INTEGER NOT NULL "
    "DEFAULT 0, findings INTEGER NOT NULL DEFAULT 0, drift INTEGER NOT NULL DEFAULT 0, fixed "
    "INTEGER NOT NULL DEFAULT 0, last_id TEXT)",
    "CREATE TABLE IF NOT EXISTS rf_reconcile_findings (id INTEGER PRIMARY KEY, run_id INTEGER NOT "
    "NULL, at TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL, field TEXT NOT NULL, ours "
    "TEXT, theirs TEXT, verdict TEXT NOT NULL, event_type TEXT, event_version INTEGER, event_time "
    "TEXT, fixed INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS rf_reconcile_findings_subject ON rf_reconcile_findings (subject, id)",
)
RUN_COLUMNS = (
    "id",
    "started_at",
    "finished_at",
    "options",
    "status",
    "checked",
    "findings",
    "drift",
    "fixed",
    "last_id",
)
FINDING_COLUMNS = (
    "run_id",
    "at",
    "kind",
    "subject",
    "field",
    "ours",
    "theirs",
    "verdict",
    "event_type",
    "event_version",
    "event_time",
    "fixed",
)


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def as_text(value: Any) -> str | None:
    """A compared value as stored and shown: numbers as their digits, strings as they are."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    return orjson.dumps(value, default=str).decode()


class ReconcileLog:
    """Thread-safe; one short transaction per write."""

    def __init__(self, database: str) -> None:
        self._lock = threading.Lock()
        self._db = connect(database)
        for statement in SCHEMA:
            self._db.execute(statement)

    def start(self, options: dict[str, Any]) -> int:
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO rf_reconcile_runs (started_at, options, status) VALUES (?, ?, 'running')",
                (now(), orjson.dumps(options).decode()),
            )
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)

    def record(
        self, run_id: int, findings: Sequence[Finding], fixed: set[int], last_id: str, checked: int
    ) -> None:
        """A page's findings (`fixed`: indexes of those repaired) and the checkpoint, together."""
        at = now()
        rows = [
            (
                run_id,
                at,
                f.kind,
                f.subject,
                f.field,
                as_text(f.ours),
                as_text(f.theirs),
                f.verdict,
                f.event.type if f.event else None,
                f.event.version if f.event else None,
                f.event.time if f.event else None,
                int(i in fixed),
            )
            for i, f in enumerate(findings)
        ]
        drift = sum(1 for f in findings if f.verdict == "drift")
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                f"INSERT INTO rf_reconcile_findings ({', '.join(FINDING_COLUMNS)}) VALUES "
                f"({', '.join('?' * len(FINDING_COLUMNS))})",
                rows,
            )
            self._db.execute(
                "UPDATE rf_reconcile_runs SET checked = checked + ?, findings = findings + ?, "
                "drift = drift + ?, fixed = fixed + ?, last_id = ? WHERE id = ?",
                (checked, len(findings), drift, len(fixed), last_id, run_id),
            )
            self._db.execute("COMMIT")

    def finish(self, run_id: int, status: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE rf_reconcile_runs SET status = ?, finished_at = ? WHERE id = ?",
                (status, now(), run_id),
            )

    def run(self, run_id: int) -> dict[str, Any]:
        return self._select("SELECT * FROM rf_reconcile_runs WHERE id = ?", (run_id,))[0]

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        return self._select("SELECT * FROM rf_reconcile_runs ORDER BY id DESC LIMIT ?", (limit,))

    def unfinished(self) -> dict[str, Any] | None:
        """The latest run that did not finish (interrupted): what `--resume` continues."""
        rows = self._select(
            "SELECT * FROM rf_reconcile_runs WHERE status != 'finished' ORDER BY id DESC LIMIT 1", ()
        )
        return rows[0] if rows else None

    def findings_for(self, subject: str) -> list[dict[str, Any]]:
        return self._select(
            f"SELECT {', '.join(FINDING_COLUMNS)} FROM rf_reconcile_findings WHERE subject = ? ORDER BY id",
            (subject,),
        )

    def findings_of(self, run_id: int) -> list[dict[str, Any]]:
        return self._select(
            f"SELECT {', '.join(FINDING_COLUMNS)} FROM rf_reconcile_findings WHERE run_id = ? ORDER BY id",
            (run_id,),
        )

    def _select(self, statement: str, parameters: tuple[Any, ...]) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self._db.execute(statement, parameters)
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def close(self) -> None:
        with self._lock:
            self._db.close()
