"""Which returns (and orders) a reconciliation checks: read from the event store itself.

The store, not a read model, so the answer does not depend on a follower being up
to date or on where projections are kept. Synchronous: run it off the event loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from eventsourcing.application import Application

from domain.identity import order_uuid, return_uuid
from projections.relay import read_page

RETURN_CREATED = "ReturnRequest.Received"
ORDER_CREATED = "Order.Submitted"


@dataclass(frozen=True, order=True)
class Unit:
    """One return and its order (`return_id` None: an order named alone by `--id`)."""

    key: str
    return_id: str | None
    order_id: str | None


def everything(
    store: Application[UUID], since: datetime | None = None, page_size: int = 10_000
) -> list[Unit]:
    """Every return whose return or order changed at or after `since`, in id order."""
    returns: dict[UUID, tuple[str, str]] = {}
    orders: dict[str, UUID] = {}
    last: dict[UUID, datetime] = {}
    position = 0
    while page := read_page(store, position, page_size):
        for _, event in page:
            last[event.originator_id] = event.timestamp
            name = type(event).__qualname__
            if name == RETURN_CREATED:
                returns[event.originator_id] = (event.commerce_id, event.order_id)  # type: ignore[attr-defined]
            elif name == ORDER_CREATED:
                orders[event.commerce_id] = event.originator_id  # type: ignore[attr-defined]
        position = page[-1][0]
    units = []
    for uuid, (return_id, order_id) in returns.items():
        changed = max(last[uuid], last.get(orders.get(order_id, uuid), last[uuid]))
        if since is None or changed >= since:
            units.append(Unit(return_id, return_id, order_id))
    return sorted(units)


def named(store: Application[UUID], ids: Iterable[str]) -> list[Unit]:
    """The returns (or orders) named, in id order; an id Returnflow does not know is left out."""
    units = set()
    for ident in ids:
        created = next(iter(store.events.get(return_uuid(ident), limit=1)), None)
        if created is not None:
            units.add(Unit(ident, ident, created.order_id))  # type: ignore[attr-defined]
        elif next(iter(store.events.get(order_uuid(ident), limit=1)), None) is not None:
            units.add(Unit(ident, None, ident))
    return sorted(units)
