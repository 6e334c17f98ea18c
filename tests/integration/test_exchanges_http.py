"""Exchanges over real HTTP (SPEC section 9) on the seed-shaped exchange payload
(docs/examples/return-request-update-exchange.json: one of the seed's units, 30.00 + 1.88 tax,
swapped for another edition at the same price, the replacement order o30431 embedded)."""

from __future__ import annotations

import copy
import re
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession, CookieJar

from tests.conftest import RunningService
from tests.integration.test_audit_replay import run
from tests.integration.test_console_http import sign_in
from tests.integration.test_operator_api import act, get, return_update, shipped_order, validation, webhook
from tests.integration.test_try_it import example


def exchange(**replacement_price: Any) -> dict[str, Any]:
    """The example exchange; `amount`/`tax`/`shipping`/`shippingTax` reprice the replacement."""
    document = copy.deepcopy(example("return-request-update-exchange.json"))
    replacement = document["return"]["replacementOrder"]
    item = replacement["commerceItems"][0]
    if "amount" in replacement_price:
        item["priceInfo"]["amount"] = replacement_price["amount"]
        item["priceInfo"]["currentPriceDetailsSorted"][0]["amount"] = replacement_price["amount"]
    if "tax" in replacement_price:
        item["priceInfo"]["currentPriceDetailsSorted"][0]["tax"] = replacement_price["tax"]
    group = replacement["shippingGroups"][0]["priceInfo"]
    group["amount"] = replacement_price.get("shipping", group["amount"])
    group["shippingTax"] = replacement_price.get("shippingTax", group["shippingTax"])
    return document


async def received(service: RunningService, document: dict[str, Any]) -> dict[str, Any]:
    """The exchange taken in, authorized and its one unit received: the return as then."""
    assert (await webhook(service, "return-request-update", document))[0] == 200
    status, _ = await act(service, "/returns/100004/authorize", {"rma": "RMA-100004"})
    assert status == 200
    status, ret = await act(
        service,
        "/returns/100004/receive",
        {"items": [{"returnItemId": "100004", "quantity": 1}]},
        "warehouse",
    )
    assert status == 200, ret
    return dict(ret)


async def credited(service: RunningService) -> str:
    order = await get(service, "/orders/o30430")
    return str(order["paymentGroups"][0]["amountCredited"])


async def test_even_exchange_completes_by_itself_and_credits_nothing(service: RunningService) -> None:
    ret = await received(service, exchange())
    assert ret["state"] == "COMPLETE"
    assert ret["refundPlan"]["total"] == "0.00" and ret["refundPlan"]["payments"] == {"pg30412": "0.00"}
    figures = ret["refundPlan"]["exchange"]
    assert (figures["returnedValue"], figures["replacementValue"], figures["difference"]) == (
        "31.88",
        "31.88",
        "0.00",
    )
    assert figures["basis"] == "replacementOrder" and figures["replacementOrderId"] == "o30431"
    last = (await get(service, "/returns/100004/history"))["events"][-1]
    assert (last["type"], last["trigger"], last["from"], last["to"]) == (
        "ReturnRequest.ExchangeCompleted",
        "complete_exchange",
        "FULL_RETURN",
        "COMPLETE",
    )
    assert last["cause"].startswith("no refund owed on exchange 100004"), last["cause"]
    assert "an even exchange" in last["cause"]
    assert last["after"].startswith("sha256:"), "what brought the goods in is kept"
    assert await credited(service) == "0.00"

    before = service.events_stored()
    for action in ("initiate", "manual", "settle"):
        status, error = await act(service, "/returns/100004/refund", {"action": action}, "bob")
        assert (status, error["errorCode"], error["status"]) == (409, "NO_REFUND_OWED", "409"), error
        assert "no refund owed on exchange 100004" in error["message"]
        assert error["state"] == "COMPLETE" and error["allowedTriggers"] == []
    assert service.events_stored() == before


async def test_a_refund_before_the_goods_are_in_is_refused_with_the_reason(service: RunningService) -> None:
    assert (await webhook(service, "return-request-update", exchange()))[0] == 200
    before = service.events_stored()
    status, error = await act(service, "/returns/100004/refund", {"action": "initiate"}, "bob")
    assert (status, error["errorCode"], error["state"]) == (409, "NO_REFUND_OWED", "PENDING_CUSTOMER_ACTION")
    assert "an even exchange" in error["message"]
    assert service.events_stored() == before


async def test_cheaper_replacement_refunds_exactly_the_difference(service: RunningService) -> None:
    """30.00 + 1.88 tax back for 24.99 + 1.56 tax: 5.01 on the item and 0.32 on the tax."""
    ret = await received(service, exchange(amount=24.99, tax=1.56))
    assert ret["state"] == "FULL_RETURN", "money is owed to the shopper: the refund flow follows"
    status, ret = await act(service, "/returns/100004/refund", {"action": "initiate"}, "bob")
    assert (status, ret["state"]) == (200, "PENDING_REFUND"), ret
    plan = ret["refundPlan"]
    assert (plan["source"], plan["total"], plan["payments"]) == ("exchange", "5.33", {"pg30412": "5.33"})
    calculation = plan["calculation"]
    assert (calculation["item_total"], calculation["tax_total"], calculation["shipping_total"]) == (
        "5.01",
        "0.32",
        "0.00",
    )
    assert plan["exchange"]["difference"] == "5.33" and plan["exchange"]["owedByShopper"] == "0.00"
    status, ret = await act(service, "/returns/100004/refund", {"action": "settle"}, "bob")
    assert (status, ret["state"], ret["credited"]) == (200, "COMPLETE", {"pg30412": "5.33"})
    assert await credited(service) == "5.33"


async def test_dearer_replacement_refunds_nothing_and_reports_what_the_shopper_owes(
    service: RunningService,
) -> None:
    """30.00 + 1.88 back for 39.99 + 2.50 tax + 4.95 shipping: the shopper owes 15.56."""
    ret = await received(service, exchange(amount=39.99, tax=2.50, shipping=4.95))
    assert ret["state"] == "COMPLETE"
    figures = ret["refundPlan"]["exchange"]
    assert (figures["difference"], figures["owedByShopper"], ret["refundPlan"]["total"]) == (
        "-15.56",
        "15.56",
        "0.00",
    )
    last = (await get(service, "/returns/100004/history"))["events"][-1]
    assert "the shopper owes 15.56 USD" in last["cause"]
    assert await credited(service) == "0.00"


async def test_unpriced_replacement_takes_commerces_own_figures(service: RunningService) -> None:
    """No prices on the replacement: Commerce's totalRefundAmount (here 7.50) stands."""
    document = exchange()
    for item in document["return"]["replacementOrder"]["commerceItems"]:
        del item["priceInfo"]
    document["return"]["totalRefundAmount"] = 7.50
    ret = await received(service, document)
    assert ret["state"] == "FULL_RETURN"
    status, ret = await act(service, "/returns/100004/refund", {"action": "initiate"}, "bob")
    assert status == 200, ret
    plan = ret["refundPlan"]
    assert (plan["total"], plan["exchange"]["basis"]) == ("7.50", "commerce")
    shares = plan["calculation"]
    assert shares["item_total"] == "7.06" and shares["tax_total"] == "0.44", "Commerce's 30 + 1.88, pro rata"


async def test_replacement_order_is_an_order_of_its_own_linked_both_ways(service: RunningService) -> None:
    assert (await webhook(service, "return-request-update", exchange()))[0] == 200
    replacement = await get(service, "/orders/o30431")
    assert replacement["exchangeOf"] == {"orderId": "o30430", "returnId": "100004"}
    assert replacement["origin"] == "exchange"
    assert [i["id"] for i in replacement["commerceItems"]] == ["ci3000440"]
    original = await get(service, "/orders/o30430")
    assert original["replacementOrders"] == [{"orderId": "o30431", "returnId": "100004"}]
    before = service.events_stored()
    assert (await webhook(service, "return-request-update", exchange()))[0] == 200
    assert service.events_stored() == before, "the same update links nothing twice"

    status, shipped = await act(
        service,
        "/orders/o30431/shipments",
        {"shippingGroupId": "sg40431", "trackingNumber": "1ZX"},
        "warehouse",
    )
    assert (status, shipped["shippingGroups"][0]["state"]) == (200, "NO_PENDING_ACTION"), shipped
    status, answer = await webhook(
        service,
        "return-request-validation",
        {
            "context": "Initiate_Return",
            "returnRequests": [
                {
                    "orderId": "o30431",
                    "returnItemList": [{"commerceItemId": "ci3000440", "quantityToReturn": 1}],
                }
            ],
        },
    )
    assert (status, answer["returnRequests"][0]["nonreturnable"]) == (200, False), answer
    later = {
        "return": {
            "authorizationNumber": "100005",
            "state": "PENDING_CUSTOMER_ACTION",
            "processName": "Return",
            "originatingOrderId": "o30431",
            "returnItemList": [
                {"id": "100005", "commerceItemId": "ci3000440", "state": "INITIAL", "quantityToReturn": 1}
            ],
        }
    }
    assert (await webhook(service, "return-request-update", later))[0] == 200
    status, ret = await act(
        service, "/returns/100005/receive", {"items": [{"commerceItemId": "ci3000440", "quantity": 1}]}
    )
    assert status == 409, "the item must be authorized first"
    await act(service, "/returns/100005/authorize", {})
    status, ret = await act(
        service, "/returns/100005/receive", {"items": [{"commerceItemId": "ci3000440", "quantity": 1}]}
    )
    assert (status, ret["state"], ret["orderId"]) == (200, "FULL_RETURN", "o30431")
    assert (await get(service, "/orders/o30431"))["returnIds"] == ["100005"]


async def two_exchanges(service: RunningService, receive: tuple[str, ...], ship: bool = True) -> None:
    """Order o20005 shipped, exchanges X1 and X2 of one jacket each, `receive` of them received."""
    if ship:
        await shipped_order(service)
    for context in ("Initiate_Exchange", "Submit_Exchange"):
        assert (await webhook(service, "return-request-validation", validation(context, 1)))[0] == 200
    for rid in ("X1", "X2"):
        assert (await webhook(service, "return-request-update", return_update(rid, "Exchange", 1)))[0] == 200
        await act(service, f"/returns/{rid}/authorize", {})
    for rid in receive:
        status, _ = await act(
            service, f"/returns/{rid}/receive", {"items": [{"commerceItemId": "ci2000007", "quantity": 1}]}
        )
        assert status == 200


async def process(service: RunningService, rid: str | None) -> dict[str, Any]:
    status, answer = await webhook(
        service, "return-request-validation", validation("Process_Exchange", 1, rid)
    )
    assert status == 200
    return dict(answer["returnRequests"][0])


async def test_process_exchange_without_an_id_is_refused_when_it_is_ambiguous(
    service: RunningService,
) -> None:
    await two_exchanges(service, ("X1", "X2"))
    before = len((await get(service, "/orders/o20005/history"))["events"])
    answer = await process(service, None)
    assert answer["nonreturnable"] is True
    assert (
        "2 exchanges with their goods received (X1, X2): name the one to fulfil"
        in answer["nonReturnableReason"]
    )
    assert len((await get(service, "/orders/o20005/history"))["events"]) == before, (
        "a refusal records nothing"
    )
    named = await process(service, "X2")
    assert named["nonreturnable"] is False and named["additionalProperties"]["exchangeId"] == "X2"
    event = (await get(service, "/orders/o20005/history"))["events"][-1]
    assert (event["trigger"], event["answer"]["returnId"]) == ("process_exchange", "X2")


async def test_process_exchange_without_an_id_approves_the_one_received(service: RunningService) -> None:
    await two_exchanges(service, ("X1",))
    answer = await process(service, None)
    assert answer["nonreturnable"] is False, answer
    assert answer["additionalProperties"]["exchangeId"] == "X1"
    waiting = await process(service, "X2")
    assert waiting["nonreturnable"] is True
    assert waiting["additionalProperties"]["errorCode"] == "ILLEGAL_TRANSITION"


async def test_process_exchange_naming_a_return_is_refused(service: RunningService) -> None:
    await two_exchanges(service, ())
    assert (await webhook(service, "return-request-update", return_update("R9", "Return", 1)))[0] == 200
    await act(service, "/returns/R9/authorize", {})
    await act(service, "/returns/R9/receive", {"items": [{"commerceItemId": "ci2000007", "quantity": 1}]})
    answer = await process(service, "R9")
    assert answer["nonreturnable"] is True
    assert answer["nonReturnableReason"] == "R9 is a return (Return), not an exchange: nothing to fulfil"
    unknown = await process(service, "X404")
    assert unknown["nonReturnableReason"] == "Order o20005 has no exchange X404"


def assert_strings_only(answer: dict[str, Any]) -> None:
    for request in answer["returnRequests"]:
        maps = [
            request["additionalProperties"],
            *(i["additionalProperties"] for i in request["returnItemList"]),
        ]
        for values in maps:
            assert all(isinstance(v, str) for v in values.values()), values


async def test_validation_answers_hold_strings_only_in_additional_properties(service: RunningService) -> None:
    """Verdicts, refusals, refund figures and Commerce's own echoed properties alike."""
    await shipped_order(service)
    asked = [("Initiate_Return", None), ("CalculateRefund_Return", None), ("Submit_Return", None)]
    asked += [("Process_Exchange", "X1"), ("Process_Exchange", None), ("Process_Exchange", "X404")]
    for context, rid in asked:
        if rid == "X1":
            await two_exchanges(service, (), ship=False)
        question = validation(context, 1, rid)
        question["returnRequests"][0]["additionalProperties"] = {"kept": "yes", "count": 2, "gone": None}
        question["returnRequests"][0]["returnItemList"][0]["additionalProperties"] = {"flag": True}
        status, answer = await webhook(service, "return-request-validation", question)
        assert status == 200
        assert_strings_only(answer)
        extra = answer["returnRequests"][0]["additionalProperties"]
        assert (extra["kept"], extra["count"]) == ("yes", "2") and "gone" not in extra
        assert answer["returnRequests"][0]["returnItemList"][0]["additionalProperties"]["flag"] == "true"
        if context == "CalculateRefund_Return":
            assert extra["refundTotal"] == "130.95"
        if rid == "X1":
            assert extra["errorCode"] == "ILLEGAL_TRANSITION"
            assert "Initiate_Exchange" in extra["allowedContexts"]


async def test_audit_and_console_show_the_replacement_and_its_state(
    service: RunningService, capsys: pytest.CaptureFixture[str]
) -> None:
    await received(service, exchange())
    where = ("--store", service.store, "--projections", service.services.settings.projections_database)
    code, out, _ = run(capsys, "audit", "100004", *where)
    assert code == 0
    assert "ExchangeCompleted  complete_exchange  FULL_RETURN -> COMPLETE" in out
    assert "no refund owed on" in out
    assert "exchange: returned 31.88, replacement 31.88, difference 0.00, owed by the shopper 0.00" in out
    assert "replacement order o30431: SUBMITTED (shipping sg40431 INITIAL)" in out
    code, out, _ = run(capsys, "audit", "o30431", *where)
    assert code == 0 and "replacement order of o30430 (exchange 100004)" in out
    code, out, _ = run(capsys, "audit", "o30430", "--format", "json", *where)
    assert orjson.loads(out)["state"]["replacementOrders"] == [{"orderId": "o30431", "returnId": "100004"}]

    await act(service, "/orders/o30431/shipments", {"shippingGroupId": "sg40431"}, "warehouse")
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as browser:
        assert await sign_in(service, browser) == 303
        async with browser.get(service.url + "/console/returns/100004") as r:
            page = await r.text()
        assert 'href="/console/orders/o30431"' in page
        assert re.search(r'id="replacement-state">NO_PENDING_ACTION<', page), "the replacement's state now"
        async with browser.get(service.url + "/console/orders/o30431") as r:
            order_page = await r.text()
        assert (
            'href="/console/orders/o30430"' in order_page and 'href="/console/returns/100004"' in order_page
        )


async def test_a_replacement_order_that_is_the_original_is_refused(service: RunningService) -> None:
    document = exchange()
    document["return"]["replacementOrder"]["id"] = "o30430"
    before = service.events_stored()
    status, error = await webhook(service, "return-request-update", document)
    assert (status, error["o:errorPath"]) == (400, "$.return.replacementOrder.id")
    assert service.events_stored() == before


def reported_received(document: dict[str, Any], quantity: int = 1) -> dict[str, Any]:
    """Commerce reporting the exchange's goods all in (an agent received them)."""
    ret = document["return"]
    ret.update(state="FULL_RETURN", lastModifiedTime=1458154999000)
    ret["returnItemList"][0].update(
        state="RETURNED", quantityToReturn=quantity, quantityToExchange=quantity, quantityReceived=quantity
    )
    return document


async def test_commerce_reporting_the_goods_in_completes_an_even_exchange(service: RunningService) -> None:
    assert (await webhook(service, "return-request-update", exchange()))[0] == 200
    status, answer = await webhook(service, "return-request-update", reported_received(exchange()))
    assert (status, answer["status"]) == (200, "updated")
    ret = await get(service, "/returns/100004")
    assert ret["state"] == "COMPLETE"
    events = (await get(service, "/returns/100004/history"))["events"]
    assert [(e["trigger"], e["to"]) for e in events[-2:]] == [
        ("receive", "FULL_RETURN"),
        ("complete_exchange", "COMPLETE"),
    ]
    assert events[-1]["actor"] == "commerce-webhook" and events[-1]["after"] == events[-2]["cause"]


async def test_an_exchange_that_cannot_be_planned_is_still_taken_in(service: RunningService) -> None:
    """A refused event webhook is lost after five tries: the receipt stands, no completion."""
    status, answer = await webhook(service, "return-request-update", reported_received(exchange(), 4))
    assert (status, answer["status"]) == (200, "created")
    assert (await get(service, "/returns/100004"))["state"] == "FULL_RETURN"
    status, error = await act(service, "/returns/100004/refund", {"action": "initiate"}, "bob")
    assert (status, error["message"]) == (409, "ci3000439: returning 4 after 0 exceeds the 3 ordered")
