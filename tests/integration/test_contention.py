"""Writers in several processes: tables created safely together, conflicts retried, then 503."""

from __future__ import annotations

import threading
from functools import partial
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from domain.identity import return_uuid
from domain.returns import ReturnRequest
from service import operations
from service.payloads import parse_order_submit, parse_return_update
from service.store import open_store
from service.unit_of_work import UnitOfWork
from service.writer import StoreContended, Writer
from tests.conftest import RunningService
from tests.integration import stale_answers
from tests.integration.test_operator_api import act, get, return_update, shipped_order, webhook
from tests.postgres.plugin import new_database
from tests.postgres.server import PostgresServer


def test_replicas_opening_an_empty_database_together_all_start(postgres_server: PostgresServer) -> None:
    """Each trial: five stores opened at once on a fresh database (every trial failed before
    the schema lock)."""
    for _ in range(4):
        url = new_database(postgres_server)
        barrier, errors = threading.Barrier(5), []

        def open_together(
            url: str = url, barrier: threading.Barrier = barrier, errors: list[str] = errors
        ) -> None:
            barrier.wait()
            try:
                open_store(url).close()
            except Exception as exc:
                errors.append(repr(exc))

        threads = [threading.Thread(target=open_together) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []


def _toggle(n: int) -> Any:
    """A Return Request Update from Commerce: the return's quantity set to 2 or 1."""
    payload = parse_return_update(stale_answers._return_update(2 - n % 2, n))
    return partial(operations.receive_return_update, payload=payload, cause=f"t{n}")


def _authorize(uow: UnitOfWork) -> str:
    request = operations.Authorization("RMA-1", None, None, None)
    return operations.authorize(uow, stale_answers.RETURN, request, actor="operator:x", cause="c")


def test_a_command_that_always_collides_is_given_up_as_contended(store_url: str) -> None:
    stores = [open_store(store_url), open_store(store_url)]
    mine, other = Writer(stores[0], conflict_retries=3), Writer(stores[1])
    for writer in (mine, other):
        writer.start()
    try:
        order = stale_answers._order(stale_answers.ORDER)
        other.run(partial(operations.receive_order, payload=parse_order_submit(order), cause="c"))
        other.run(_toggle(0))
        overtaken_by: list[int] = []

        def overtaken(uow: UnitOfWork) -> Any:
            """Decides, then another process changes the same return before the save."""
            result = _authorize(uow)
            overtaken_by.append(len(overtaken_by) + 1)
            other.run(_toggle(len(overtaken_by)))
            return result

        with pytest.raises(StoreContended):
            mine.run(overtaken)
        assert (mine.stats.contended, mine.stats.conflicts, len(overtaken_by)) == (1, 4, 4)
        ret = stores[1].repository.get(return_uuid(stale_answers.RETURN))
        assert isinstance(ret, ReturnRequest)
        assert ret.details["rma"] is None, "nothing of the given-up command was stored"
        assert ret.version == 1 + 4, "the return's creation and the four overtaking updates"
    finally:
        for writer in (mine, other):
            writer.stop()
        for store in stores:
            store.close()


async def test_contention_is_a_503_with_retry_after_and_records_nothing(
    service: RunningService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await shipped_order(service)
    assert (await webhook(service, "return-request-update", return_update("R1")))[0] == 200
    before = len((await get(service, "/returns/R1/history"))["events"])

    def collide(pending: Any) -> None:
        """Every save meets a version another process wrote first (what the store raises)."""
        raise IntegrityError("version conflict")

    writer = service.services.writer
    given_up = writer.stats.contended
    monkeypatch.setattr(writer, "_save", collide)
    headers = {**service.auth, "X-Operator": "alice"}
    async with service.http.post(
        f"{service.url}/returns/R1/authorize", headers=headers, json={"rma": "RMA-1"}
    ) as r:
        body = await r.json()
        assert (r.status, r.headers.get("Retry-After")) == (503, "1")
        assert (body["errorCode"], body["status"]) == ("WRITE_CONTENDED", "503")
    monkeypatch.undo()
    assert writer.stats.contended == given_up + 1, "the real writer retried and gave up"
    assert len((await get(service, "/returns/R1/history"))["events"]) == before
    status, answer = await act(service, "/returns/R1/authorize", {"rma": "RMA-1"})
    assert status == 200, answer


async def test_a_validation_question_is_answered_even_when_its_step_cannot_be_recorded(
    service: RunningService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Commerce waits on the function webhook and does not retry it: contention costs the
    lifecycle step, never the answer."""
    await shipped_order(service)
    before = len((await get(service, "/orders/o20005/history"))["events"])

    async def contended(command: Any) -> Any:
        raise StoreContended(11)

    monkeypatch.setattr(service.services, "write", contended)
    question = {
        "context": "Initiate_Return",
        "returnRequests": [
            {
                "orderId": "o20005",
                "returnItemList": [
                    {"commerceItemId": "ci2000007", "shippingGroupId": "sg20005", "quantityToReturn": 1}
                ],
            }
        ],
    }
    status, answer = await webhook(service, "return-request-validation", question)
    assert status == 200, answer
    (item,) = answer["returnRequests"][0]["returnItemList"]
    assert (item["nonreturnable"], item["quantityAvailable"]) == (False, 2)
    monkeypatch.undo()
    assert len((await get(service, "/orders/o20005/history"))["events"]) == before
    assert service.services.counters[("validation_not_recorded", "/webhooks/return-request-validation")] == 1
    status, _ = await webhook(service, "return-request-validation", question)
    assert status == 200
    assert len((await get(service, "/orders/o20005/history"))["events"]) == before + 1, (
        "asked again, the step is recorded (the unrecorded answer was not remembered)"
    )
