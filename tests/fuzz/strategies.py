"""Hypothesis strategies: realistic Commerce and operator bodies, and the same with one leaf broken.

A valid body is a seed sample with its ids, quantities, amounts and currency drawn afresh; a
mutated one has exactly one leaf (declared by our shapes or not) replaced by a wrong type, a
negative, a huge (10^18 and up) or non-finite number, null, an odd string, or removed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from domain.money import digits
from tests.commerce_sim.seeds import seed_order_submit, seed_return_request_update

Json = dict[str, Any]
Path = tuple[str | int, ...]
CURRENCIES = ("USD", "JPY", "KWD", "EUR")
CONTEXTS = (
    "Initiate_Return",
    "CalculateRefund_Return",
    "Submit_Return",
    "Custom_Return",
    "Initiate_Exchange",
    "Submit_Exchange",
    "Process_Exchange",
)
NON_FINITE = ("NaN", "Infinity", "-Infinity")
ODD_STRINGS = (
    "",
    " ",
    "\u0000",
    "x" * 5000,
    "\u202e",
    "\U0001d7d8",
    "1e309",
    "-0",
    "0x10",
    "2026-13-45T99:99:99Z",
    "<script>",
    "NaN",
)
BAD_VALUES: tuple[tuple[str, Any], ...] = (
    ("wrong-type", "x"),
    ("wrong-type", []),
    ("wrong-type", {}),
    ("wrong-type", True),
    ("wrong-type", 7),
    ("negative", -2),
    ("negative", -3),
    ("negative", -1),
    ("negative", -0.01),
    ("huge", 10**18),
    ("huge", 10**19),
    ("huge", 1e18),
    ("huge", 1e27),
    ("huge", -(10**18)),
    ("huge", 10**30),
    *(("non-finite", v) for v in NON_FINITE),
    ("null", None),
    *(("odd-string", v) for v in ODD_STRINGS),
)


@dataclass
class Case:
    """One request to make: which endpoint, what body, and what was broken (if anything)."""

    kind: str
    body: Json
    ids: dict[str, str] = field(default_factory=dict)
    leaf: Path | None = None
    mutation: str | None = None
    original: Any = None
    value: Any = None


def _money(currency: str) -> st.SearchStrategy[Any]:
    places = digits(currency)
    amounts = st.decimals(min_value=0, max_value=10**6, places=places, allow_nan=False)
    return amounts.map(lambda d: int(d) if places == 0 or d == d.to_integral_value() else float(d))


def _set_currency(node: Any, currency: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "currencyCode" and isinstance(value, str):
                node[key] = currency
            else:
                _set_currency(value, currency)
    elif isinstance(node, list):
        for value in node:
            _set_currency(value, currency)


@st.composite
def order_submit(draw: st.DrawFn) -> Case:
    document = seed_order_submit()
    order = document["order"]
    currency = draw(st.sampled_from(CURRENCIES))
    money = _money(currency)
    template = order["commerceItems"][0]
    items, links = [], [r for r in order["relationships"] if "paymentGroupId" in r]
    for n in range(draw(st.integers(1, 3))):
        item = copy.deepcopy(template)
        quantity = draw(st.integers(0, 5))
        item.update(id=f"ci{n}", quantity=quantity, returnedQuantity=0)
        item["priceInfo"].update(amount=draw(money), listPrice=draw(money))
        item["priceInfo"]["currentPriceDetailsSorted"][0].update(tax=draw(money), quantity=quantity)
        items.append(item)
        links.insert(
            n,
            {
                "id": f"r{n}",
                "relationshipType": "SHIPPINGQUANTITY",
                "amount": 0,
                "shippingGroupId": "sg20005",
                "commerceItemId": f"ci{n}",
                "quantity": quantity,
                "returnedQuantity": 0,
            },
        )
    order.update(
        commerceItems=items,
        relationships=links,
        lastModifiedTime=draw(st.integers(1_400_000_000_000, 1_900_000_000_000)),
    )
    for key in ("total", "amount", "shipping", "tax", "discountAmount"):
        order["priceInfo"][key] = draw(money)
    order["paymentGroups"][0].update(amount=draw(money), amountAuthorized=draw(money))
    _set_currency(document, currency)
    return Case("order-submit", document)


@st.composite
def return_update(draw: st.DrawFn) -> Case:
    document = seed_return_request_update()
    ret = document["return"]
    currency = draw(st.sampled_from(CURRENCIES))
    money = _money(currency)
    item = ret["returnItemList"][0]
    item.update(
        quantityToReturn=draw(st.integers(0, 3)),
        refundAmount=draw(money),
        state=draw(st.sampled_from(["INITIAL", "AWAITING_RETURN"])),
    )
    if draw(st.booleans()):  # the flat item shape seen in production
        nested = item.pop("commerceItem")
        item.update(commerceItemId=nested["id"], productId=nested["productId"])
    for key in ("otherRefund", "actualTaxRefund", "actualShippingRefund", "totalRefundAmount"):
        ret[key] = draw(money)
    ret["refundMethodList"][0]["amount"] = draw(money)
    _set_currency(document, currency)
    return Case("return-request-update", document)


@st.composite
def return_validation(draw: st.DrawFn) -> Case:
    quantity = draw(st.integers(0, 3))
    request = {
        "orderId": "",
        "returnItemList": [
            {
                "commerceItemId": "ci2000007",
                "shippingGroupId": "sg20005",
                "quantityToReturn": quantity,
                "quantityToExchange": quantity,
                "productId": "prod20012",
            }
        ],
    }
    return Case(
        "return-request-validation", {"context": draw(st.sampled_from(CONTEXTS)), "returnRequests": [request]}
    )


@st.composite
def operator_action(draw: st.DrawFn) -> Case:
    action = draw(st.sampled_from(["shipments", "authorize", "receive", "refund", "close"]))
    quantity = draw(st.integers(1, 2))
    bodies: dict[str, Json] = {
        "shipments": {
            "shippingGroupId": "sg20005",
            "trackingNumber": "1Z999",
            "shipDate": "2026-11-20T10:00:00Z",
            "items": [{"commerceItemId": "ci2000007", "quantity": quantity}],
        },
        "authorize": {
            "rma": "RMA-1",
            "trackingNumber": "1Z1",
            "returnLabel": "https://l/1.pdf",
            "items": [{"commerceItemId": "ci2000007", "shipmentRequired": draw(st.booleans())}],
        },
        "receive": {"items": [{"commerceItemId": "ci2000007", "quantity": quantity}]},
        "refund": {
            "action": draw(st.sampled_from(["initiate", "manual"])),
            **(
                {"amounts": {"paymentGroups": {"pg20005": f"{draw(st.integers(0, 100))}.00"}}}
                if draw(st.booleans())
                else {}
            ),
        },
        "close": {"reason": draw(st.sampled_from(["customer changed mind", "expired"]))},
    }
    return Case(f"operator:{action}", bodies[action])


def leaves(node: Any, path: Path = ()) -> list[Path]:
    """Every scalar's path, and every empty container's (a leaf too)."""
    if isinstance(node, dict) and node:
        return [p for key, value in node.items() for p in leaves(value, (*path, key))]
    if isinstance(node, list) and node:
        return [p for i, value in enumerate(node) for p in leaves(value, (*path, i))]
    return [path] if path else []


def at(node: Any, path: Path) -> Any:
    for key in path:
        node = node[key]
    return node


def mutate(case: Case, leaf: Path, mutation: str, value: Any) -> Case:
    body = copy.deepcopy(case.body)
    parent = at(body, leaf[:-1])
    original = parent[leaf[-1]]
    if mutation == "removed":
        del parent[leaf[-1]]
    else:
        parent[leaf[-1]] = value
    return Case(case.kind, body, dict(case.ids), leaf, mutation, original, value)


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[Case]) -> Case:
    case = draw(valid)
    leaf = draw(st.sampled_from(leaves(case.body)))
    mutation, value = draw(st.sampled_from((*BAD_VALUES, ("removed", None))))
    return mutate(case, leaf, mutation, value)


VALID = {
    "order-submit": order_submit(),
    "return-request-update": return_update(),
    "return-request-validation": return_validation(),
    "operator": operator_action(),
}


def is_bad_number(original: Any, value: Any) -> bool:
    """A number field given a negative, huge (>= 10^13) or non-finite value."""
    if isinstance(original, bool) or not isinstance(original, int | float):
        return False
    if isinstance(value, str):
        return value in NON_FINITE
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return value < 0 or abs(Decimal(repr(value) if isinstance(value, float) else value)) >= 10**13
