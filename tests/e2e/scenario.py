"""A whole return, driven the way Commerce and the warehouse drive it, plus what Commerce should end with."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import ClientSession

from tests.commerce_sim.seeds import seed_order_submit
from tests.commerce_sim.server import CommerceSimulator
from tests.commerce_sim.webhook_sender import sign

SECRET = "c2NlbmFyaW8tc2VjcmV0"
TOKEN = "scenario-token"


def order_document(n: int) -> dict[str, Any]:
    document = seed_order_submit()
    order = document["order"]
    order["id"] = f"o{n}"
    order["creationTime"] = int(datetime.now(UTC).timestamp() * 1000)
    order["paymentGroups"].append(
        {"id": f"pg{n}-gift", "paymentMethod": "giftCard", "amount": 0, "currencyCode": "USD", "state": 1}
    )
    return document


def return_document(n: int) -> dict[str, Any]:
    return {
        "return": {
            "authorizationNumber": f"R{n}",
            "state": "PENDING_CUSTOMER_ACTION",
            "processName": "Return",
            "originatingOrderId": f"o{n}",
            "returnItemList": [
                {
                    "id": f"R{n}-1",
                    "commerceItemId": "ci2000007",
                    "shippingGroupId": "sg20005",
                    "state": "INITIAL",
                    "quantityToReturn": 2,
                    "returnReason": "defective",
                }
            ],
        }
    }


def commerce_holds(n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The order and the return Commerce already holds before Returnflow says anything: the
    return item as Commerce keeps it (its own id, the quantity, the shopper's reason)."""
    order = order_document(n)["order"]
    return (
        {
            "id": order["id"],
            "state": "SUBMITTED",
            "shippingGroups": [{"id": "sg20005", "state": "INITIAL", "shippingMethod": "ground"}],
            "paymentGroups": [
                {
                    "id": p["id"],
                    "paymentMethod": p["paymentMethod"],
                    "amount": p["amount"],
                    "amountCredited": 0,
                }
                for p in order["paymentGroups"]
            ],
        },
        {
            "authorizationNumber": f"R{n}",
            "state": "PENDING_CUSTOMER_ACTION",
            "agentId": "service",
            "returnItemList": [
                {
                    "id": f"R{n}-1",
                    "commerceItemId": "ci2000007",
                    "shippingGroupId": "sg20005",
                    "state": "INITIAL",
                    "quantityToReturn": 2,
                    "returnReason": "defective",
                }
            ],
        },
    )


def seed_commerce(sim: CommerceSimulator, n: int) -> None:
    order, return_request = commerce_holds(n)
    sim.seed_order(order)
    sim.seed_return(return_request)


class Driver:
    def __init__(self, http: ClientSession, url: str) -> None:
        self.http = http
        self.url = url

    async def webhook(self, path: str, document: Any) -> Any:
        body = orjson.dumps(document)
        headers = {"X-Oracle-CC-WebHook-Signature": sign(body, SECRET)}
        async with self.http.post(f"{self.url}/webhooks/{path}", data=body, headers=headers) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    async def act(self, path: str, body: Any) -> Any:
        headers = {"Authorization": f"Bearer {TOKEN}", "X-Operator": "e2e"}
        async with self.http.post(self.url + path, data=orjson.dumps(body), headers=headers) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    async def order_and_return(self, n: int) -> None:
        """Order Submit, shipment, the return contexts and the Return Request Update."""
        await self.webhook("order-submit", order_document(n))
        await self.act(f"/orders/o{n}/shipments", {"shippingGroupId": "sg20005", "trackingNumber": f"1Z{n}"})
        for context in ("Initiate_Return", "CalculateRefund_Return", "Submit_Return"):
            await self.webhook(
                "return-request-validation",
                {
                    "context": context,
                    "returnRequests": [
                        {
                            "orderId": f"o{n}",
                            "returnItemList": [
                                {
                                    "commerceItemId": "ci2000007",
                                    "shippingGroupId": "sg20005",
                                    "quantityToReturn": 2,
                                }
                            ],
                        }
                    ],
                },
            )
        await self.webhook("return-request-update", return_document(n))

    async def warehouse_and_refund(self, n: int) -> None:
        await self.act(f"/returns/R{n}/authorize", {"rma": f"RMA{n}"})
        await self.act(f"/returns/R{n}/receive", {"items": [{"commerceItemId": "ci2000007", "quantity": 1}]})
        await self.act(f"/returns/R{n}/receive", {"items": [{"commerceItemId": "ci2000007", "quantity": 1}]})
        await self.act(f"/returns/R{n}/refund", {"action": "initiate"})
        await self.act(f"/returns/R{n}/refund", {"action": "settle"})

    async def full(self, n: int) -> None:
        await self.order_and_return(n)
        await self.warehouse_and_refund(n)


def commerce_done(sim: CommerceSimulator, n: int) -> bool:
    return settled_in(sim.orders, sim.returns, n)


def settled_in(orders: dict[str, Any], returns: dict[str, Any], n: int) -> bool:
    """Commerce holds return n complete and the card credited."""
    ret = returns.get(f"R{n}", {})
    order = orders.get(f"o{n}", {})
    credited = {p["id"]: p.get("amountCredited") for p in order.get("paymentGroups", [])}
    return ret.get("state") == "COMPLETE" and credited.get("pg20005") == 268.4


def assert_commerce_holds_the_return(sim: CommerceSimulator, n: int) -> None:
    """What Commerce ends with: our figures on its own members, nothing of its own erased, and
    no call it refused for its shape (a 400 the test did not inject)."""
    for path in (f"/ccadmin/v1/returnRequests/R{n}", f"/ccadmin/v1/orders/o{n}"):
        assert [c.body for c in sim.calls_to(path, "PUT") if c.status == 400 and not c.fault] == []
    ret = sim.returns[f"R{n}"]
    assert ret["state"] == "COMPLETE"
    assert ret["authorizationNumber"] == f"RMA{n}"
    assert ret["agentId"] == "service", "what we do not send is kept"
    assert ret["returnItemList"] == [
        {
            "id": f"R{n}-1",
            "commerceItemId": "ci2000007",
            "shippingGroupId": "sg20005",
            "quantityToReturn": 2,
            "returnReason": "defective",
            "state": "RETURNED",
            "quantityReceived": 2,
            "refundAmount": 261.9,
            "actualTaxRefundShare": 0.0,
            "actualShippingRefundShare": 6.5,
            "actualShippingSurchargeRefundShare": 0.0,
        }
    ]
    assert (ret["actualShippingRefund"], ret["shippingTaxRefund"]) == (6.5, 0.0)
    assert "totalRefundAmount" not in ret, "Commerce derives its totals"
    order = sim.orders[f"o{n}"]
    assert order["state"] == "NO_PENDING_ACTION"
    groups = {p["id"]: p for p in order["paymentGroups"]}
    assert set(groups) == {"pg20005", f"pg{n}-gift"}, "no payment group lost"
    assert groups["pg20005"]["amountCredited"] == 268.4
    assert groups["pg20005"]["amount"] == 297.5, "members are merged, not rewritten"
    assert groups[f"pg{n}-gift"]["amountCredited"] == 0
    assert order["shippingGroups"][0]["state"] == "NO_PENDING_ACTION"
    assert order["shippingGroups"][0]["trackingNumber"] == f"1Z{n}"
    assert order["shippingGroups"][0]["shippingMethod"] == "ground"


def credits_sent(sim: CommerceSimulator, n: int) -> list[float]:
    """Every amountCredited Commerce was told for the card, in order (absolute values)."""
    return [
        p["amountCredited"]
        for call in sim.puts(f"/ccadmin/v1/orders/o{n}")
        for p in call.body.get("paymentGroups", [])
        if p["id"] == "pg20005"
    ]


async def wait_for(predicate: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or predicate}")
