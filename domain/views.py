"""Aggregates and their events as primitive JSON documents: the shape every reader sees.

The HTTP API, the read models and the audit all use these, so an order looks the
same whether it is read live, rebuilt by replay or exported.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import DomainEvent

from domain.orders import Order
from domain.returns import ReturnRequest

Json = dict[str, Any]
_HIDDEN = frozenset({"originator_id", "originator_version", "timestamp", "snapshot", "fingerprint"})


def order_view(order: Order) -> Json:
    snap = order.snapshot
    return {
        "id": order.commerce_id,
        "state": order.state,
        "origin": order.origin,
        "currency": snap["currency"],
        "submittedDate": snap.get("submittedDate"),
        "lastModifiedTime": order.last_modified,
        "version": order.version,
        "priceInfo": snap["priceInfo"],
        "commerceItems": snap["commerceItems"],
        "shippingGroups": [
            {
                "id": g["id"],
                "state": order.group_state(g),
                "trackingNumber": _tracking(order, g),
                "actualShipDate": order.ship_date(g),
                "items": [
                    {
                        "commerceItemId": link["commerceItemId"],
                        "quantity": link["quantity"],
                        "quantityShipped": order.shipped_quantity(g, link),
                        "quantityReturned": link["returnedQuantity"],
                    }
                    for link in g["items"]
                ],
            }
            for g in snap["shippingGroups"]
        ],
        "paymentGroups": [
            {
                **{k: p[k] for k in ("id", "paymentMethod", "amount", "currencyCode", "state")},
                "amountCredited": str(order.amount_credited(p["id"])),
            }
            for p in snap["paymentGroups"]
        ],
        "creditsByReturn": order.credits_by_return,
        "lifecycleState": order.lifecycle_state,
        "returnIds": order.return_ids,
        "exchangeOf": order.exchange_of,
        "replacementOrders": order.replacement_orders,
    }


def _tracking(order: Order, group: Json) -> str | None:
    numbers = [
        s["trackingNumber"]
        for s in order.shipments
        if s["shippingGroupId"] == group["id"] and s["trackingNumber"]
    ]
    return numbers[-1] if numbers else group.get("trackingNumber")


def return_view(ret: ReturnRequest) -> Json:
    return {
        "id": ret.commerce_id,
        "orderId": ret.order_id,
        "state": ret.state,
        "processName": ret.process_name,
        "version": ret.version,
        "returnItemList": ret.items,
        "refund": ret.refund,
        "refundPlan": ret.refund_plan,
        "credited": ret.credited,
        "manualRefundReason": ret.manual_reason,
        "closeReason": ret.close_reason,
        **{k: v for k, v in ret.details.items() if k != "currency"},
        "currency": ret.details.get("currency"),
    }


def event_view(event: DomainEvent) -> Json:
    fields = {k: v for k, v in event.__dict__.items() if k not in _HIDDEN}
    source = fields.pop("source", None)
    target = fields.pop("target", None)
    view: Json = {
        "version": event.originator_version,
        "time": event.timestamp.isoformat().replace("+00:00", "Z"),
        "type": type(event).__qualname__,
        "trigger": fields.pop("trigger", None),
        "from": source,
        "to": target,
        "actor": fields.pop("actor", None),
        "cause": fields.pop("cause", None),
    }
    view.update(fields)
    return view
