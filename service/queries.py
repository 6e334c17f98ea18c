"""Read side of the HTTP API: aggregates and their events as primitive JSON documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import DomainEvent

from domain.identity import order_uuid, return_uuid
from domain.orders import Order, quantity_shipped
from domain.returns import ReturnRequest
from service.store import EventStore

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
                "state": g["state"],
                "trackingNumber": g.get("trackingNumber"),
                "actualShipDate": g.get("actualShipDate"),
                "items": [
                    {
                        "commerceItemId": link["commerceItemId"],
                        "quantity": link["quantity"],
                        "quantityShipped": quantity_shipped(g, link),
                        "quantityReturned": link["returnedQuantity"],
                    }
                    for link in g["items"]
                ],
            }
            for g in snap["shippingGroups"]
        ],
        "paymentGroups": [
            {k: p[k] for k in ("id", "paymentMethod", "amount", "amountCredited", "currencyCode",
                               "state")}
            for p in snap["paymentGroups"]
        ],
    }


def return_view(ret: ReturnRequest) -> Json:
    return {
        "id": ret.commerce_id,
        "orderId": ret.order_id,
        "state": ret.state,
        "processName": ret.process_name,
        "version": ret.version,
        "returnItemList": ret.items,
        "refund": ret.refund,
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


class Queries:
    """Synchronous reads; the HTTP layer runs them off the event loop."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def _get(self, aggregate_id: UUID, version: int | None = None) -> Any:
        try:
            return self.store.repository.get(aggregate_id, version=version)
        except AggregateNotFoundError:
            return None

    def order(self, commerce_id: str) -> Json | None:
        order = self._get(order_uuid(commerce_id))
        return order_view(order) if isinstance(order, Order) else None

    def return_request(self, commerce_id: str) -> Json | None:
        ret = self._get(return_uuid(commerce_id))
        return return_view(ret) if isinstance(ret, ReturnRequest) else None

    def history(self, aggregate_id: UUID, as_of: datetime | None = None) -> list[Json] | None:
        events = [
            e for e in self.store.events.get(aggregate_id)
            if isinstance(e, DomainEvent) and (as_of is None or e.timestamp <= as_of)
        ]
        if not events and self._get(aggregate_id) is None:
            return None
        return [event_view(e) for e in events]

    def order_history(self, commerce_id: str, as_of: datetime | None = None) -> list[Json] | None:
        return self.history(order_uuid(commerce_id), as_of)

    def return_history(self, commerce_id: str, as_of: datetime | None = None) -> list[Json] | None:
        return self.history(return_uuid(commerce_id), as_of)
