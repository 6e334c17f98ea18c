"""The writer's group commit on a real SQLite file and a real PostgreSQL database: one
transaction per batch, each command answered after that commit, refusals answered alone,
event-loop callers woken once per batch."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

from domain.errors import DomainError
from domain.identity import order_uuid
from service import operations
from service.operations import Receipt
from service.payloads import parse_order_submit
from service.store import EventStore, open_store
from service.unit_of_work import UnitOfWork
from service.writer import Writer
from tests.commerce_sim.seeds import seed_order_submit


@pytest.fixture
def writer(store_url: str) -> Iterator[Writer]:
    store = open_store(store_url)
    writer = Writer(store)
    writer.start()
    yield writer
    writer.stop()
    store.close()


def submit_order(order_id: str) -> Callable[[UnitOfWork], Receipt]:
    seed = seed_order_submit()
    seed["order"]["id"] = order_id
    return partial(operations.receive_order, payload=parse_order_submit(seed), cause=f"c-{order_id}")


def refuse(uow: UnitOfWork) -> None:
    raise DomainError("refused on purpose", code="TEST_REFUSAL")


def stored(store: EventStore, order_id: str) -> bool:
    return store.recorder.select_events(order_uuid(order_id)) != []


class Gate:
    """A first command that holds the writer until released, so that what is queued meanwhile
    becomes one batch."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, uow: UnitOfWork) -> str:
        self.entered.set()
        assert self.release.wait(10)
        return "gate"


def test_commands_queued_together_commit_in_one_transaction(writer: Writer) -> None:
    gate = Gate()
    held = writer.submit(gate)
    assert gate.entered.wait(10)
    before = writer.stats.batches
    futures = [writer.submit(submit_order(f"gc{n}")) for n in range(10)]
    refused = writer.submit(refuse)
    gate.release.set()
    assert held.result(10) == "gate"
    receipts = [future.result(10) for future in futures]
    assert [(r.id, r.outcome) for r in receipts] == [(f"gc{n}", "created") for n in range(10)]
    with pytest.raises(DomainError, match="refused on purpose"):
        refused.result(10)
    assert writer.stats.batches == before + 1
    assert writer.stats.largest_batch == 11
    assert all(stored(writer.store, f"gc{n}") for n in range(10))


def test_one_at_a_time_each_command_is_answered_after_its_own_commit(writer: Writer) -> None:
    """A command that fails unexpectedly sends its batch one command per transaction; an earlier
    command's caller does not wait for the later ones."""

    def breaks(uow: UnitOfWork) -> None:
        raise ValueError("unexpected")

    gate = Gate()
    writer.submit(gate)
    assert gate.entered.wait(10)
    first = writer.submit(submit_order("alone-1"))
    broken = writer.submit(breaks)
    first_answered_by_now = writer.submit(lambda uow: first.done())
    gate.release.set()
    assert first.result(10).outcome == "created"
    with pytest.raises(ValueError, match="unexpected"):
        broken.result(10)
    assert first_answered_by_now.result(10) is True


def test_an_answer_is_given_only_after_its_commit(writer: Writer) -> None:
    seen: list[bool] = []
    answered = threading.Event()

    def check(_: object) -> None:
        seen.append(stored(writer.store, "after-commit"))
        answered.set()

    writer.submit(submit_order("after-commit")).add_done_callback(check)
    assert answered.wait(10)
    assert seen == [True]


async def test_a_batch_wakes_the_event_loop_once(writer: Writer, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    wakes: list[Any] = []
    original = loop.call_soon_threadsafe

    def counting(callback: Any, *args: Any, **kwargs: Any) -> Any:
        wakes.append(callback)
        return original(callback, *args, **kwargs)

    gate = Gate()
    held = writer.submit(gate)
    assert await asyncio.to_thread(gate.entered.wait, 10)
    monkeypatch.setattr(loop, "call_soon_threadsafe", counting)
    waiting = [writer.submit_async(submit_order(f"aw{n}")) for n in range(8)]
    committed_when_answered: list[bool] = []
    for n, future in enumerate(waiting):
        future.add_done_callback(
            lambda _, n=n: committed_when_answered.append(stored(writer.store, f"aw{n}"))
        )
    refused = writer.submit_async(refuse)
    gate.release.set()
    receipts = await asyncio.wait_for(asyncio.gather(*waiting), 10)
    with pytest.raises(DomainError):
        await asyncio.wait_for(refused, 10)
    monkeypatch.undo()
    assert held.result(10) == "gate"
    assert [r.outcome for r in receipts] == ["created"] * 8
    assert committed_when_answered == [True] * 8
    assert len(wakes) == 1, "nine answers, one cross-thread wake-up"


async def test_an_answer_a_future_refuses_leaves_the_rest_of_its_batch_answered(writer: Writer) -> None:
    def stops(uow: UnitOfWork) -> None:
        next(iter([]))

    gate = Gate()
    writer.submit(gate)
    assert await asyncio.to_thread(gate.entered.wait, 10)
    odd = writer.submit_async(stops)
    after = writer.submit_async(submit_order("after-odd"))
    gate.release.set()
    with pytest.raises(RuntimeError, match="StopIteration"):
        await asyncio.wait_for(odd, 10)
    assert (await asyncio.wait_for(after, 10)).outcome == "created"


class StoreUnreachable(Exception):
    pass


async def test_a_failed_batch_is_answered_and_the_writer_goes_on(
    writer: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def store_unreachable() -> None:
        raise StoreUnreachable("disk I/O error")

    monkeypatch.setattr(writer.copies, "refresh", store_unreachable)
    with pytest.raises(StoreUnreachable):
        await asyncio.wait_for(writer.submit_async(submit_order("during-outage")), 10)
    with pytest.raises(StoreUnreachable):
        writer.run(submit_order("during-outage"), timeout=10)
    monkeypatch.undo()
    assert not stored(writer.store, "during-outage")
    answer = await asyncio.wait_for(writer.submit_async(submit_order("after-outage")), 10)
    assert answer.outcome == "created"


async def test_a_caller_that_gave_up_does_not_stop_the_writer(writer: Writer) -> None:
    gate = Gate()
    writer.submit(gate)
    assert await asyncio.to_thread(gate.entered.wait, 10)
    abandoned = writer.submit_async(submit_order("abandoned"))
    kept = writer.submit_async(submit_order("kept"))
    abandoned.cancel()
    gate.release.set()
    assert (await asyncio.wait_for(kept, 10)).outcome == "created"
    assert stored(writer.store, "abandoned"), "the command was already queued: it still commits"
    later = await asyncio.wait_for(writer.submit_async(submit_order("later")), 10)
    assert later.outcome == "created"
