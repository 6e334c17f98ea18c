"""An exchange driven as Commerce and the warehouse drive it, on the seed-shaped exchange payload
(docs/examples/return-request-update-exchange.json), and what Commerce must end with."""

from __future__ import annotations

import copy
from typing import Any

from tests.commerce_sim.server import CommerceSimulator
from tests.e2e.scenario import Driver, wait_for
from tests.integration.test_exchanges_http import exchange

RETURN = "100004"
ORDER = "o30430"
REPLACEMENT = "o30431"


def seed_commerce(sim: CommerceSimulator, document: dict[str, Any]) -> None:
    """What Commerce holds before Returnflow says anything: both orders and the exchange."""
    ret = copy.deepcopy(document["return"])
    for order in (ret.pop("originatingOrder"), ret.pop("replacementOrder")):
        sim.seed_order(
            {
                "id": order["id"],
                "state": order["state"],
                "shippingGroups": [
                    {"id": g["id"], "state": g["state"], "shippingMethod": g["shippingMethod"]}
                    for g in order["shippingGroups"]
                ],
                "paymentGroups": [
                    {**{k: p[k] for k in ("id", "paymentMethod", "amount")}, "amountCredited": 0}
                    for p in order["paymentGroups"]
                ],
            }
        )
    ret["returnItemList"] = [
        {
            "id": i["id"],
            "commerceItemId": i["commerceItem"]["id"],
            "shippingGroupId": i["shippingGroupId"],
            "state": i["state"],
            "quantityToReturn": i["quantityToReturn"],
            "quantityToExchange": i["quantityToExchange"],
            "returnReason": i["returnReason"],
        }
        for i in ret["returnItemList"]
    ]
    sim.seed_return(ret)


def credits_to(sim: CommerceSimulator, order_id: str) -> list[Any]:
    """Every paymentGroups list Commerce was sent for the order (none: nothing credited)."""
    return [
        c.body["paymentGroups"]
        for c in sim.puts(f"/ccadmin/v1/orders/{order_id}")
        if "paymentGroups" in c.body
    ]


def completed(sim: CommerceSimulator) -> bool:
    return sim.returns.get(RETURN, {}).get("state") == "COMPLETE"


async def even_exchange(driver: Driver, sim: CommerceSimulator) -> None:
    """The even swap: Commerce is told COMPLETE, with no refund and no credit anywhere."""
    document = exchange()
    seed_commerce(sim, document)
    await driver.webhook("return-request-update", document)
    await driver.act(f"/returns/{RETURN}/authorize", {"rma": "RMA-100004"})
    ret = await driver.act(f"/returns/{RETURN}/receive", {"items": [{"returnItemId": RETURN, "quantity": 1}]})
    assert ret["state"] == "COMPLETE", ret
    await driver.act(
        f"/orders/{REPLACEMENT}/shipments", {"shippingGroupId": "sg40431", "trackingNumber": "1ZX"}
    )
    await wait_for(lambda: completed(sim), 60, "Commerce to hold the exchange complete")
    await wait_for(
        lambda: sim.orders[REPLACEMENT]["shippingGroups"][0]["state"] == "NO_PENDING_ACTION",
        60,
        "Commerce to hold the replacement shipped",
    )
    held = sim.returns[RETURN]
    assert held["authorizationNumber"] == "RMA-100004"
    (item,) = held["returnItemList"]
    assert (item["state"], item["quantityReceived"], item["refundAmount"]) == ("RETURNED", 1, 0)
    assert (item["actualTaxRefundShare"], item["actualShippingRefundShare"]) == (0, 0)
    assert [m["amount"] for m in held["refundMethodList"]] == [0]
    assert credits_to(sim, ORDER) == [] and credits_to(sim, REPLACEMENT) == [], "no credit at all"
    for order in (ORDER, REPLACEMENT):
        assert all(p["amountCredited"] == 0 for p in sim.orders[order]["paymentGroups"])
    assert [c.status for c in sim.puts() if c.status >= 400 and not c.fault] == []


async def cheaper_exchange(driver: Driver, sim: CommerceSimulator) -> None:
    """The replacement costs 24.99 + 1.56 tax: exactly the 5.33 difference is credited."""
    document = exchange(amount=24.99, tax=1.56)
    seed_commerce(sim, document)
    await driver.webhook("return-request-update", document)
    await driver.act(f"/returns/{RETURN}/authorize", {"rma": "RMA-100004"})
    await driver.act(f"/returns/{RETURN}/receive", {"items": [{"returnItemId": RETURN, "quantity": 1}]})
    await driver.act(f"/returns/{RETURN}/refund", {"action": "initiate"})
    await driver.act(f"/returns/{RETURN}/refund", {"action": "settle"})
    await wait_for(lambda: completed(sim), 60, "Commerce to hold the exchange complete")
    await wait_for(lambda: bool(credits_to(sim, ORDER)), 60, "Commerce to be told the credit")
    assert sim.orders[ORDER]["paymentGroups"][0]["amountCredited"] == 5.33
    assert credits_to(sim, ORDER)[-1] == [{"id": "pg30412", "amountCredited": 5.33}]
    (item,) = sim.returns[RETURN]["returnItemList"]
    assert (item["refundAmount"], item["actualTaxRefundShare"]) == (5.01, 0.32)
    assert [m["amount"] for m in sim.returns[RETURN]["refundMethodList"]] == [5.33]
