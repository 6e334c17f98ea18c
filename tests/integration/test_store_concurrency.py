"""Two writers (two processes' worth) on one SQLite store: a version conflict is retried, not lost."""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path

from domain.identity import return_uuid
from domain.returns import ReturnRequest
from service import operations
from service.payloads import parse_order_submit, parse_return_update
from service.store import UnitOfWork, Writer, open_store
from tests.commerce_sim.seeds import seed_order_submit, seed_return_request_update


def test_concurrent_writers_on_one_return_lose_no_update(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rf.db'}"
    stores = [open_store(url), open_store(url)]
    writers = [Writer(store) for store in stores]
    for writer in writers:
        writer.start()
    try:
        writers[0].run(partial(operations.receive_order,
                               payload=parse_order_submit(seed_order_submit()), cause="c"))
        writers[0].run(partial(operations.receive_return_update,
                               payload=parse_return_update(seed_return_request_update()), cause="c"))
        other_committed = threading.Event()
        receive = partial(operations.receive, return_id="100003",
                          items=[({"returnItemId": "100003"}, 1)], actor="operator:x", cause="c")

        def slow(uow: UnitOfWork) -> str:
            """Decide on version 2, then let the other process commit first."""
            result = receive(uow)
            other_committed.wait(10)
            return result

        first = writers[0].submit(slow)
        writers[1].run(receive)
        other_committed.set()
        assert first.result(10) == "100003"
        assert writers[0].stats.conflicts == 1, "the stale write hit a version conflict"
        ret = stores[0].repository.get(return_uuid("100003"))
        assert isinstance(ret, ReturnRequest)
        assert ret.items[0]["quantityReceived"] == 2
        assert (ret.state, ret.version) == ("FULL_RETURN", 3)
    finally:
        for writer in writers:
            writer.stop()
        for store in stores:
            store.close()


def _seeded(writer: Writer) -> None:
    writer.run(partial(operations.receive_order,
                       payload=parse_order_submit(seed_order_submit()), cause="c"))
    writer.run(partial(operations.receive_return_update,
                       payload=parse_return_update(seed_return_request_update()), cause="c"))


def _receive_one(uow: UnitOfWork) -> str:
    return operations.receive(uow, return_id="100003", items=[({"returnItemId": "100003"}, 1)],
                              actor="operator:x", cause="c")


def test_writer_cache_is_refreshed_when_another_process_wrote(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rf.db'}"
    stores = [open_store(url), open_store(url)]
    writers = [Writer(store) for store in stores]
    for writer in writers:
        writer.start()
    try:
        _seeded(writers[0])
        assert writers[0].committed.get(return_uuid("100003")) is not None
        writers[1].run(_receive_one)
        writers[0].run(_receive_one)
        assert writers[0].stats.conflicts == 0, "the stale cached copy was not used"
        ret = stores[0].repository.get(return_uuid("100003"))
        assert isinstance(ret, ReturnRequest)
        assert (ret.state, ret.version, ret.items[0]["quantityReceived"]) == ("FULL_RETURN", 3, 2)
    finally:
        for writer in writers:
            writer.stop()
        for store in stores:
            store.close()


def test_writer_never_mutates_what_readers_hold(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'rf.db'}")
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
