"""One INSERT per commit gives the same rows and notification ids as the library's row-by-row insert."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from eventsourcing.persistence import IntegrityError

from service.sqlite_recorder import ROWS_PER_STATEMENT, OneStatementRecorder
from service.store import open_store
from tests.bench.replay import lifecycle


def test_notification_ids_are_the_rowids_across_statement_chunks(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'rf.db'}")
    try:
        assert isinstance(store.recorder, OneStatementRecorder)
        first = store.save(*lifecycle(1))
        many = [a for n in range(2, 2 + ROWS_PER_STATEMENT // 10) for a in lifecycle(n)]
        recordings = first + store.save(*many)
        assert len(recordings) > ROWS_PER_STATEMENT, "the second commit spans two statements"
        ids = [r.notification.id for r in recordings]
        assert ids == list(range(1, len(recordings) + 1))
        with sqlite3.connect(tmp_path / "rf.db") as db:
            rows = db.execute(
                "SELECT rowid, originator_id, originator_version FROM stored_events ORDER BY rowid"
            ).fetchall()
        assert rows == [
            (r.notification.id, r.domain_event.originator_id.hex, r.domain_event.originator_version)
            for r in recordings
        ]
        notifications = store.recorder.select_notifications(1, 10_000)
        assert [n.id for n in notifications] == ids
    finally:
        store.close()


def test_a_version_conflict_stores_none_of_the_commit(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'rf.db'}")
    try:
        order, ret = lifecycle(1)
        store.save(order)
        stale = lifecycle(1)[0]
        with pytest.raises(IntegrityError):
            store.save(ret, stale)
        assert store.recorder.max_notification_id() == order.version
    finally:
        store.close()
