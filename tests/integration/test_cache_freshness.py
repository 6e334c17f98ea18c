"""The aggregate cache is never behind a write its process has been told of, under any interleaving.

Two writers on one SQLite file stand for two processes. "Process" B has readers
on several threads (refreshing and loading as the validation webhook does) and
its writer records lifecycle steps that only read the return A keeps changing.
A checker freezes B's knowledge of the store (`PrivateCopies._known`) and
compares every cached aggregate with the store's newest version up to it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from uuid import UUID

from domain.identity import order_uuid, return_uuid
from domain.orders import Order
from domain.policy import ReturnPolicy
from domain.returns import ReturnRequest
from service import operations
from service.aggregate_cache import AggregateCache
from service.answer_memo import AnswerMemo
from service.payloads import parse_order_submit, parse_return_update
from service.store import open_store
from service.unit_of_work import Mode, UnitOfWork
from service.validation import decide, parse_validation
from service.writer import Writer
from tests.conftest import RunningService
from tests.integration import stale_answers
from tests.integration.test_operator_api import webhook

RUN_S = 4.0


def _lifecycle(context: str) -> Callable[[UnitOfWork], object]:
    call = parse_validation(stale_answers._question(context))
    return partial(
        decide, call=call, policy=ReturnPolicy(), now=datetime.now(UTC), cause=f"c-{context}", record=True
    )


def _behind(db: Path, writer: Writer) -> list[str]:
    """Cached aggregates older than the store's newest version the process knows of."""
    copies, cache = writer.copies, writer.committed
    with copies._lock, sqlite3.connect(db) as conn:
        known = copies._known or 0
        found = []
        for aggregate in cache.entries():
            (newest,) = conn.execute(
                "SELECT MAX(originator_version) FROM stored_events WHERE originator_id = ? AND rowid <= ?",
                (aggregate.id.hex, known),
            ).fetchone()
            if newest is not None and aggregate.version < newest:
                found.append(f"{type(aggregate).__name__} v{aggregate.version} < v{newest}")
        return found


def _reader(writer: Writer, ids: list[UUID], stop: threading.Event) -> None:
    """The validation webhook's way: refresh, then read through the cache (loading on a miss)."""
    while not stop.is_set():
        writer.copies.refresh()
        uow = UnitOfWork(writer.store, Mode.READ_THROUGH, cache=writer.committed)
        uow.get(ids[0], Order)
        uow.get(ids[1], ReturnRequest)
        time.sleep(0.0005)


def test_no_cached_aggregate_falls_behind_a_write_the_process_knows_of(tmp_path: Path) -> None:
    db = tmp_path / "rf.db"
    stores = [open_store(f"sqlite:///{db}"), open_store(f"sqlite:///{db}")]
    a, b = Writer(stores[0]), Writer(stores[1])
    for writer in (a, b):
        writer.start()
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        a.run(
            partial(
                operations.receive_order,
                payload=parse_order_submit(stale_answers._order(stale_answers.ORDER)),
                cause="c",
            )
        )
        ids = [order_uuid(stale_answers.ORDER), return_uuid(stale_answers.RETURN)]
        threads = [threading.Thread(target=_reader, args=(b, ids, stop)) for _ in range(3)]
        for thread in threads:
            thread.start()
        problems: list[str] = []
        deadline, n = time.monotonic() + RUN_S, 0
        while time.monotonic() < deadline and not problems:
            n += 1
            pending = b.submit(_lifecycle(("Initiate_Return", "CalculateRefund_Return")[n % 2]))
            a.run(
                partial(
                    operations.receive_return_update,
                    cause=f"t{n}",
                    payload=parse_return_update(stale_answers._return_update(2 - n % 2, n)),
                )
            )
            pending.result(10)
            b.copies.refresh()
            problems = _behind(db, b)
        assert not problems, f"after {n} rounds: {problems}"
        assert n > 20, "the scenario ran"
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for writer in (a, b):
            writer.stop()
        for store in stores:
            store.close()


class _Fake:
    def __init__(self, ident: UUID, version: int) -> None:
        self.id, self.version = ident, version


def test_a_copy_read_before_a_drop_is_not_kept_after_it() -> None:
    cache = AggregateCache(capacity=4)
    ident = order_uuid("o1")
    generation = cache.generation
    cache.forget_older({ident: 1})
    assert not cache.put_if_current([_Fake(ident, 1)], generation)  # type: ignore[list-item]
    assert cache.peek(ident) is None
    assert cache.put_if_current([_Fake(ident, 2)], cache.generation)  # type: ignore[list-item]
    assert cache.put_if_current([_Fake(ident, 1)], cache.generation)  # type: ignore[list-item]
    found = cache.peek(ident)
    assert found is not None and found.version == 2, "an older version never replaces a newer"


def test_the_cache_is_bounded_and_counts() -> None:
    cache = AggregateCache(capacity=3)
    idents = [order_uuid(f"o{n}") for n in range(5)]
    for ident in idents:
        assert cache.put_if_current([_Fake(ident, 1)], cache.generation)  # type: ignore[list-item]
    assert len(cache) == 3
    assert cache.get(idents[0]) is None and cache.get(idents[4]) is not None
    stats = cache.stats()
    assert (stats.entries, stats.hits, stats.misses, stats.evictions) == (3, 1, 1, 2)


def test_remembered_answers_are_bounded_and_never_outlive_a_drop() -> None:
    cache = AggregateCache(capacity=8)
    memo = AnswerMemo(cache, capacity=2)
    ident = order_uuid("o1")
    assert cache.put_if_current([_Fake(ident, 3)], cache.generation)  # type: ignore[list-item]
    for n in range(3):
        memo.put(f"q{n}", b"answer", ((ident, 3),), holds_until=time.monotonic() + 60)
    assert memo.get("q0") is None, "the least recently used answer went first"
    assert memo.get("q2") == b"answer"
    cache.forget_older({ident: 4})
    assert memo.get("q2") is None, "what it was judged from left the cache: asked again"
    stats = memo.stats()
    assert (stats.entries, stats.hits, stats.misses, stats.evictions) == (1, 1, 2, 1)


async def test_metrics_report_every_cache(service: RunningService) -> None:
    document = stale_answers._order("o-metrics")
    status, _ = await webhook(service, "order-submit", document)
    assert status == 200
    async with service.http.get(f"{service.url}/metrics") as r:
        text = await r.text()
    capacity = service.services.settings.cache_entries
    assert 'returnflow_cache_entries{cache="aggregates"} ' in text
    assert 'returnflow_cache_capacity{cache="validation_answers"} ' in text
    for name in ("aggregates", "validation_answers", "folded_read_models", "folded_sync"):
        assert f'returnflow_cache_evictions_total{{cache="{name}"}} ' in text, name
    assert capacity == 4096
