"""Stored events as CloudEvents 1.0 messages, each carrying the resource's state after it.

The state travels with the event so a consumer can build absolute Commerce
bodies without reading the store; the id (aggregate uuid + version) is stable,
so a re-published event is recognisably the same message.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, DomainEvent

from domain.orders import Order
from domain.returns import ReturnRequest
from domain.views import event_view, order_view, return_view
from projections.lru import Lru

SOURCE = "urn:returnflow:event-store"
TYPE_PREFIX = "com.returnflow."


class StateFolder:
    """Aggregates folded forward event by event, so the relay never re-reads a whole history."""

    def __init__(self, store: Application[UUID], capacity: int = 1024, *, name: str = "folded") -> None:
        """`capacity`: the aggregates kept; events of one aggregate come close together, so a
        few suffice, and a miss re-reads that aggregate's events."""
        self.store = store
        self._cache: Lru[UUID, Aggregate] = Lru(name, capacity)

    def after(self, event: DomainEvent) -> Aggregate:
        """A creation is neither a hit nor a miss; an entry is out while its event applies, so
        one that fails to apply is not kept half-changed."""
        aggregate = None
        if event.originator_version > 1:
            aggregate = self._cache.get(event.originator_id)
            self._cache.pop(event.originator_id)
        if aggregate is not None and aggregate.version == event.originator_version - 1:
            event.mutate(aggregate)  # type: ignore[attr-defined]
        elif event.originator_version == 1:
            aggregate = event.mutate(None)  # type: ignore[attr-defined]
        else:
            aggregate = self.store.repository.get(event.originator_id, version=event.originator_version)
        assert aggregate is not None
        self._cache.put(event.originator_id, aggregate)
        return aggregate


def to_cloudevent(notification_id: int, event: DomainEvent, aggregate: Aggregate) -> dict[str, Any]:
    if isinstance(aggregate, ReturnRequest):
        kind, state = "return", return_view(aggregate)
    elif isinstance(aggregate, Order):
        kind, state = "order", order_view(aggregate)
    else:
        raise TypeError(f"no CloudEvent mapping for {type(aggregate).__name__}")
    view = event_view(event)
    return {
        "specversion": "1.0",
        "id": f"{event.originator_id}:{event.originator_version}",
        "type": TYPE_PREFIX + view["type"],
        "source": SOURCE,
        "subject": state["id"],
        "time": view["time"],
        "datacontenttype": "application/json",
        "data": {"kind": kind, "notificationId": notification_id, "event": view, "state": state},
    }


def encode(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)


def decode(raw: bytes) -> dict[str, Any]:
    message = orjson.loads(raw)
    if not isinstance(message, dict) or message.get("specversion") != "1.0":
        raise ValueError("not a CloudEvents 1.0 JSON message")
    return message
