"""The projections' stores (read models, positions, sync ledger, Commerce call log) on SQLite and
on PostgreSQL, through the one adapter; and their schema created by many processes at once."""

from __future__ import annotations

import multiprocessing
import threading
from functools import partial
from typing import Any

import orjson
import pytest

from projections.commerce_bodies import CommerceCall
from projections.positions import PositionStore, side_database
from projections.read_models import ReadModels
from projections.replay import ReadModelFollower, compare, rebuild
from projections.sync import Applied, CommerceProjector, LeaseLost, LoggedOutcome, SyncLedger
from service import operations
from service.cli import main
from service.payloads import parse_order_submit, parse_return_update
from service.store import EventStore, open_store
from service.writer import Writer
from tests.commerce_sim.seeds import seed_order_submit, seed_return_request_update
from tests.integration.test_projector import FakeCommerce, message


@pytest.fixture
def projections(store_url: str) -> str:
    """Where the projections live by default for that store: a file beside it, or its database."""
    return side_database(store_url)


def _transition(notification_id: int, subject: str, version: int) -> tuple[Any, ...]:
    return (
        notification_id,
        "return",
        subject,
        version,
        "2026-11-30T00:00:00Z",
        "T",
        "t",
        "A",
        "B",
        "operator:x",
        "c",
        None,
        None,
    )


def test_projections_of_a_postgresql_store_live_in_its_database(store_url: str) -> None:
    assert (side_database(store_url) == store_url) == store_url.startswith("postgresql://")


def test_positions_are_kept_and_moved(projections: str) -> None:
    positions = PositionStore(projections)
    assert positions.get("relay") == 0
    positions.set("relay", 41)
    positions.set("relay", 42)
    again = PositionStore(projections)
    assert again.get("relay") == 42 and again.get("embedded-sync") == 0
    positions.close()
    again.close()


def test_a_page_is_written_once_even_by_two_followers(projections: str) -> None:
    first, second = ReadModels(projections), ReadModels(projections)
    view = ("rf_return_view", "R1", 2, orjson.dumps({"state": "B"}))
    assert first.apply([_transition(1, "R1", 1), _transition(2, "R1", 2)], [view], 2, after=0)
    assert not second.apply(
        [_transition(1, "R1", 1), _transition(2, "R1", 2)], [("rf_return_view", "R1", 1, b"{}")], 2, after=0
    ), "the same page again from the same position is refused"
    assert second.position() == 2
    assert second.document("rf_return_view", "R1") == {"state": "B"}
    assert [row[0] for row in second.rows("rf_transitions")] == [1, 2]
    older = ("rf_return_view", "R1", 1, orjson.dumps({"state": "A"}))
    assert second.apply([_transition(3, "R2", 1)], [older], 3, after=2)
    assert second.document("rf_return_view", "R1") == {"state": "B"}, "a view never goes back"
    first.close()
    second.close()


def test_rebuild_swaps_in_the_same_models_twice(store_url: str, projections: str) -> None:
    """Twice: on PostgreSQL the renamed table's key index must not block the next rebuild."""
    store = open_store(store_url)
    try:
        _seed(store)
        live = ReadModels(projections)
        follower = ReadModelFollower(store, live)
        while follower.step():
            pass
        for _ in range(2):
            scratch = ReadModels(":memory:")
            rebuild(store, scratch)
            rebuilt = rebuild(store, live)
            assert rebuilt.events == int(store.recorder.max_notification_id() or 0) > 0
            assert compare(live, scratch) == []
            scratch.close()
        live.close()
    finally:
        store.close()


async def test_ledger_never_sends_a_state_older_than_one_sent(projections: str) -> None:
    """Two projectors on one ledger (a takeover overlap): Commerce never sees a PUT regress."""
    ledger = SyncLedger(projections)
    early, late = FakeCommerce(LoggedOutcome(200, 1)), FakeCommerce(LoggedOutcome(200, 1))
    await CommerceProjector(late, ledger).project([message(5, "FULL_RETURN", 2)])
    stale = CommerceProjector(early, ledger)
    await stale.project([message(4, "PARTIAL_RETURN", 1)])
    assert early.sent == [] and stale.superseded == 0, "older than applied: skipped"
    await stale.project([message(5, "FULL_RETURN", 2)])
    assert early.sent == [], "equal to applied: skipped"
    assert [(c["version"], c["status"]) for c in ledger.calls_for("R9")] == [(5, 200)]
    ledger.close()


async def test_a_projector_that_lost_its_lease_sends_nothing(projections: str) -> None:
    ledger = SyncLedger(projections)
    commerce = FakeCommerce(LoggedOutcome(200, 1))
    with pytest.raises(LeaseLost):
        await CommerceProjector(commerce, ledger, fence=lambda: False).project([message(2, "X", 1)])
    assert commerce.sent == [] and ledger.calls_for("R9") == []
    await CommerceProjector(commerce, ledger, fence=lambda: True).project([message(2, "X", 1)])
    assert len(commerce.sent) == 1
    ledger.close()


def test_claims_refuse_older_versions_and_allow_a_retry(projections: str) -> None:
    ledger = SyncLedger(projections)
    key = ("R9", "updateReturnRequest")
    assert ledger.claim([(*key, 4)]) == {key}
    assert ledger.claim([(*key, 6)]) == {key}, "a newer state may always go"
    assert ledger.claim([(*key, 5)]) == set(), "older than one being sent: refused"
    assert ledger.claim([(*key, 6)]) == {key}, "the same version again (a retry): allowed"
    call = _call(6)
    ledger.applied([Applied(call, 6, "h6", "e6", LoggedOutcome(200, 1))])
    ledger.applied([Applied(_call(3), 3, "h3", "e3", None)])
    assert ledger.last(*key) == (6, "h6"), "the ledger never moves back"
    assert ledger.claim([(*key, 6)]) == set(), "applied: not sent again"
    ledger.close()


def _call(version: int) -> CommerceCall:
    return CommerceCall(
        "PUT", "/ccadmin/v1/returnRequests/R9", {"state": f"S{version}"}, "R9", "updateReturnRequest"
    )


def _seed(store: EventStore) -> None:
    """An order, its return, a receipt: a few events through the real writer."""
    writer = Writer(store)
    writer.start()
    try:
        writer.run(
            partial(operations.receive_order, payload=parse_order_submit(seed_order_submit()), cause="c")
        )
        writer.run(
            partial(
                operations.receive_return_update,
                payload=parse_return_update(seed_return_request_update()),
                cause="c",
            )
        )
        writer.run(
            partial(
                operations.receive,
                return_id="100003",
                items=[({"returnItemId": "100003"}, 1)],
                actor="operator:x",
                cause="c",
            )
        )
    finally:
        writer.stop()


def test_concurrent_claims_end_at_the_newest_state(projections: str) -> None:
    """Projectors racing with different states of one return: the newest always goes, and once
    it has been claimed no older one can be."""
    ledgers = [SyncLedger(projections) for _ in range(6)]
    barrier = threading.Barrier(len(ledgers))
    granted: list[int] = []

    def race(ledger: SyncLedger, version: int) -> None:
        barrier.wait()
        if ledger.claim([("R9", "updateReturnRequest", version)]):
            granted.append(version)

    threads = [
        threading.Thread(target=race, args=(ledger, version))
        for version, ledger in zip([3, 8, 5, 7, 4, 6], ledgers, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 8 in granted
    assert ledgers[0].claim([("R9", "updateReturnRequest", 7)]) == set()
    for ledger in ledgers:
        ledger.close()


def _open_everything(projections: str, ready: Any, go: Any) -> None:
    ready.wait()
    go.wait()
    for store in (ReadModels(projections), PositionStore(projections), SyncLedger(projections)):
        store.close()


@pytest.mark.parametrize("trial", range(3))
def test_schema_created_by_five_processes_at_once(store_url: str, projections: str, trial: int) -> None:
    """Replicas starting together on an empty database: none fails creating the tables."""
    context = multiprocessing.get_context("spawn")
    ready, go = context.Barrier(6), context.Event()
    processes = [context.Process(target=_open_everything, args=(projections, ready, go)) for _ in range(5)]
    for process in processes:
        process.start()
    ready.wait()
    go.set()
    for process in processes:
        process.join(60)
    assert [p.exitcode for p in processes] == [0] * 5
    models = ReadModels(projections)
    assert models.position() == 0
    models.close()


def test_schema_created_by_threads_at_once(projections: str) -> None:
    barrier = threading.Barrier(8)
    failures: list[BaseException] = []

    def open_all() -> None:
        barrier.wait()
        try:
            for store in (SyncLedger(projections), ReadModels(projections)):
                store.close()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=open_all) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_replay_and_verify_from_the_command_line(
    store_url: str, projections: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`returnflow replay [--verify]` reads and rebuilds the projections where they live."""
    store = open_store(store_url)
    _seed(store)
    live = ReadModels(projections)
    follower = ReadModelFollower(store, live)
    while follower.step():
        pass
    assert main(["replay", "--verify", "--store", store_url]) == 0
    live.execute("UPDATE rf_return_view SET version = 99")
    assert main(["replay", "--verify", "--store", store_url]) == 1
    assert "rf_return_view id=100003: live row differs" in capsys.readouterr().out
    assert main(["replay", "--store", store_url]) == 0
    assert main(["replay", "--verify", "--store", store_url]) == 0
    assert live.document("rf_return_view", "100003")["state"] == "PARTIAL_RETURN"
    live.close()
    store.close()
