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

    @property
    def endpoint(self) -> str:
        """`updateReturnRequest` or `updateOrder`: which Admin API endpoint is called."""
        return self.operation.split(":", 1)[0]


def _money(value: Any) -> Decimal | None:
    """Amounts are kept as strings in the currency's digits; they go out as JSON numbers."""
    return None if value is None else Decimal(str(value))


# --- updateReturnRequest, classic -----------------------------------------------------------------


def _item_identity(item: Json) -> Json:
    """How Commerce matches a return item (oms-integration-overview.txt:411,414), reason kept (:417)."""
    member: Json = {"commerceItemId": item["commerceItemId"], "shippingGroupId": item.get("shippingGroupId")}
    if item.get("returnReason") is not None:
        member["returnReason"] = item["returnReason"]
    return member


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


def _shares(view: Json) -> list[Json | None]:
    """Each return item's part of the planned refund; a line returned in two members is split
    in the order the members come (the calculation is per commerce item)."""
    plan = view.get("refundPlan") or {}
    calculation = plan.get("calculation") or {}
    by_item = {i["commerce_item_id"]: i for i in calculation.get("items", [])}
    shares: list[Json | None] = []
    taken: set[str] = set()
    for item in view["returnItemList"]:
        ci = item["commerceItemId"]
        shares.append(by_item.get(ci) if ci not in taken else None)
        taken.add(ci)
    return shares


def refund_methods(view: Json) -> list[Json] | None:
    """Commerce's own refund methods as the webhook reported them, only the amounts changed.

    A method naming a payment group gets what the plan gives that group; the
    rest of the refund goes to the first method naming none (a `manualRefund`,
    seed oms-integration-overview.txt:385). A return that needs a person and
    has no such method gets one `manualRefund` for the rest. None: no reason to
    send the list (no plan, or Commerce reported no methods and none is needed).
    """
    plan = view.get("refundPlan")
    if not plan:
        return None
    reported = [dict(m) for m in (view.get("refund") or {}).get("refundMethodList") or []]
    payments = {k: Decimal(v) for k, v in (plan.get("payments") or {}).items()}
    total = Decimal(plan["total"])
    methods: list[Json] = []
    for method in reported:
        member: Json = {"refundType": method.get("refundType")}
        if method.get("paymentGroupId") is not None:
            member["paymentGroupId"] = method["paymentGroupId"]
            member["amount"] = payments.get(method["paymentGroupId"], Decimal(0))
        if method.get("state") is not None:
            member["state"] = method["state"]
        methods.append(member)
    rest = total - sum((m["amount"] for m in methods if "amount" in m), Decimal(0))
    open_ = [m for m in methods if "amount" not in m]
    for index, member in enumerate(open_):
        member["amount"] = rest if index == 0 else Decimal(0)
    if not open_ and rest > 0 and view["state"] == ReturnState.MANUAL_REFUND:
        methods.append({"refundType": "manualRefund", "amount": rest, "state": "INCOMPLETE"})
    return methods or None


def _method_key(method: Json) -> Any:
    """How a refund method is matched: the documents are silent; by payment group, else type."""
    if method.get("paymentGroupId") is not None:
        return ("paymentGroup", method["paymentGroupId"])
    return ("type", method.get("refundType"))


def with_methods_commerce_holds(body: Json, held: Any) -> Json:
    """`body` keeping the refund methods Commerce holds now that it has not reported to us yet
    (an agent's, added since the last webhook): the list replaces Commerce's, so each is sent
    back as Commerce holds it, under the documented names only (oms-integration-overview.txt:384-388)."""
    if "refundMethodList" not in body or not isinstance(held, list):
        return body
    ours = {_method_key(m) for m in body["refundMethodList"]}
    kept = [
        {k: m[k] for k in ("refundType", "paymentGroupId", "amount", "state") if m.get(k) is not None}
        for m in held
        if isinstance(m, dict) and _method_key(m) not in ours
    ]
    return {**body, "refundMethodList": [*body["refundMethodList"], *kept]} if kept else body


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
        _item_member(item, share) for item, share in zip(view["returnItemList"], _shares(view), strict=True)
    ]
    return body


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
                            "dispositionReason": i.get("disposition"),
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
        return [CommerceCall("PUT", path, credit_body(view), ident, f"{UPDATE_ORDER}:credit")]
    return []
