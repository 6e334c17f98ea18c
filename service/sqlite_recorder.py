"""The library's SQLite recorder, inserting a commit's events in one statement.

The library inserts event by event to learn each notification id. Every SQLite
call releases the GIL, and the writer thread then waits for the event loop to
hand it back (up to the 5 ms switch interval each time): with one call per
event, a group commit of 15 Order Submits spent most of its time waiting for
the GIL, not in SQLite. One multi-row INSERT per 500 events gives the same rows
and ids: in a rowid table SQLite numbers the rows of one INSERT consecutively
after the largest rowid, and the write lock is held, so nothing interleaves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteFactory

ROWS_PER_STATEMENT = 500


class OneStatementRecorder(SQLiteApplicationRecorder):
    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **_: Any
    ) -> Sequence[int] | None:
        head = self.insert_events_statement.removesuffix("(?,?,?,?)")
        ids: list[int] = []
        for start in range(0, len(stored_events), ROWS_PER_STATEMENT):
            chunk = stored_events[start : start + ROWS_PER_STATEMENT]
            params: list[Any] = []
            for s in chunk:
                params += (
                    s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id,
                    s.originator_version,
                    s.topic,
                    s.state,
                )
            c.execute(head + ",".join(["(?,?,?,?)"] * len(chunk)), params)
            last = int(c.lastrowid)
            ids.extend(range(last - len(chunk) + 1, last + 1))
        return ids


class Factory(SQLiteFactory):
    application_recorder_class = OneStatementRecorder
