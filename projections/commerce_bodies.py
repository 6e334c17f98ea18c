"""Which events Commerce must hear about, and the PUT bodies that tell it (SPEC section 4).

The one place Commerce bodies are built. Commerce is the system of record for
what shoppers and agents see, so a body carries only what Returnflow is
responsible for, under the field names of the one documented updateReturnRequest
body (seed `oms-integration-overview.txt:375-428`), and a list goes out only
with every member that must be kept, each identified the way Commerce matches
it (return items by `commerceItemId` + `shippingGroupId`, groups by `id`).

Bodies are built from the resource's whole state after the event (the view the
relay ships with every event), never from the event's delta, so a replayed or
coalesced call sets the same values again.

Two flavours (`RETURNFLOW_COMMERCE_FLAVOUR`):

- `classic` (the seed's body): state, RMA details, return items and refund figures.
- `op` (newer releases): one operation per call (`receiveReturns`, `initiateRefund`,
  `adjustRefundAmounts`, `markManualRefund`, `markAsComplete`) with that release's
  body. Commerce issues the refund itself on `initiateRefund`, so no payment group
  credit is sent in this flavour.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, get_args

from domain.refund_methods import split_refund
from domain.refunds import allocate
from domain.states import ReturnState

Flavour = Literal["classic", "op"]
FLAVOURS: tuple[str, ...] = get_args(Flavour)

RETURN_EVENTS = frozenset(
    {
        "ReturnRequest.Authorized",
        "ReturnRequest.ItemsReceived",
        "ReturnRequest.RefundStep",
        "ReturnRequest.RefundSettled",
        "ReturnRequest.ExchangeCompleted",
        "ReturnRequest.Closed",
    }
)
"""Changes Returnflow makes to a return; what Commerce itself sent us is not echoed back."""

ORDER_EVENTS = frozenset({"Order.Shipped", "Order.Credited"})

UPDATE_RETURN_REQUEST = "updateReturnRequest"
UPDATE_ORDER = "updateOrder"

OPS = ("receiveReturns", "initiateRefund", "adjustRefundAmounts", "markManualRefund", "markAsComplete")
"""The `op` values, in the casing that is sent (seeds/README.md; oms-integration-overview.txt:454)."""

Json = dict[str, Any]


def flavour_choice(value: object) -> Flavour:
    """Narrow a configured string to a Flavour, or say what is allowed."""
    if value == "classic":
        return "classic"
    if value == "op":
        return "op"
    raise ValueError(f"RETURNFLOW_COMMERCE_FLAVOUR must be one of {', '.join(FLAVOURS)}, got {value!r}")


@dataclass(frozen=True)
class CommerceCall:
    """One Admin API call: `subject` is the Commerce id it concerns (the Kafka key).

    `operation` names what the call sets (the ledger coalesces per subject and
    operation): `updateReturnRequest`, `updateReturnRequest:<op>`,
    `updateOrder:shipment`, `updateOrder:credit`.
    """

    method: str
    path: str
    body: Json
    subject: str
    operation: str
    basis: Json | None = None
    """What the body sent is derived from besides `body` (a credit: our credits per return,
    added to what Commerce holds at the time); part of what makes two calls the same."""

    @property
    def endpoint(self) -> str:
        """`updateReturnRequest` or `updateOrder`: which Admin API endpoint is called."""
        return self.operation.split(":", 1)[0]


def _money(value: Any) -> Decimal | None:
    """Amounts are kept as strings in the currency's digits; they go out as JSON numbers."""
    return None if value is None else Decimal(str(value))


# --- updateReturnRequest, classic -----------------------------------------------------------------


def _item_identity(item: Json) -> Json:
    """How Commerce matches a return item (oms-integration-overview.txt:411,414), reason kept (:417).
    A member whose shipping group is not known carries none (never `null`): `identified` says."""
    member: Json = {"commerceItemId": item["commerceItemId"]}
    if item.get("shippingGroupId") is not None:
        member["shippingGroupId"] = item["shippingGroupId"]
    if item.get("returnReason") is not None:
        member["returnReason"] = item["returnReason"]
    return member


def identified(member: Json) -> bool:
    return member.get("commerceItemId") is not None and member.get("shippingGroupId") is not None


def _item_member(item: Json, share: Json | None) -> Json:
    member = _item_identity(item)
    member["state"] = item["state"]  # :419
    member["quantityReceived"] = item["quantityReceived"]  # :422
    if item.get("comments") is not None:
        member["comments"] = item["comments"]  # :410
    if share is not None:
        shipping, shipping_tax = _money(share["shipping"]), _money(share["shipping_tax"])
        assert shipping is not None and shipping_tax is not None
        member["refundAmount"] = _money(share["amount"])  # :423
        member["actualTaxRefundShare"] = _money(share["tax"])  # :421
        member["actualShippingRefundShare"] = shipping - shipping_tax  # :418
        member["actualShippingSurchargeRefundShare"] = _money(share.get("surcharge", "0"))  # :416
    return member


SHARE_FIELDS = ("amount", "tax", "shipping", "shipping_tax", "surcharge")


def _shares(view: Json) -> list[Json | None]:
    """Each return item's part of the planned refund. The calculation is per commerce item; a
    line returned in several members is split over them by quantity to return (largest
    remainder in minor units, so the parts add up to the line's share)."""
    plan = view.get("refundPlan") or {}
    calculation = plan.get("calculation") or {}
    by_item = {i["commerce_item_id"]: i for i in calculation.get("items", [])}
    members: dict[str, list[int]] = {}
    for index, item in enumerate(view["returnItemList"]):
        members.setdefault(item["commerceItemId"], []).append(index)
    shares: list[Json | None] = [None] * len(view["returnItemList"])
    currency = calculation.get("currency") or view.get("currency") or "USD"
    for ci, indexes in members.items():
        whole = by_item.get(ci)
        if whole is None:
            continue
        weights = [int(view["returnItemList"][i].get("quantityToReturn") or 0) for i in indexes]
        parts = {
            field: allocate(Decimal(str(whole.get(field, "0"))), weights, currency) for field in SHARE_FIELDS
        }
        for position, index in enumerate(indexes):
            shares[index] = {field: str(parts[field][position]) for field in SHARE_FIELDS}
    return shares


def refund_methods(view: Json, held: list[Json] | None = None) -> list[Json] | None:
    """Commerce's own refund methods (`held`: as Commerce holds them now, else as the webhook
    reported them), under their documented names only, amounts changed where
    `domain.refund_methods.split_refund` can decide them. A return that needs a person and has
    no method gets one `manualRefund` (seed oms-integration-overview.txt:385). None: no reason
    to send the list (no plan, or no method and none needed)."""
    plan = view.get("refundPlan")
    if not plan:
        return None
    source = held if held is not None else (view.get("refund") or {}).get("refundMethodList") or []
    reported = [m for m in source if isinstance(m, dict)]
    total = Decimal(plan["total"])
    split = split_refund(total, reported, _seen_amounts(view, total) if held is not None else None)
    methods = [
        {
            **{k: method[k] for k in ("refundType", "state") if method.get(k) is not None},
            "amount": amount,
        }
        for method, amount in zip(reported, split.amounts, strict=True)
    ]
    if not methods and total > 0 and view["state"] == ReturnState.MANUAL_REFUND:
        methods.append({"refundType": "manualRefund", "amount": total, "state": "INCOMPLETE"})
    return methods or None


def refund_split_kept(view: Json, held: list[Json] | None = None) -> str | None:
    """Why Commerce's refund split was left as it is (to report), or None."""
    plan = view.get("refundPlan")
    if not plan:
        return None
    source = held if held is not None else (view.get("refund") or {}).get("refundMethodList") or []
    total = Decimal(plan["total"])
    seen = _seen_amounts(view, total) if held is not None else None
    return split_refund(total, [m for m in source if isinstance(m, dict)], seen).kept


def _seen_amounts(view: Json, total: Decimal) -> set[Decimal]:
    """Amounts a method may hold that no one but us set: none yet, what the webhook reported, ours."""
    reported = (view.get("refund") or {}).get("refundMethodList") or []
    return {Decimal(0), total, *(Decimal(str(m["amount"])) for m in reported if m.get("amount") is not None)}


def _refund_figures(view: Json) -> Json:
    """Return-level refund figures (oms-integration-overview.txt:376-380,392,426); totals such as
    totalRefundAmount are Commerce's to derive and are not sent."""
    calculation = (view.get("refundPlan") or {}).get("calculation")
    if not calculation:
        return {}
    shipping_tax = _money(calculation.get("shipping_tax_total", "0"))
    shipping = _money(calculation["shipping_total"])
    assert shipping is not None and shipping_tax is not None
    return {
        "actualTaxRefund": _money(calculation["tax_total"]),
        "actualShippingRefund": shipping - shipping_tax,
        "shippingTaxRefund": shipping_tax,
        "actualShippingSurchargeRefund": _money(calculation.get("surcharge_total", "0")),
        "returnFee": _money(calculation["fee"]),
    }


def classic_body(view: Json) -> Json:
    """updateReturnRequest as the seed documents it: what Returnflow decided about the return."""
    body: Json = {"state": view["state"]}  # :401
    if view.get("rma"):
        body["authorizationNumber"] = view["rma"]  # :391
    for key in ("trackingNumber", "returnLabel"):  # :406, :390
        if view.get(key):
            body[key] = view[key]
    body.update(_refund_figures(view))
    methods = refund_methods(view)
    if methods is not None:
        body["refundMethodList"] = methods  # :383-389
    body["returnItemList"] = [  # :407-425
        member for member in item_members(view) if identified(member)
    ]
    return body


def item_members(view: Json) -> list[Json]:
    """Every return item as a `returnItemList` member, identified or not (the caller decides)."""
    return [
        _item_member(item, share) for item, share in zip(view["returnItemList"], _shares(view), strict=True)
    ]


# --- updateReturnRequest, op ----------------------------------------------------------------------


def op_calls(event_type: str, trigger: str | None, view: Json) -> list[tuple[str, Json]]:
    """The operations an event needs in the `op` flavour, in the order they must be sent.

    Authorizing and closing have no operation in that release: nothing is sent for them.
    """
    name = event_type.split(".")[-1]
    if name == "ItemsReceived":
        return [
            (
                "receiveReturns",
                {
                    "returnItems": [
                        {
                            "returnItemId": i["returnItemId"],
                            "quantityReceived": i["quantityReceived"],
                            **({"dispositionReason": i["disposition"]} if i.get("disposition") else {}),
                        }
                        for i in view["returnItemList"]
                    ]
                },
            )
        ]
    if name == "RefundStep" and trigger == "initiate_refund":
        calls: list[tuple[str, Json]] = []
        figures = _refund_figures(view)
        if figures:
            calls.append(
                (
                    "adjustRefundAmounts",
                    {
                        "adjustedTaxRefund": figures["actualTaxRefund"],
                        "adjustedShippingRefund": figures["actualShippingRefund"]
                        + figures["shippingTaxRefund"],
                    },
                )
            )
        if (view.get("refundPlan") or {}).get("manualReasons"):
            return calls  # a person refunds it (markManualRefund follows): Commerce must not too
        return [*calls, ("initiateRefund", {})]
    if name == "RefundStep" and trigger == "require_manual_refund":
        return [("markManualRefund", {})]
    if name in ("RefundSettled", "ExchangeCompleted"):
        return [("markAsComplete", {})]
    return []


# --- updateOrder ----------------------------------------------------------------------------------


def shipment_body(view: Json) -> Json:
    """The order's state (oms-integration-overview.txt:228) and every shipping group by `id`."""
    return {
        "state": view["state"],
        "shippingGroups": [
            {
                key: group[key]
                for key in ("id", "state", "trackingNumber", "actualShipDate")
                if group.get(key) is not None
            }
            for group in view["shippingGroups"]
        ],
    }


def credit_body(view: Json) -> Json:
    """Every payment group by `id`, amountCredited = what Commerce reported + what we credited
    since (oms-integration-overview.txt:456; the order view holds that sum)."""
    return {
        "paymentGroups": [
            {"id": p["id"], "amountCredited": _money(p.get("amountCredited") or "0")}
            for p in view["paymentGroups"]
        ]
    }


def commerce_calls(
    event_type: str, trigger: str | None, view: Json, flavour: Flavour = "classic"
) -> list[CommerceCall]:
    """The calls an event needs, in order; none when Commerce already knows (it told us)."""
    ident = view["id"]
    if event_type in RETURN_EVENTS:
        path = f"/ccadmin/v1/returnRequests/{ident}"
        if flavour == "classic":
            return [CommerceCall("PUT", path, classic_body(view), ident, UPDATE_RETURN_REQUEST)]
        return [
            CommerceCall("PUT", path, {"op": op, **body}, ident, f"{UPDATE_RETURN_REQUEST}:{op}")
            for op, body in op_calls(event_type, trigger, view)
        ]
    path = f"/ccadmin/v1/orders/{ident}"
    if event_type == "Order.Shipped":
        return [CommerceCall("PUT", path, shipment_body(view), ident, f"{UPDATE_ORDER}:shipment")]
    if event_type == "Order.Credited" and flavour == "classic":
        basis = {"creditsByReturn": view.get("creditsByReturn") or {}}
        return [CommerceCall("PUT", path, credit_body(view), ident, f"{UPDATE_ORDER}:credit", basis)]
    return []
