"""Every kind of bad number issue 14 found, over real HTTP: a 400 errorModel naming it, nothing stored.

Each case failed before the declared shapes existed (a 500, a 200 that stored it, or a 409
from deep in the domain); see the README's "Declared inbound shapes".
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from service import logs
from tests.commerce_sim.seeds import seed_order_submit, seed_return_request_update
from tests.conftest import RunningService
from tests.integration.test_operator_api import (
    act,
    return_update,
    shipped_order,
    validation,
    webhook,
)

Path = tuple[str | int, ...]
ORDER = "order-submit"
RETURN = "return-request-update"
VALIDATION = "return-request-validation"
ORDER_ITEM: Path = ("order", "commerceItems", 0)
RETURN_ITEM: Path = ("return", "returnItemList", 0)
ORIGIN_ITEM: Path = ("return", "originatingOrder", "commerceItems", 0)


def json_path(path: Path) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def with_leaf(document: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:
    target: Any = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return document


SEEDS: dict[str, Callable[[], dict[str, Any]]] = {
    ORDER: seed_order_submit,
    RETURN: seed_return_request_update,
    VALIDATION: lambda: validation("Initiate_Return", 1),
}

WEBHOOK_CASES: list[tuple[str, Path, Any]] = [
    # huge numbers (10^18 and up): 500s before (from 10^26: the Decimal context's 28 digits), or stored
    (ORDER, ("order", "priceInfo", "shipping"), 1e27),
    (ORDER, ("order", "paymentGroups", 0, "amountAuthorized"), 1e30),
    (RETURN, ("return", "otherRefund"), 1e27),
    (ORDER, ("order", "priceInfo", "shipping"), 1e18),
    (ORDER, (*ORDER_ITEM, "priceInfo", "listPrice"), 10**18),
    (ORDER, ("order", "paymentGroups", 0, "amountAuthorized"), 1e19),
    (ORDER, (*ORDER_ITEM, "quantity"), 10**18),
    (RETURN, ("return", "otherRefund"), 1e18),
    (RETURN, (*RETURN_ITEM, "quantityToReturn"), 10**19),
    (VALIDATION, ("returnRequests", 0, "returnItemList", 0, "quantityToReturn"), 10**18),
    # negative or non-finite quantities and amounts: stored before
    (ORDER, (*ORDER_ITEM, "quantity"), -2),
    (ORDER, (*ORDER_ITEM, "priceInfo", "currentPriceDetailsSorted", 0, "quantity"), "NaN"),
    (ORDER, (*ORDER_ITEM, "priceInfo", "amount"), -3),
    (ORDER, (*ORDER_ITEM, "priceInfo", "currentPriceDetailsSorted", 0, "tax"), -1),
    (ORDER, ("order", "priceInfo", "tax"), -1),
    (ORDER, ("order", "paymentGroups", 0, "amount"), -3),
    (RETURN, ("return", "refundMethodList", 0, "amount"), -3),
    (RETURN, (*ORIGIN_ITEM, "priceInfo", "currentPriceDetailsSorted", 0, "tax"), -1),
    (RETURN, (*RETURN_ITEM, "quantityShipped"), "Infinity"),
    (RETURN, (*RETURN_ITEM, "quantityShipped"), -2),
    (RETURN, (*RETURN_ITEM, "refundAmount"), -0.01),
    (VALIDATION, ("returnRequests", 0, "returnItemList", 0, "quantityToExchange"), "NaN"),
]


@pytest.mark.parametrize(
    ("webhook_path", "leaf", "value"),
    WEBHOOK_CASES,
    ids=[f"{c[0]}:{json_path(c[1])}={c[2]!r}" for c in WEBHOOK_CASES],
)
async def test_bad_number_in_a_webhook_is_refused_by_name_and_stores_nothing(
    service: RunningService, webhook_path: str, leaf: Path, value: Any
) -> None:
    if webhook_path == VALIDATION:
        await shipped_order(service)
    before = service.events_stored()
    status, error = await webhook(service, webhook_path, with_leaf(SEEDS[webhook_path](), leaf, value))
    assert status == 400, error
    assert error["errorCode"] == "INVALID_INPUT" and error["status"] == "400"
    assert [e["o:errorPath"] for e in error["errors"]] == [json_path(leaf)]
    assert service.events_stored() == before


OPERATOR_CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "/returns/R9/receive",
        {"items": [{"commerceItemId": "ci2000007", "quantity": 10**18}]},
        "$.items[0].quantity",
    ),
    (
        "/returns/R9/receive",
        {"items": [{"commerceItemId": "ci2000007", "quantity": -2}]},
        "$.items[0].quantity",
    ),
    (
        "/orders/o20005/shipments",
        {"shippingGroupId": "sg20005", "items": [{"commerceItemId": "ci2000007", "quantity": 1e18}]},
        "$.items[0].quantity",
    ),
    (
        "/returns/R9/refund",
        {"action": "initiate", "amounts": {"paymentGroups": {"pg20005": "NaN"}}},
        "$.amounts.paymentGroups.pg20005",
    ),
    (
        "/returns/R9/refund",
        {"action": "initiate", "amounts": {"paymentGroups": {"pg20005": -3}}},
        "$.amounts.paymentGroups.pg20005",
    ),
    (
        "/returns/R9/refund",
        {"action": "initiate", "amounts": {"paymentGroups": {"pg20005": "1e18"}}},
        "$.amounts.paymentGroups.pg20005",
    ),
    ("/returns/R9/authorize", {"items": [{"commerceItemId": "x" * 500}]}, "$.items[0].commerceItemId"),
    ("/orders/o20005/shipments", {"shippingGroupId": "sg20005", "shipDate": "last tuesday"}, "$.shipDate"),
]


@pytest.mark.parametrize(
    ("path", "body", "error_path"), OPERATOR_CASES, ids=[f"{c[0]}:{c[2]}" for c in OPERATOR_CASES]
)
async def test_bad_number_in_an_operator_body_is_400_and_stores_nothing(
    service: RunningService, path: str, body: dict[str, Any], error_path: str
) -> None:
    await shipped_order(service)
    assert (await webhook(service, RETURN, return_update("R9")))[0] == 200
    before = service.events_stored()
    status, error = await act(service, path, body)
    assert status == 400, error
    assert error["errorCode"] == "INVALID_INPUT"
    assert [e["o:errorPath"] for e in error["errors"]] == [error_path]
    assert service.events_stored() == before


async def test_every_problem_is_listed_not_just_the_first(service: RunningService) -> None:
    leaves: list[tuple[Path, Any]] = [
        (("order", "priceInfo", "shipping"), 1e18),
        ((*ORDER_ITEM, "quantity"), -2),
        (("order", "paymentGroups", 0, "amountAuthorized"), "NaN"),
        (("order", "shippingGroups", 0, "id"), ""),
    ]
    document = seed_order_submit()
    for leaf, value in leaves:
        with_leaf(document, leaf, value)
    status, error = await webhook(service, ORDER, document)
    assert status == 400
    paths = sorted(e["o:errorPath"] for e in error["errors"])
    assert paths == sorted(json_path(leaf) for leaf, _ in leaves)
    assert all(set(e) >= {"errorCode", "message", "status"} for e in error["errors"])
    assert error["o:errorPath"] in paths
    assert service.events_stored() == 0


async def test_a_refusal_logs_the_body_hash_never_the_body(service: RunningService) -> None:
    captured = io.StringIO()
    logs.configure("json", stream=captured)
    document = with_leaf(seed_order_submit(), (*ORDER_ITEM, "quantity"), -2)
    document["order"]["paymentGroups"][0]["token"] = "4111111111111111"
    status, _ = await webhook(service, ORDER, document)
    assert status == 400
    lines = [orjson.loads(line) for line in captured.getvalue().splitlines() if line.startswith("{")]
    refusal = next(line for line in lines if line["event"] == "webhook_invalid")
    assert refusal["cause"] == "sha256:" + hashlib.sha256(orjson.dumps(document)).hexdigest()
    assert refusal["paths"] == [json_path((*ORDER_ITEM, "quantity"))]
    assert "4111111111111111" not in captured.getvalue()
    assert "Military Jacket" not in captured.getvalue()
