"""Read side of the HTTP API: aggregates and their events as primitive JSON documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import DomainEvent

from domain.identity import order_uuid, return_uuid
from domain.orders import Order
from domain.returns import ReturnRequest
from domain.views import Json, event_view, order_view, return_view
from service.store import EventStore


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
            e
            for e in self.store.events.get(aggregate_id)
            if isinstance(e, DomainEvent) and (as_of is None or e.timestamp <= as_of)
        ]
        if not events and self._get(aggregate_id) is None:
            return None
        return [event_view(e) for e in events]

    def order_history(self, commerce_id: str, as_of: datetime | None = None) -> list[Json] | None:
        return self.history(order_uuid(commerce_id), as_of)

    def return_history(self, commerce_id: str, as_of: datetime | None = None) -> list[Json] | None:
        return self.history(return_uuid(commerce_id), as_of)
