"""Issue 18's scenario: are validation answers ever older than a write the asker already saw?

Process A (`serve`) receives Return Request Updates that move one return's
`quantityToReturn` between 2 and 1 on an order line with 2 shipped, so the truth
alternates between 0 and 1 available. Process B (`serve --role validation`, same
store) meanwhile records lifecycle steps for that order (Initiate_Return and
CalculateRefund_Return) and answers questions about other orders. Shortly after
each of A's 200s, B is asked Custom_Return for that line; its `quantityAvailable`
must be the truth. Shared by the test suite (a few hundred checks) and
`tests/bench/stale_answers.py` (a thousand and more).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiohttp import ClientSession, ClientTimeout

from tests.commerce_sim.seeds import seed_order_submit
from tests.serve_process import serve_process

ORDER, ITEM, GROUP, RETURN = "o20005", "ci2000007", "sg20005", "R-toggle"
OTHER_ORDERS = ("o-other-1", "o-other-2", "o-other-3")


def _order(order_id: str) -> dict[str, Any]:
    document = seed_order_submit()
    document["order"]["id"] = order_id
    document["order"]["creationTime"] = int(datetime.now(UTC).timestamp() * 1000)
    return document


def _return_update(quantity: int, revision: int = 0) -> dict[str, Any]:
    """`revision`: a new body from Commerce each time (one applied before is a redelivery)."""
    return {
        "return": {
            "comments": f"revision {revision}",
            "authorizationNumber": RETURN,
            "state": "PENDING_CUSTOMER_ACTION",
            "processName": "Return",
            "originatingOrderId": ORDER,
            "returnItemList": [
                {
                    "id": f"{RETURN}-1",
                    "commerceItemId": ITEM,
                    "shippingGroupId": GROUP,
                    "state": "INITIAL",
                    "quantityToReturn": quantity,
                }
            ],
        }
    }


def _question(context: str, order_id: str = ORDER, quantity: int = 1) -> dict[str, Any]:
    return {
        "context": context,
        "returnRequests": [
            {
                "orderId": order_id,
                "returnItemList": [
                    {"commerceItemId": ITEM, "shippingGroupId": GROUP, "quantityToReturn": quantity}
                ],
            }
        ],
    }


@dataclass
class Outcome:
    checks: int = 0
    stale: int = 0
    examples: list[str] = field(default_factory=list)
    background_questions: int = 0
    contended: int = 0
    background_errors: list[str] = field(default_factory=list)
    """What ended the validation process's other work early, if anything did."""
    """Deliveries answered 503 (other writers kept changing the order) and sent again."""


@contextlib.contextmanager
def serve(db: Path | str, port: int, log: Path, *extra: str) -> Iterator[str]:
    """`returnflow serve` in a process of its own; `db`: a SQLite file or a store URL."""
    with serve_process(db if isinstance(db, str) else f"sqlite:///{db}", port, log, *extra):
        yield f"http://127.0.0.1:{port}"


async def _post(http: ClientSession, url: str, document: Any) -> tuple[int, Any]:
    async with http.post(url, data=orjson.dumps(document), headers={"Content-Type": "application/json"}) as r:
        return r.status, orjson.loads(await r.read())


async def _ready(http: ClientSession, url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError):
            async with http.get(url + "/readyz") as r:
                if r.status == 200:
                    return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not become ready")
        await asyncio.sleep(0.1)


async def _set_up(http: ClientSession, main: str) -> None:
    for order_id in (ORDER, *OTHER_ORDERS):
        status, body = await _post(http, f"{main}/webhooks/order-submit", _order(order_id))
        assert status == 200, body
        status, body = await _post(http, f"{main}/orders/{order_id}/shipments", {"shippingGroupId": GROUP})
        assert status == 200, body


@contextlib.asynccontextmanager
async def _background(
    http: ClientSession, validator: str, outcome: Outcome, lifecycle_pause_s: float = 0.002
) -> AsyncIterator[None]:
    """B's other work: lifecycle steps for the toggled order (two, then a pause), questions about
    other orders."""
    stop = asyncio.Event()
    url = f"{validator}/webhooks/return-request-validation"

    async def lifecycle() -> None:
        contexts = ("Initiate_Return", "CalculateRefund_Return")
        while not stop.is_set():
            for context in contexts:
                await _post(http, url, _question(context))
                outcome.background_questions += 1
            await asyncio.sleep(lifecycle_pause_s)

    async def others() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            order_id = OTHER_ORDERS[n % len(OTHER_ORDERS)]
            await _post(http, url, _question("Initiate_Return", order_id, 1 + n % 2))
            outcome.background_questions += 1
            await asyncio.sleep(0.001)

    tasks = [asyncio.create_task(lifecycle()), asyncio.create_task(others())]
    try:
        yield
    finally:
        stop.set()
        ended = await asyncio.gather(*tasks, return_exceptions=True)
        outcome.background_errors += [repr(e) for e in ended if isinstance(e, BaseException)]


async def _deliver(http: ClientSession, url: str, document: Any, outcome: Outcome) -> None:
    """As Commerce delivers an event webhook: a 503 (writers contending) is sent again."""
    for _ in range(50):
        status, body = await _post(http, url, document)
        if status != 503:
            assert status == 200, body
            return
        outcome.contended += 1
        await asyncio.sleep(0.05)
    raise AssertionError(f"still contended after 50 deliveries: {body}")


async def run(
    main: str, validator: str, checks: int, delay_s: float = 0.05, lifecycle_pause_s: float = 0.002
) -> Outcome:
    """Toggle on A, ask B `delay_s` after each 200; count answers that missed A's write."""
    outcome = Outcome()
    async with ClientSession(timeout=ClientTimeout(total=30)) as http:
        await _ready(http, main)
        await _ready(http, validator)
        await _set_up(http, main)
        async with _background(http, validator, outcome, lifecycle_pause_s):
            for n in range(checks):
                quantity = 2 - n % 2
                await _deliver(
                    http, f"{main}/webhooks/return-request-update", _return_update(quantity, n), outcome
                )
                await asyncio.sleep(delay_s)
                status, answer = await _post(
                    http, f"{validator}/webhooks/return-request-validation", _question("Custom_Return")
                )
                assert status == 200, answer
                (item,) = answer["returnRequests"][0]["returnItemList"]
                outcome.checks += 1
                if item["quantityAvailable"] != 2 - quantity:
                    outcome.stale += 1
                    if len(outcome.examples) < 5:
                        outcome.examples.append(
                            f"check {n}: {item['quantityAvailable']} available, truth {2 - quantity}"
                        )
    return outcome
