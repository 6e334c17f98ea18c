"""Which events Commerce must hear about, and the absolute PUT bodies that tell it.

Bodies are built from the resource's whole state after the event (the view the
relay ships with every event), never from the event's delta: a replayed or
reordered call then sets the same values again, and list replacement keeps
every member, because every member is always sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

Flavour = Literal["classic", "op"]

RETURN_EVENTS = frozenset(
    {"ReturnRequest.Authorized", "ReturnRequest.ItemsReceived", "ReturnRequest.RefundStep",
     "ReturnRequest.RefundSettled", "ReturnRequest.Closed"}
)
"""Changes Returnflow makes to a return; what Commerce itself sent us is not echoed back."""

ORDER_EVENTS = frozenset({"Order.Shipped", "Order.Credited"})

_OPS = {
    "ItemsReceived": "ReceiveReturns",
    "initiate_refund": "InitiateRefund",
    "require_manual_refund": "MarkManualRefund",
    "RefundSettled": "MarkAsComplete",
}


@dataclass(frozen=True)
class CommerceCall:
    """One Admin API call: `subject` is the Commerce id it concerns (the Kafka key)."""

    method: str
    path: str
    body: dict[str, Any]
    subject: str
    operation: str


def _money(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def return_request_body(view: dict[str, Any], flavour: Flavour = "classic",
                        trigger: str | None = None, event_type: str | None = None) -> dict[str, Any]:
    """updateReturnRequest: state, every return item, RMA details, and the refund when planned."""
    body: dict[str, Any] = {
        "state": view["state"],
        "returnItemList": [
            {
                "id": item["returnItemId"],
                "state": item["state"],
                "quantityToReturn": item["quantityToReturn"],
                "quantityReceived": item["quantityReceived"],
                "returnShipmentRequired": item.get("returnShipmentRequired", True),
            }
            for item in view["returnItemList"]
        ],
    }
    for key in ("rma", "trackingNumber", "returnLabel"):
        if view.get(key):
            body[key] = view[key]
    plan = view.get("refundPlan")
    if plan:
        calculation = plan.get("calculation") or {}
        refunds = {i["commerce_item_id"]: i for i in calculation.get("items", [])}
        for item, source in zip(body["returnItemList"], view["returnItemList"], strict=True):
            share = refunds.get(source["commerceItemId"])
            if share is not None:
                item["refundAmount"] = _money(share["amount"])
                item["actualTaxRefundShare"] = _money(share["tax"])
                item["actualShippingRefundShare"] = _money(share["shipping"])
        body["totalRefundAmount"] = _money(plan["total"])
        if calculation:
            body["actualTaxRefund"] = _money(calculation["tax_total"])
            body["actualShippingRefund"] = _money(calculation["shipping_total"])
            body["returnFee"] = _money(calculation["fee"])
        manual = view["state"] == "MANUAL_REFUND"
        body["refundMethodList"] = [
            {"paymentGroupId": group_id, "amount": _money(amount),
             "refundType": "manualRefund" if manual else "originalPayment"}
            for group_id, amount in sorted(plan["payments"].items())
        ]
    if flavour == "op":
        name = (event_type or "").split(".")[-1]
        op = _OPS.get(trigger or "") or _OPS.get(name)
        if op:
            body["op"] = op
    return body


def order_body(view: dict[str, Any]) -> dict[str, Any]:
    """updateOrder: state, every shipping group, every payment group with amountCredited."""
    return {
        "state": view["state"],
        "shippingGroups": [
            {key: group[key] for key in ("id", "state", "trackingNumber", "actualShipDate")
             if group.get(key) is not None}
            for group in view["shippingGroups"]
        ],
        "paymentGroups": [
            {"id": p["id"], "amountCredited": _money(p.get("amountCredited") or "0")}
            for p in view["paymentGroups"]
        ],
    }


def commerce_call(event_type: str, trigger: str | None, view: dict[str, Any],
                  flavour: Flavour = "classic") -> CommerceCall | None:
    """The call an event needs, or None when Commerce already knows (it told us)."""
    if event_type in RETURN_EVENTS:
        body = return_request_body(view, flavour, trigger, event_type)
        return CommerceCall("PUT", f"/ccadmin/v1/returnRequests/{view['id']}", body, view["id"],
                            "updateReturnRequest")
    if event_type in ORDER_EVENTS:
        return CommerceCall("PUT", f"/ccadmin/v1/orders/{view['id']}", order_body(view),
                            view["id"], "updateOrder")
    return None
