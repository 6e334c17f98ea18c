"""Runs one fuzz case against the live service and judges the answer.

Rules (issue 14): never a 5xx; every 4xx is an errorModel (every 400 with `errors[]`, each
with `o:errorPath`); a refused body stores nothing; an accepted body round-trips (what GET
shows is what was sent, in canonical form); nothing accepted carries a negative, huge or
non-finite number in a field we keep (Commerce's documented -1 sentinels and signed
adjustments aside), and no view shows one.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from pydantic import TypeAdapter

from domain.money import digits
from service import operator_shapes, shapes
from service.conform import InvalidInput, conform
from tests.commerce_sim.seeds import seed_order_submit
from tests.fuzz.live import LiveService
from tests.fuzz.strategies import Case, Json, at, is_bad_number

SIGNED = frozenset(
    {
        "orderDiscountShare",
        "adjustmentAmount",
        "manualAdjustmentTotal",
        "orderDiscountAdjustment",
        "manualAdjustmentShare",
        "totalOrderPromotionValueAdjustmentChange",
        "nonReturnItemSubtotalAdjustment",
    }
)
"""Amounts Commerce's model has signed (discounts and adjustments)."""
SENTINEL = frozenset({"quantityShipped", "maximumRefundAmount"})
"""Commerce's -1: "not known" / "no maximum"."""
NAME_OR_CODE = frozenset({"state"})
"""Fields Commerce sends as an integer code or as a name: a string there is a name ("NaN"
included), kept as text, never read as a number."""
NUMERIC_KEYS = (
    "quantity",
    "amount",
    "refund",
    "tax",
    "shipping",
    "total",
    "price",
    "fee",
    "credited",
    "discount",
)
NON_NUMERIC_SUFFIXES = (
    "Id",
    "Ids",
    "Method",
    "Number",
    "Type",
    "Reason",
    "Label",
    "State",
    "Name",
    "Date",
    "Time",
)
BASE_ORDER = "fz-base"
_serial = itertools.count(1)


@dataclass
class Outcome:
    status: int
    accepted: bool
    problems: list[str] = field(default_factory=list)
    accepted_bad_number: bool = False
    stored_refusal: bool = False


def prepare(live: LiveService) -> None:
    """The shipped order the validation questions ask about."""
    order = fresh_order(BASE_ORDER)
    assert live.webhook("order-submit", order)[0] == 200
    assert live.act(f"/orders/{BASE_ORDER}/shipments", {"shippingGroupId": "sg20005"})[0] == 200


def fresh_order(order_id: str) -> Json:
    document = seed_order_submit()
    document["order"]["id"] = order_id
    document["order"]["creationTime"] = int(datetime.now(UTC).timestamp() * 1000)
    return document


def run(live: LiveService, case: Case) -> Outcome:
    target = _target(live, case)
    before = live.events_stored()
    if case.kind.startswith("operator:"):
        status, answer = live.act(target, case.body)
    else:
        status, answer = live.webhook(case.kind, case.body)
    outcome = Outcome(status, 200 <= status < 300)
    if status >= 500:
        outcome.problems.append(f"{status} {answer!r:.200}")
    elif status >= 400:
        outcome.problems += _error_model_problems(status, answer)
        outcome.stored_refusal = live.events_stored() != before
        if outcome.stored_refusal:
            outcome.problems.append("a refused body stored events")
    else:
        outcome.problems += _round_trip_problems(live, case, target, answer)
        outcome.accepted_bad_number = _declared_bad_number(case)
        if outcome.accepted_bad_number:
            outcome.problems.append(f"accepted {case.value!r} at {case.leaf}")
    return outcome


def _keep_unless_mutated(case: Case, path: tuple[str | int, ...], value: str) -> None:
    if case.leaf != path:
        at(case.body, path[:-1])[path[-1]] = value


def _target(live: LiveService, case: Case) -> str:
    """Give the case fresh ids (its own order and return) and build what it needs first."""
    n = next(_serial)
    if case.kind == "order-submit":
        _keep_unless_mutated(case, ("order", "id"), f"fz-o{n}")
    elif case.kind == "return-request-update":
        _keep_unless_mutated(case, ("return", "authorizationNumber"), f"fz-r{n}")
        _keep_unless_mutated(case, ("return", "originatingOrder", "id"), f"fz-ro{n}")
    elif case.kind == "return-request-validation":
        _keep_unless_mutated(case, ("returnRequests", 0, "orderId"), BASE_ORDER)
    else:
        return _operator_setup(live, case.kind.split(":")[1], f"fz-p{n}")
    return ""


def _operator_setup(live: LiveService, action: str, key: str) -> str:
    steps: list[tuple[str, Json]] = []
    order_id, return_id = f"{key}-o", f"{key}-r"
    assert live.webhook("order-submit", fresh_order(order_id))[0] == 200
    if action == "shipments":
        return f"/orders/{order_id}/shipments"
    steps.append((f"/orders/{order_id}/shipments", {"shippingGroupId": "sg20005"}))
    for path, body in steps:
        assert live.act(path, body)[0] == 200
    update = {
        "return": {
            "authorizationNumber": return_id,
            "state": "PENDING_CUSTOMER_ACTION",
            "originatingOrderId": order_id,
            "processName": "Return",
            "returnItemList": [
                {
                    "id": f"{return_id}-1",
                    "commerceItemId": "ci2000007",
                    "shippingGroupId": "sg20005",
                    "state": "INITIAL",
                    "quantityToReturn": 2,
                }
            ],
        }
    }
    assert live.webhook("return-request-update", update)[0] == 200
    before = {"receive": ["authorize"], "refund": ["authorize", "receive"]}.get(action, [])
    for step in before:
        body = {"items": [{"commerceItemId": "ci2000007", "quantity": 2}]} if step == "receive" else {}
        assert live.act(f"/returns/{return_id}/{step}", body)[0] == 200
    return f"/returns/{return_id}/{action}"


def _error_model_problems(status: int, answer: Any) -> list[str]:
    if not isinstance(answer, dict):
        return [f"{status} without a JSON errorModel"]
    problems = []
    if not isinstance(answer.get("errorCode"), str) or not isinstance(answer.get("message"), str):
        problems.append(f"{status} lacks errorCode/message")
    if answer.get("status") != str(status):
        problems.append(f"{status} says status {answer.get('status')!r}")
    if status == 400:
        errors = answer.get("errors")
        if not errors or not all(isinstance(e.get("o:errorPath"), str) for e in errors):
            problems.append("a 400 without errors[] each with o:errorPath")
    return problems


def _shape(kind: str) -> TypeAdapter[Any]:
    named = {
        "order-submit": shapes.ORDER_SUBMIT,
        "return-request-update": shapes.RETURN_REQUEST_UPDATE,
        "return-request-validation": shapes.RETURN_REQUEST_VALIDATION,
        "operator:shipments": operator_shapes.SHIPMENT,
        "operator:authorize": operator_shapes.AUTHORIZATION,
        "operator:receive": operator_shapes.RECEIPT,
        "operator:refund": operator_shapes.REFUND,
        "operator:close": operator_shapes.CLOSING,
    }
    return named[kind]


def _declared_bad_number(case: Case) -> bool:
    """The broken leaf is a kept field, and a bad number got in (sentinels and signed fields aside)."""
    if case.leaf is None or case.mutation == "removed" or not is_bad_number(case.original, case.value):
        return False
    key = case.leaf[-1]
    if key in NAME_OR_CODE and isinstance(case.value, str):
        return False
    if key in SENTINEL and case.value == -1:
        return False
    if key in SIGNED and isinstance(case.value, int | float) and abs(case.value) < 10**13:
        return False
    pristine = copy.deepcopy(case.body)
    at(pristine, case.leaf[:-1])[key] = case.original
    try:
        at(conform(_shape(case.kind), pristine), case.leaf)
    except (KeyError, IndexError, TypeError, InvalidInput):
        return False  # not declared: dropped at the edge, never kept
    return True


def money(value: Any, currency: str) -> str:
    amount = Decimal(0) if value is None else Decimal(repr(value) if isinstance(value, float) else value)
    return str(amount.quantize(Decimal(1).scaleb(-digits(currency)), rounding=ROUND_HALF_UP))


def negative_numbers(node: Any, path: str = "$") -> list[str]:
    """Paths of negative or non-finite amounts and quantities in a view."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in SIGNED or key in SENTINEL:
                continue
            if isinstance(value, dict | list):
                found += negative_numbers(value, f"{path}.{key}")
            elif _numeric_key(key) and _bad(value):
                found.append(f"{path}.{key}={value!r}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += negative_numbers(value, f"{path}[{i}]")
    return found


def _numeric_key(key: str) -> bool:
    return any(w in key.lower() for w in NUMERIC_KEYS) and not key.endswith(NON_NUMERIC_SUFFIXES)


def _bad(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return False
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return False
    return not number.is_finite() or number < 0 or abs(number) >= 10**13


def _round_trip_problems(live: LiveService, case: Case, target: str, answer: Any) -> list[str]:
    if case.kind == "return-request-validation":
        return _validation_problems(case, answer)
    if case.kind.startswith("operator:"):
        return _operator_problems(live, case, target, answer)
    if not isinstance(answer, dict) or answer.get("status") not in ("created", "updated"):
        return []  # duplicate or stale: nothing changed, nothing to compare
    resource = "orders" if answer["resource"] == "order" else "returns"
    status, view = live.get(f"/{resource}/{answer['id']}")
    if status != 200:
        return [f"accepted but GET /{resource}/{answer['id']} answered {status}"]
    sent = canonical_order(case.body["order"]) if resource == "orders" else canonical_return(case.body)
    shown = project(view, sent)
    problems = [f"round trip: sent {sent!r:.300} shown {shown!r:.300}"] if shown != sent else []
    return problems + [f"view shows {p}" for p in negative_numbers(view)]


def project(shown: Any, like: Any) -> Any:
    """`shown` cut down to the keys (and list lengths) of `like`: what a round trip compares."""
    if isinstance(like, dict) and isinstance(shown, dict):
        return {k: project(shown.get(k), v) for k, v in like.items()}
    if isinstance(like, list) and isinstance(shown, list):
        return [project(s, v) for s, v in zip(shown, like, strict=False)] + shown[len(like) :]
    return shown


def canonical_order(order: Json) -> Json:
    """What GET /orders/{id} must show of an Order Submit: ids trimmed, amounts in the currency's
    digits (half-up), missing quantities 0."""
    price = order.get("priceInfo")
    currency = (price or {}).get("currencyCode") or "USD"
    return {
        "id": str(order["id"]).strip(),
        "currency": currency,
        "priceInfo": {
            k: money(price.get(k), currency) if price else "0"
            for k in ("total", "amount", "shipping", "tax", "discountAmount")
        },
        "commerceItems": [_canonical_item(i, currency) for i in order.get("commerceItems") or []],
        "paymentGroups": [_canonical_payment(p, currency) for p in order.get("paymentGroups") or []],
    }


def _canonical_item(item: Json, currency: str) -> Json:
    price = item.get("priceInfo")
    details = (price or {}).get("currentPriceDetailsSorted") or []
    return {
        "id": str(item["id"]).strip(),
        "quantity": item.get("quantity") or 0,
        "amount": money(price.get("amount"), currency) if price else "0",
        "listPrice": money(price.get("listPrice"), currency) if price else "0",
        "tax": money(sum(Decimal(repr(d.get("tax") or 0)) for d in details), currency),
    }


def _canonical_payment(group: Json, currency: str) -> Json:
    group_currency = group.get("currencyCode") or currency
    return {
        "id": str(group.get("id") or group.get("paymentId")).strip(),
        "amount": money(group.get("amount"), group_currency),
    }


def canonical_return(document: Json) -> Json:
    ret = document["return"]
    origin = ret.get("originatingOrder")
    currency = ((origin or {}).get("priceInfo") or {}).get("currencyCode") or "USD"
    return {
        "returnItemList": [
            {
                "returnItemId": str(item.get("returnItemId") or item.get("id")).strip(),
                "quantityToReturn": item.get("quantityToReturn") or 0,
                "refundAmount": money(item.get("refundAmount"), currency),
            }
            for item in ret["returnItemList"]
        ]
    }


def _validation_problems(case: Case, answer: Any) -> list[str]:
    asked = case.body["returnRequests"][0]
    answered = answer["returnRequests"][0]
    if answer.get("context") != case.body["context"]:
        return ["the answer names another context"]
    if asked.get("returnItemListIsTruncated") or not asked.get("returnItemList"):
        return []
    sent, got = asked["returnItemList"][0], answered["returnItemList"][0]
    keys = ("commerceItemId", "quantityToReturn", "quantityToExchange")
    if {k: sent.get(k) for k in keys} != {k: got.get(k) for k in keys}:
        return [f"validation answer does not mirror the item: {sent!r:.200} -> {got!r:.200}"]
    return [f"answer shows {p}" for p in negative_numbers(got)]


def _operator_problems(live: LiveService, case: Case, target: str, answer: Any) -> list[str]:
    resource = target.rsplit("/", 1)[0]
    status, view = live.get(resource)
    problems = [] if status == 200 and view == answer else ["the answer differs from GET afterwards"]
    items = case.body.get("items") or []
    if case.kind == "operator:receive":
        received = sum(i["quantityReceived"] for i in view["returnItemList"])
        if received != sum(i["quantity"] for i in items):
            problems.append(f"received {received}, sent {items!r}")
    if case.kind == "operator:shipments" and items:
        shipped = {i["commerceItemId"]: i["quantityShipped"] for i in view["shippingGroups"][0]["items"]}
        if shipped.get(str(items[0]["commerceItemId"]).strip()) != items[0]["quantity"]:
            problems.append(f"shipped {shipped}, sent {items!r}")
    return problems + [f"view shows {p}" for p in negative_numbers(view)]
