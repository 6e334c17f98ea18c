"""The record of reconciliation runs and their findings, beside the Commerce call log.

Tables `rf_reconcile_runs` (one row a run: options, counts, status and the last
return id done, which `--resume` continues after) and `rf_reconcile_findings`
(one row a difference, with its verdict and whether it was fixed), so the audit
of a return shows what reconciliation found and did.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from projections.database import Database
from projections.drift import Finding

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rf_reconcile_runs (id {serial}, started_at TEXT NOT "
    "NULL, finished_at TEXT, options TEXT NOT NULL, status TEXT NOT NULL, checked {int} NOT NULL "
    "DEFAULT 0, findings {int} NOT NULL DEFAULT 0, drift {int} NOT NULL DEFAULT 0, fixed "
    "{int} NOT NULL DEFAULT 0, last_id TEXT)",
    "CREATE TABLE IF NOT EXISTS rf_reconcile_findings (id {serial}, run_id {int} NOT "
    "NULL, at TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL, field TEXT NOT NULL, ours "
    "TEXT, theirs TEXT, verdict TEXT NOT NULL, event_type TEXT, event_version {int}, event_time "
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
    """Thread-safe (the adapter's lock); one short transaction per write. A SQLite file or
    PostgreSQL, wherever the other projections live."""

    def __init__(self, database: str) -> None:
        self._db = Database(database)
        self._db.create_schema(self._db.ddl(statement) for statement in SCHEMA)

    def start(self, options: dict[str, Any]) -> int:
        row = self._db.fetchone(
            "INSERT INTO rf_reconcile_runs (started_at, options, status) VALUES (?, ?, 'running') "
            "RETURNING id",
            (now(), orjson.dumps(options).decode()),
        )
        assert row is not None
        return int(row[0])

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
        with self._db.transaction() as db:
            if rows:
                db.executemany(
                    f"INSERT INTO rf_reconcile_findings ({', '.join(FINDING_COLUMNS)}) VALUES "
                    f"({', '.join('?' * len(FINDING_COLUMNS))})",
                    rows,
                )
            db.execute(
                "UPDATE rf_reconcile_runs SET checked = checked + ?, findings = findings + ?, "
                "drift = drift + ?, fixed = fixed + ?, last_id = ? WHERE id = ?",
                (checked, len(findings), drift, len(fixed), last_id, run_id),
            )

    def finish(self, run_id: int, status: str) -> None:
        self._db.execute(
            "UPDATE rf_reconcile_runs SET status = ?, finished_at = ? WHERE id = ?",
            (status, now(), run_id),
        )

    def run(self, run_id: int) -> dict[str, Any]:
        return self._runs("WHERE id = ?", (run_id,))[0]

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        return self._runs("ORDER BY id DESC LIMIT ?", (limit,))

    def unfinished(self) -> dict[str, Any] | None:
        """The latest run that did not finish (interrupted): what `--resume` continues."""
        rows = self._runs("WHERE status != 'finished' ORDER BY id DESC LIMIT 1", ())
        return rows[0] if rows else None

    def findings_for(self, subject: str) -> list[dict[str, Any]]:
        return self._findings("WHERE subject = ? ORDER BY id", (subject,))

    def findings_of(self, run_id: int) -> list[dict[str, Any]]:
        return self._findings("WHERE run_id = ? ORDER BY id", (run_id,))

    def _runs(self, where: str, parameters: tuple[Any, ...]) -> list[dict[str, Any]]:
        rows = self._db.fetchall(
            f"SELECT {', '.join(RUN_COLUMNS)} FROM rf_reconcile_runs {where}", parameters
        )
        return [dict(zip(RUN_COLUMNS, row, strict=True)) for row in rows]

    def _findings(self, where: str, parameters: tuple[Any, ...]) -> list[dict[str, Any]]:
        rows = self._db.fetchall(
            f"SELECT {', '.join(FINDING_COLUMNS)} FROM rf_reconcile_findings {where}", parameters
        )
        return [dict(zip(FINDING_COLUMNS, row, strict=True)) for row in rows]

    def close(self) -> None:
        self._db.close()
