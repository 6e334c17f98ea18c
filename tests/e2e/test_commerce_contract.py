"""The Commerce contract end to end (issue 13): calls a documented Commerce accepts, nothing erased.

Embedded mode against the simulator built from the seed documents, which refuses any field the
documented body lacks, matches return items by commerceItemId + shippingGroupId and lets a test
play the agent between our calls.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from tests.commerce_sim.server import API, CommerceSimulator
from tests.e2e.scenario import Driver, order_document, return_document, seed_commerce, wait_for
from tests.e2e.test_sync_kafka import serving

CARD = "pg20005"


def return_with_order(
    n: int,
    *,
    quantity: int = 2,
    authorization: str | None = None,
    item_state: str = "INITIAL",
    methods: list[dict[str, Any]] | None = None,
    modified_after: int = 1000,
) -> dict[str, Any]:
    """A Return Request Update carrying its originating order as the documented sample does
    (no `amountCredited`: what Commerce credited is read from Commerce)."""
    document = return_document(n)
    ret = document["return"]
    order = order_document(n)["order"]
    order["lastModifiedTime"] += modified_after
    del ret["originatingOrderId"]
    ret["originatingOrder"] = order
    ret["authorizationNumber"] = authorization or f"R{n}"
    ret["returnItemList"][0].update(quantityToReturn=quantity, state=item_state)
    if methods is not None:
        ret["refundMethodList"] = methods
    return document


def credited_at_commerce(sim: CommerceSimulator, n: int, group_id: str = CARD) -> Any:
    groups = {p["id"]: p for p in sim.orders[f"o{n}"]["paymentGroups"]}
    return groups[group_id].get("amountCredited")


def refused(sim: CommerceSimulator) -> list[Any]:
    return [(c.path, c.status, c.body) for c in sim.calls_to(API, "PUT") if c.status != 200]


async def ship(driver: Driver, n: int) -> None:
    await driver.webhook("order-submit", order_document(n))
    await driver.act(f"/orders/o{n}/shipments", {"shippingGroupId": "sg20005", "trackingNumber": f"1Z{n}"})


async def test_agent_credit_on_a_payment_group_is_kept_and_ours_added(tmp_path: Path) -> None:
    """Issue 13 item 4 and issue 21 item 2: amountCredited was computed from zero, then from the
    webhook's figure, which the documented samples never carry; it is read from Commerce."""
    async with CommerceSimulator() as sim:
        seed_commerce(sim, 21)
        async with serving(tmp_path / "rf.db", None, commerce_url=sim.url) as driver:
            await ship(driver, 21)
            sim.agent_credit("o21", CARD, 5.0)
            await driver.webhook("return-request-update", return_with_order(21, quantity=1))
            await driver.act("/returns/R21/authorize", {"rma": "RMA21"})
            await driver.act(
                "/returns/R21/receive", {"items": [{"commerceItemId": "ci2000007", "quantity": 1}]}
            )
            await driver.act("/returns/R21/refund", {"action": "initiate"})
            await driver.act("/returns/R21/refund", {"action": "settle"})
            await wait_for(lambda: credited_at_commerce(sim, 21) != 5.0, 30, "the credit")
        assert credited_at_commerce(sim, 21) == 5.0 + 130.95
        order_puts = [c.body for c in sim.puts("/ccadmin/v1/orders/o21")]
        assert [sorted(b) for b in order_puts] == [["shippingGroups", "state"], ["paymentGroups"]]
        await wait_for(lambda: sim.returns["R21"]["state"] == "COMPLETE", 30, "completion")
        assert refused(sim) == []


async def test_commerces_refund_methods_are_kept_and_an_rma_maps_back(tmp_path: Path) -> None:
    """Issue 13 items 2 and 3: Commerce's manualRefund (and an agent's gift card) survive our
    refund; an update keyed by the RMA we issued is the same return, PUTs keep its id."""
    manual = {"refundType": "manualRefund", "amount": 0, "maximumRefundAmount": -1}
    gift = {"refundType": "giftCard", "amount": 0, "state": "INCOMPLETE"}
    async with CommerceSimulator() as sim:
        seed_commerce(sim, 22)
        sim.agent_add_refund_method("R22", {**manual, "state": "INCOMPLETE"})
        async with serving(tmp_path / "rf.db", None, commerce_url=sim.url) as driver:
            await ship(driver, 22)
            await driver.webhook("return-request-update", return_with_order(22, methods=[manual]))
            await driver.act("/returns/R22/authorize", {"rma": "RMA22"})
            await wait_for(
                lambda: sim.returns["R22"].get("authorizationNumber") == "RMA22", 30, "the RMA at Commerce"
            )
            sim.agent_add_refund_method("R22", gift)
            receipt = await driver.webhook(
                "return-request-update",
                return_with_order(
                    22,
                    authorization="RMA22",
                    item_state="AWAITING_RETURN",
                    methods=[manual, gift],
                    modified_after=2000,
                ),
            )
            assert (receipt["id"], receipt["status"]) == ("R22", "updated")
            for _ in range(2):
                await driver.act(
                    "/returns/R22/receive", {"items": [{"commerceItemId": "ci2000007", "quantity": 1}]}
                )
            await driver.act("/returns/R22/refund", {"action": "initiate"})
            await driver.act("/returns/R22/refund", {"action": "settle"})
            await wait_for(lambda: sim.returns["R22"]["state"] == "COMPLETE", 30, "completion")
            async with driver.http.get(
                f"{driver.url}/returns/RMA22", headers={"Authorization": "Bearer scenario-token"}
            ) as r:
                assert r.status == 404, "no second return"
        methods = sim.returns["R22"]["refundMethodList"]
        assert [m["refundType"] for m in methods] == ["manualRefund", "giftCard"]
        assert methods[0] == {**manual, "state": "INCOMPLETE"}, "two methods: Commerce's split kept"
        assert methods[1] == gift
        assert {c.path for c in sim.puts()} == {"/ccadmin/v1/returnRequests/R22", "/ccadmin/v1/orders/o22"}
        assert refused(sim) == []


async def test_op_flavour_sends_operations_and_never_credits_twice(tmp_path: Path) -> None:
    """Issue 13 item 7: the op flavour could not be chosen, was mis-cased, and credited payment
    groups while Commerce refunded too."""
    async with CommerceSimulator(flavour="op") as sim:
        seed_commerce(sim, 23)
        async with serving(tmp_path / "rf.db", None, commerce_url=sim.url, flavour="op") as driver:
            await driver.full(23)
            await wait_for(lambda: sim.returns["R23"]["state"] == "COMPLETE", 30, "completion")
        ops = [c.body["op"] for c in sim.puts("/ccadmin/v1/returnRequests/R23")]
        assert ops[-3:] == ["adjustRefundAmounts", "initiateRefund", "markAsComplete"]
        assert set(ops[:-3]) == {"receiveReturns"}
        assert [r.return_id for r in sim.issued_refunds] == ["R23"], "Commerce refunded, once"
        assert credited_at_commerce(sim, 23) == 0, "Commerce refunded; we credited nothing"
        assert refused(sim) == []


async def test_every_classic_call_is_one_a_documented_commerce_accepts(tmp_path: Path) -> None:
    """Issue 13 item 1: members carried `id`, `quantityToReturn`, `returnShipmentRequired`;
    the RMA went out as `rma` and the derived `totalRefundAmount` was sent."""
    async with CommerceSimulator() as sim:
        seed_commerce(sim, 24)
        before = copy.deepcopy(sim.returns["R24"]["returnItemList"][0])
        async with serving(tmp_path / "rf.db", None, commerce_url=sim.url) as driver:
            await driver.full(24)
            await wait_for(
                lambda: sim.returns["R24"]["state"] == "COMPLETE" and credited_at_commerce(sim, 24) == 268.4,
                30,
                "completion",
            )
        assert refused(sim) == []
        item = sim.returns["R24"]["returnItemList"][0]
        assert {k: item[k] for k in before if k != "state"} == {
            k: v for k, v in before.items() if k != "state"
        }
        for call in sim.puts("/ccadmin/v1/returnRequests/R24"):
            assert "rma" not in call.body and "totalRefundAmount" not in call.body
            for member in call.body["returnItemList"]:
                assert {"commerceItemId", "shippingGroupId"} <= set(member)
                assert not {"id", "quantityToReturn", "returnShipmentRequired"} & set(member)


async def test_an_agents_state_change_stands_and_is_not_overwritten(tmp_path: Path) -> None:
    """Issue 13 item 6 end to end: the agent completes the return in Commerce (refunded in the
    console, goods never received); the update is recorded as an override (it was answered 409
    and lost), and nothing we send undoes it."""
    async with CommerceSimulator() as sim:
        seed_commerce(sim, 25)
        async with serving(tmp_path / "rf.db", None, commerce_url=sim.url) as driver:
            await ship(driver, 25)
            await driver.webhook("return-request-update", return_with_order(25))
            await driver.act("/returns/R25/authorize", {"rma": "RMA25"})
            await wait_for(
                lambda: sim.returns["R25"].get("authorizationNumber") == "RMA25", 30, "the RMA at Commerce"
            )
            sim.agent_set_state("R25", "COMPLETE")
            closed = return_with_order(
                25, authorization="RMA25", item_state="AWAITING_RETURN", modified_after=2000
            )
            closed["return"]["state"] = "COMPLETE"
            receipt = await driver.webhook("return-request-update", closed)
            assert (receipt["id"], receipt["status"]) == ("R25", "overridden")
            async with driver.http.post(
                f"{driver.url}/returns/R25/receive",
                data=b'{"items": [{"commerceItemId": "ci2000007", "quantity": 1}]}',
                headers={"Authorization": "Bearer scenario-token"},
            ) as r:
                assert r.status == 409, "a return Commerce completed takes no receipt"
            calls = len(sim.puts())
        assert sim.returns["R25"]["state"] == "COMPLETE"
        assert len(sim.puts()) == calls, "the echo of Commerce's own change is not sent back"


async def test_a_refund_method_an_agent_added_unreported_is_not_erased(tmp_path: Path) -> None:
    """The list replaces Commerce's: a method no webhook has told us of yet is read back first."""
    manual = {"refundType": "manualRefund", "amount": 0, "maximumRefundAmount": -1}
    gift = {"refundType": "giftCard", "amount": 0, "state": "INCOMPLETE"}
    async with CommerceSimulator() as sim:
        seed_commerce(sim, 26)
        sim.agent_add_refund_method("R26", dict(manual))
        async with serving(tmp_path / "rf.db", None, commerce_url=sim.url) as driver:
            await ship(driver, 26)
            await driver.webhook("return-request-update", return_with_order(26, methods=[manual]))
            await driver.act("/returns/R26/authorize", {"rma": "RMA26"})
            sim.agent_add_refund_method("R26", gift)
            for _ in range(2):
                await driver.act(
                    "/returns/R26/receive",
                    {"items": [{"commerceItemId": "ci2000007", "quantity": 1}]},
                )
            await driver.act("/returns/R26/refund", {"action": "initiate"})
            await wait_for(lambda: sim.returns["R26"]["state"] == "PENDING_REFUND", 30, "refund")
        methods = sim.returns["R26"]["refundMethodList"]
        assert methods == [manual, gift], "two methods, no documented way to split: Commerce's kept"
        assert sim.calls_to("/ccadmin/v1/returnRequests/R26", "GET"), "read just before"
        assert refused(sim) == []
