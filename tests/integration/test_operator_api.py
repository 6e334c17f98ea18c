"""The operator API over real HTTP: lifecycles end to end, concurrency, auth and bad bodies."""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from tests.commerce_sim.seeds import seed_order_submit
from tests.commerce_sim.webhook_sender import sign
from tests.conftest import SECRET, RunningService


async def webhook(svc: RunningService, path: str, document: Any) -> tuple[int, Any]:
    body = orjson.dumps(document)
    headers = {"X-Oracle-CC-WebHook-Signature": sign(body, SECRET, "sha512")}
    async with svc.http.post(f"{svc.url}/webhooks/{path}", data=body, headers=headers) as r:
        return r.status, await r.json()


async def act(
    svc: RunningService, path: str, body: Any, operator: str = "alice", token: str | None = None
) -> tuple[int, Any]:
    headers = {**svc.auth, "X-Operator": operator}
    if token is not None:
        headers["Authorization"] = token
    async with svc.http.post(svc.url + path, data=orjson.dumps(body), headers=headers) as r:
        return r.status, await r.json()


async def get(svc: RunningService, path: str) -> Any:
    async with svc.http.get(svc.url + path, headers=svc.auth) as r:
        assert r.status == 200, await r.text()
        return await r.json()


def fresh_order() -> dict[str, Any]:
    document = seed_order_submit()
    document["order"]["creationTime"] = int(datetime.now(UTC).timestamp() * 1000)
    return document


def return_update(rid: str, process: str = "Return", quantity: int = 2) -> dict[str, Any]:
    return {
        "return": {
            "authorizationNumber": rid,
            "state": "PENDING_CUSTOMER_ACTION",
            "processName": process,
            "originatingOrderId": "o20005",
            "returnItemList": [
                {
                    "id": f"{rid}-1",
                    "commerceItemId": "ci2000007",
                    "shippingGroupId": "sg20005",
                    "state": "INITIAL",
                    "quantityToReturn": quantity,
                }
            ],
        }
    }


def validation(context: str, quantity: int, rid: str | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {
        "orderId": "o20005",
        "returnItemList": [
            {
                "commerceItemId": "ci2000007",
                "shippingGroupId": "sg20005",
                "quantityToReturn": quantity,
                "quantityToExchange": quantity,
            }
        ],
    }
    if rid:
        request["authorizationNumber"] = rid
    return {"context": context, "returnRequests": [request]}


async def shipped_order(svc: RunningService) -> None:
    assert (await webhook(svc, "order-submit", fresh_order()))[0] == 200
    status, order = await act(
        svc,
        "/orders/o20005/shipments",
        {"shippingGroupId": "sg20005", "trackingNumber": "1Z999"},
        operator="warehouse",
    )
    assert status == 200, order
    assert order["state"] == "NO_PENDING_ACTION"


async def test_full_return_lifecycle_over_http(service: RunningService) -> None:
    await shipped_order(service)
    for context in ("Initiate_Return", "CalculateRefund_Return", "Submit_Return"):
        status, answer = await webhook(service, "return-request-validation", validation(context, 2))
        assert status == 200
        assert answer["returnRequests"][0]["nonreturnable"] is False, answer
    assert (await webhook(service, "return-request-update", return_update("R1")))[0] == 200
    status, ret = await act(
        service,
        "/returns/R1/authorize",
        {"rma": "RMA-1", "trackingNumber": "RT-1", "returnLabel": "https://l/1"},
    )
    assert (status, ret["returnItemList"][0]["state"], ret["rma"]) == (200, "AWAITING_RETURN", "RMA-1")
    status, ret = await act(
        service, "/returns/R1/receive", {"items": [{"commerceItemId": "ci2000007", "quantity": 1}]}
    )
    assert (ret["state"], ret["returnItemList"][0]["state"]) == ("PARTIAL_RETURN", "PARTIAL_RETURN")
    status, ret = await act(
        service, "/returns/R1/receive", {"items": [{"returnItemId": "R1-1", "quantity": 1}]}
    )
    assert (ret["state"], ret["returnItemList"][0]["state"]) == ("FULL_RETURN", "RETURNED")
    status, ret = await act(service, "/returns/R1/refund", {"action": "initiate"})
    assert (status, ret["state"]) == (200, "PENDING_REFUND")
    assert ret["refundPlan"]["source"] == "CalculateRefund_Return"
    assert ret["refundPlan"]["payments"] == {"pg20005": "268.40"}
    status, ret = await act(service, "/returns/R1/refund", {"action": "settle"}, operator="bob")
    assert (status, ret["state"]) == (200, "COMPLETE")
    order = await get(service, "/orders/o20005")
    assert order["paymentGroups"][0]["amountCredited"] == "268.40"
    history = await get(service, "/returns/R1/history")
    assert [(e["trigger"], e["from"], e["to"], e["actor"]) for e in history["events"]] == [
        ("request", None, "PENDING_CUSTOMER_ACTION", "commerce-webhook"),
        ("authorize", "PENDING_CUSTOMER_ACTION", "PENDING_CUSTOMER_ACTION", "operator:alice"),
        ("receive", "PENDING_CUSTOMER_ACTION", "PARTIAL_RETURN", "operator:alice"),
        ("receive", "PARTIAL_RETURN", "FULL_RETURN", "operator:alice"),
        ("initiate_refund", "FULL_RETURN", "PENDING_REFUND", "operator:alice"),
        ("settle_refund", "PENDING_REFUND", "COMPLETE", "operator:bob"),
    ]
    order_history = await get(service, "/orders/o20005/history")
    assert [e["trigger"] for e in order_history["events"]] == [
        "submit",
        "ship",
        "initiate_return",
        "calculate_refund",
        "submit_return",
        "link_return",
        "credit",
    ]


async def test_exchange_lifecycle_process_needs_receipt(service: RunningService) -> None:
    await shipped_order(service)
    for context in ("Initiate_Exchange", "Submit_Exchange"):
        status, answer = await webhook(service, "return-request-validation", validation(context, 1))
        assert answer["returnRequests"][0]["nonreturnable"] is False, answer
    await webhook(service, "return-request-update", return_update("X1", "Exchange", quantity=1))
    await act(service, "/returns/X1/authorize", {})
    before = len((await get(service, "/orders/o20005/history"))["events"])
    status, early = await webhook(
        service, "return-request-validation", validation("Process_Exchange", 1, "X1")
    )
    refusal = early["returnRequests"][0]
    assert (status, refusal["nonreturnable"]) == (200, True)
    assert refusal["additionalProperties"]["errorCode"] == "ILLEGAL_TRANSITION"
    assert len((await get(service, "/orders/o20005/history"))["events"]) == before
    await act(service, "/returns/X1/receive", {"items": [{"commerceItemId": "ci2000007", "quantity": 1}]})
    status, late = await webhook(
        service, "return-request-validation", validation("Process_Exchange", 1, "X1")
    )
    assert late["returnRequests"][0].get("additionalProperties", {}).get("errorCode") is None
    order = await get(service, "/orders/o20005")
    assert order["lifecycleState"] == "EXCHANGE_PROCESSED"


async def test_illegal_action_is_409_with_state_and_allowed_triggers(service: RunningService) -> None:
    await shipped_order(service)
    await webhook(service, "return-request-update", return_update("R2"))
    before = service.events_stored()
    status, error = await act(service, "/returns/R2/refund", {"action": "settle"})
    assert status == 409
    assert error["errorCode"] == "ILLEGAL_TRANSITION"
    assert error["state"] == "PENDING_CUSTOMER_ACTION"
    assert "settle_refund" not in error["allowedTriggers"]
    assert "receive" in error["allowedTriggers"]
    assert service.events_stored() == before


async def test_refund_override_never_exceeds_what_was_paid(service: RunningService) -> None:
    await shipped_order(service)
    await webhook(service, "return-request-update", return_update("R3"))
    await act(service, "/returns/R3/authorize", {})
    await act(service, "/returns/R3/receive", {"items": [{"commerceItemId": "ci2000007", "quantity": 2}]})
    before = service.events_stored()
    status, error = await act(
        service,
        "/returns/R3/refund",
        {"action": "initiate", "amounts": {"paymentGroups": {"pg20005": "268.41"}}},
    )
    assert (status, error["errorCode"]) == (409, "REFUND_EXCEEDS_PAYMENT")
    assert service.events_stored() == before
    status, ret = await act(
        service,
        "/returns/R3/refund",
        {"action": "initiate", "amounts": {"paymentGroups": {"pg20005": "100.00"}}},
    )
    assert (status, ret["refundPlan"]["source"], ret["refundPlan"]["total"]) == (200, "override", "100.00")


async def test_concurrent_receive_and_refund_calls_apply_serially(service: RunningService) -> None:
    await shipped_order(service)
    update = return_update("R4", quantity=2)
    await webhook(service, "return-request-update", update)
    await act(service, "/returns/R4/authorize", {})
    calls: list[tuple[str, dict[str, Any]]] = []
    calls += [("/returns/R4/receive", {"items": [{"commerceItemId": "ci2000007", "quantity": 1}]})] * 40
    calls += [("/returns/R4/refund", {"action": "initiate"})] * 30
    calls += [("/returns/R4/refund", {"action": "settle"})] * 30
    random.Random(3).shuffle(calls)
    results = await asyncio.gather(*(act(service, path, body) for path, body in calls))
    statuses = [s for s, _ in results]
    assert set(statuses) <= {200, 409}
    history = (await get(service, "/returns/R4/history"))["events"]
    assert [e["version"] for e in history] == list(range(1, len(history) + 1))
    transitions = history[2:]  # after the request and the authorization
    assert len(transitions) == statuses.count(200), "each 200 is exactly one recorded transition"
    chain = [(e["from"], e["to"]) for e in transitions]
    assert chain[0][0] == "PENDING_CUSTOMER_ACTION"
    assert all(prev[1] == nxt[0] for prev, nxt in itertools.pairwise(chain)), chain
    triggers = [e["trigger"] for e in transitions]
    assert triggers in (
        ["receive", "initiate_refund", "settle_refund"],
        ["receive", "receive", "initiate_refund", "settle_refund"],
    )
    ret = await get(service, "/returns/R4")
    assert ret["state"] == "COMPLETE"
    assert ret["returnItemList"][0]["quantityReceived"] == triggers.count("receive")
    order = await get(service, "/orders/o20005")
    assert order["paymentGroups"][0]["amountCredited"] == ret["refundPlan"]["payments"]["pg20005"]
    credits = [
        e for e in (await get(service, "/orders/o20005/history"))["events"] if e["trigger"] == "credit"
    ]
    assert len(credits) == 1, "credited exactly once"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/orders/o20005/shipments", {"shippingGroupId": "sg20005"}),
        ("/returns/R1/authorize", {"rma": "RMA-1"}),
        ("/returns/R1/close", {"reason": "x"}),
    ],
)
@pytest.mark.parametrize("token", [None, "Bearer wrong", "Basic Zm9vOmJhcg=="])
async def test_missing_or_wrong_token_is_401_and_stores_nothing(
    service: RunningService, path: str, body: Any, token: str | None
) -> None:
    """On an order and return that exist, with an action the right token would record."""
    assert (await webhook(service, "order-submit", fresh_order()))[0] == 200
    assert (await webhook(service, "return-request-update", return_update("R1")))[0] == 200
    stored = service.events_stored()
    headers = {} if token is None else {"Authorization": token}
    async with service.http.post(service.url + path, data=orjson.dumps(body), headers=headers) as r:
        assert r.status == 401
        assert (await r.json())["errorCode"] == "UNAUTHORIZED"
    async with service.http.get(service.url + "/returns/R1", headers=headers) as r:
        assert r.status == 401
    assert service.events_stored() == stored
    assert (await act(service, path, body))[0] == 200, "the right token would have stored it"
    assert service.events_stored() > stored


BAD = [
    ("/orders/o20005/shipments", b"{nope", "MALFORMED_JSON"),
    ("/orders/o20005/shipments", {"items": []}, "INVALID_INPUT"),
    (
        "/orders/o20005/shipments",
        {"shippingGroupId": "sg20005", "items": [{"commerceItemId": "ci2000007", "quantity": "2"}]},
        "INVALID_INPUT",
    ),
    ("/returns/R5/receive", {"items": [{"quantity": 1}]}, "INVALID_INPUT"),
    ("/returns/R5/receive", {"items": [{"commerceItemId": "ci2000007", "quantity": 0}]}, "INVALID_INPUT"),
    ("/returns/R5/refund", {"action": "refund-everything"}, "INVALID_INPUT"),
    ("/returns/R5/close", {}, "INVALID_INPUT"),
    (
        "/returns/R5/authorize",
        {"items": [{"commerceItemId": "ci2000007", "shipmentRequired": "no"}]},
        "INVALID_INPUT",
    ),
]


@pytest.mark.parametrize(("path", "body", "code"), BAD)
async def test_bad_bodies_are_400_errormodel_and_store_nothing(
    service: RunningService, path: str, body: Any, code: str
) -> None:
    await shipped_order(service)
    await webhook(service, "return-request-update", return_update("R5"))
    before = service.events_stored()
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    async with service.http.post(service.url + path, data=raw, headers=service.auth) as r:
        assert r.status == 400
        error = await r.json()
    assert error["errorCode"] == code and error["status"] == "400"
    assert service.events_stored() == before


async def test_unknown_resources_are_404(service: RunningService) -> None:
    status, error = await act(
        service, "/returns/nope/receive", {"items": [{"commerceItemId": "c", "quantity": 1}]}
    )
    assert (status, error["errorCode"]) == (404, "NOT_FOUND")
