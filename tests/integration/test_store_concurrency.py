"""Two writers (two processes' worth) on one SQLite store: conflicts are retried, changes are seen."""

from __future__ import annotations

import contextlib
import multiprocessing
import stat
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from domain.identity import return_uuid
from domain.returns import ReturnRequest
from service import operations
from service.change_notice import ChangeNotice, ChangeNoticeError, notice_path
from service.payloads import parse_order_submit, parse_return_update
from service.store import open_store
from service.unit_of_work import UnitOfWork
from service.writer import Writer
from tests.commerce_sim.seeds import seed_order_submit, seed_return_request_update


@contextlib.contextmanager
def _two_processes(url: str) -> Iterator[tuple[Writer, Writer]]:
    """Two stores and writers on one store: two processes' worth."""
    stores = [open_store(url), open_store(url)]
    writers = (Writer(stores[0]), Writer(stores[1]))
    for writer in writers:
        writer.start()
    try:
        yield writers
    finally:
        for writer in writers:
            writer.stop()
        for store in stores:
            store.close()


def test_concurrent_writers_on_one_return_lose_no_update(store_url: str) -> None:
    with _two_processes(store_url) as writers:
        writers[0].run(
            partial(operations.receive_order, payload=parse_order_submit(seed_order_submit()), cause="c")
        )
        writers[0].run(
            partial(
                operations.receive_return_update,
                payload=parse_return_update(seed_return_request_update()),
                cause="c",
            )
        )
        other_committed = threading.Event()
        receive = partial(
            operations.receive,
            return_id="100003",
            items=[({"returnItemId": "100003"}, 1)],
            actor="operator:x",
            cause="c",
        )

        decided = threading.Event()

        def slow(uow: UnitOfWork) -> str:
            """Decide on version 2, then let the other process commit first."""
            result = receive(uow)
            decided.set()
            other_committed.wait(10)
            return result

        first = writers[0].submit(slow)
        assert decided.wait(10)
        writers[1].run(receive)
        other_committed.set()
        assert first.result(10) == "100003"
        assert writers[0].stats.conflicts == 1, "the stale write hit a version conflict"
        ret = writers[0].store.repository.get(return_uuid("100003"))
        assert isinstance(ret, ReturnRequest)
        assert ret.items[0]["quantityReceived"] == 2
        assert (ret.state, ret.version) == ("FULL_RETURN", 3)


def _seeded(writer: Writer) -> None:
    writer.run(partial(operations.receive_order, payload=parse_order_submit(seed_order_submit()), cause="c"))
    writer.run(
        partial(
            operations.receive_return_update,
            payload=parse_return_update(seed_return_request_update()),
            cause="c",
        )
    )


def _receive_one(uow: UnitOfWork) -> str:
    return operations.receive(
        uow, return_id="100003", items=[({"returnItemId": "100003"}, 1)], actor="operator:x", cause="c"
    )


def test_writer_cache_is_refreshed_when_another_process_wrote(store_url: str) -> None:
    with _two_processes(store_url) as writers:
        _seeded(writers[0])
        assert writers[0].committed.get(return_uuid("100003")) is not None
        writers[1].run(_receive_one)
        writers[0].run(_receive_one)
        assert writers[0].stats.conflicts == 0, "the stale cached copy was not used"
        ret = writers[0].store.repository.get(return_uuid("100003"))
        assert isinstance(ret, ReturnRequest)
        assert (ret.state, ret.version, ret.items[0]["quantityReceived"]) == ("FULL_RETURN", 3, 2)


def test_writer_never_mutates_what_readers_hold(store_url: str) -> None:
    store = open_store(store_url)
    writer = Writer(store)
    writer.start()
    try:
        _seeded(writer)
        held = writer.committed.get(return_uuid("100003"))
        assert isinstance(held, ReturnRequest)
        before = (held.version, held.state, [dict(i) for i in held.items])
        writer.run(_receive_one)
        assert (held.version, held.state, [dict(i) for i in held.items]) == before
        newest = writer.committed.get(return_uuid("100003"))
        assert isinstance(newest, ReturnRequest) and newest is not held
        assert (newest.version, newest.items[0]["quantityReceived"]) == (held.version + 1, 1)
    finally:
        writer.stop()
        store.close()


def _announce_in_another_process(path: str) -> None:
    ChangeNotice(Path(path)).announce()


def test_the_change_notice_is_shared_between_processes(tmp_path: Path) -> None:
    notice = ChangeNotice(notice_path(str(tmp_path / "rf.db")))
    before = notice.token()
    child = multiprocessing.get_context("spawn").Process(
        target=_announce_in_another_process, args=(str(notice_path(str(tmp_path / "rf.db"))),)
    )
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert notice.token() != before
    notice.close()


def test_a_reader_asks_the_store_again_only_once_a_writer_announced(tmp_path: Path) -> None:
    """The validation role's check before each question: free while nothing was written."""
    with _two_processes(f"sqlite:///{tmp_path / 'rf.db'}") as (reader, other):
        _seeded(reader)
        reader.copies.recheck_s = 60
        reader.copies.refresh()
        asked = reader.copies.queries
        for _ in range(5):
            reader.copies.refresh()
        assert reader.copies.queries == asked, "nothing was written: the store is not asked"
        assert reader.committed.get(return_uuid("100003")) is not None
        other.run(_receive_one)
        reader.copies.refresh()
        assert reader.copies.queries == asked + 1
        assert reader.committed.get(return_uuid("100003")) is None, (
            "the return the other process changed is no longer trusted from the cache"
        )


def test_a_write_that_announces_nothing_is_still_seen_within_the_recheck_interval(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'rf.db'}"
    stores = [open_store(url), open_store(url)]
    reader = Writer(stores[0])
    reader.start()
    try:
        _seeded(reader)
        reader.copies.recheck_s = 0.05
        reader.copies.refresh()
        assert reader.committed.get(return_uuid("100003")) is not None
        ret = stores[1].repository.get(return_uuid("100003"))
        _receive_one_on(ret)
        stores[1].save(ret)
        time.sleep(0.06)
        reader.copies.refresh()
        assert reader.committed.get(return_uuid("100003")) is None
    finally:
        reader.stop()
        for store in stores:
            store.close()


def _receive_one_on(ret: object) -> None:
    assert isinstance(ret, ReturnRequest)
    ret.receive([({"returnItemId": "100003"}, 1)], actor="operator:x", cause="c")


def test_the_token_is_read_before_the_store_is_asked(tmp_path: Path) -> None:
    """A write announced while the reader asks must make its next look ask again."""
    with _two_processes(f"sqlite:///{tmp_path / 'rf.db'}") as (reader, other):
        _seeded(reader)
        ask_store = reader.copies._newest

        def ask_then_another_process_writes() -> int:
            newest = ask_store()
            other.run(_receive_one)
            return newest

        reader.copies._newest = ask_then_another_process_writes  # type: ignore[method-assign]
        reader.copies.recheck_s = 0
        reader.copies.refresh()
        reader.copies._newest = ask_store  # type: ignore[method-assign]
        reader.copies.recheck_s = 60
        assert reader.committed.get(return_uuid("100003")) is not None
        reader.copies.refresh()
        assert reader.committed.get(return_uuid("100003")) is None


def test_the_token_file_takes_the_stores_permissions_and_symlinks_share_it(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    store = open_store(f"sqlite:///{real / 'rf.db'}")
    (real / "rf.db").chmod(0o660)
    (tmp_path / "link").symlink_to(real)
    notice = ChangeNotice.beside(str(tmp_path / "link" / "rf.db"))
    assert notice_path(str(tmp_path / "link" / "rf.db")) == real / "rf.db-changes"
    assert stat.S_IMODE((real / "rf.db-changes").stat().st_mode) == 0o660
    before = notice.token()
    writer = Writer(store)
    writer.start()
    try:
        _seeded(writer)
    finally:
        writer.stop()
        store.close()
    assert notice.token() != before
    notice.close()


def test_a_writer_that_cannot_share_the_token_refuses_to_start(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'rf.db'}")
    try:
        notice_path(str(tmp_path / "rf.db")).mkdir()
        with pytest.raises(ChangeNoticeError, match=r"rf\.db-changes"):
            Writer(store)
    finally:
        store.close()


def test_after_close_nothing_is_trusted_from_the_cache_and_no_connection_reopens(
    tmp_path: Path,
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'rf.db'}")
    writer = Writer(store)
    writer.start()
    try:
        _seeded(writer)
        writer.copies.refresh()
        assert writer.committed.get(return_uuid("100003")) is not None
    finally:
        writer.stop()
    writer.copies.refresh()
    assert writer.committed.get(return_uuid("100003")) is None
    assert writer.copies._db is None
    store.close()
