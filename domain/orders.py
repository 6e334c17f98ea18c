"""The order aggregate: what Commerce told us about an order, and what happened to it since.

Every event carries the same audit fields (trigger, source, target, actor, cause;
the library stamps the time), so the history reads as a list of transitions.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.identity import order_uuid

Snapshot = dict[str, Any]


class Order(Aggregate):
    """An order as Commerce submitted it (PCI-free), keyed by Commerce's order id."""

    @classmethod
    def create_id(cls, commerce_id: str) -> UUID:
        return order_uuid(commerce_id)

    @event("Submitted")
    def __init__(
        self,
        commerce_id: str,
        snapshot: Snapshot,
        last_modified: int,
        fingerprint: str,
        origin: str,
        trigger: str,
        source: str | None,
        target: str,
        actor: str,
        cause: str,
    ) -> None:
        self.commerce_id = commerce_id
        self.snapshot = snapshot
        self.last_modified = last_modified
        self.fingerprint = fingerprint
        self.origin = origin
        self.state = target
        self.lifecycle_state = "IDLE"

    @classmethod
    def submit(
        cls,
        snapshot: Snapshot,
        *,
        last_modified: int,
        fingerprint: str,
        origin: str,
        actor: str,
        cause: str,
    ) -> Order:
        """Create from Order Submit (origin `order-submit`) or a return's embedded order."""
        return cls(
            commerce_id=snapshot["id"],
            snapshot=snapshot,
            last_modified=last_modified,
            fingerprint=fingerprint,
            origin=origin,
            trigger="submit" if origin == "order-submit" else "import",
            source=None,
            target=snapshot["state"],
            actor=actor,
            cause=cause,
        )

    def is_newer(self, last_modified: int, fingerprint: str) -> bool:
        """Only a strictly newer, different snapshot changes anything (retries, reordering)."""
        return last_modified > self.last_modified and fingerprint != self.fingerprint

    def refresh_from_commerce(
        self,
        snapshot: Snapshot,
        *,
        last_modified: int,
        fingerprint: str,
        actor: str,
        cause: str,
    ) -> bool:
        if not self.is_newer(last_modified, fingerprint):
            return False
        self._snapshot_updated(
            snapshot=snapshot,
            last_modified=last_modified,
            fingerprint=fingerprint,
            trigger="commerce_update",
            source=self.state,
            target=snapshot["state"],
            actor=actor,
            cause=cause,
        )
        return True

    @event("SnapshotUpdated")
    def _snapshot_updated(
        self,
        snapshot: Snapshot,
        last_modified: int,
        fingerprint: str,
        trigger: str,
        source: str,
        target: str,
        actor: str,
        cause: str,
    ) -> None:
        self.snapshot = snapshot
        self.last_modified = last_modified
        self.fingerprint = fingerprint
        self.state = target


SHIPPED_GROUP_STATES = frozenset({"NO_PENDING_ACTION", "PENDING_CUSTOMER_RETURN"})
"""A group Commerce already reports in these states has left the warehouse."""


def quantity_shipped(group: Snapshot, link: Snapshot) -> int:
    """Recorded shipments win; otherwise trust a group Commerce reports as done."""
    if "quantityShipped" in link:
        return int(link["quantityShipped"])
    return int(link["quantity"]) if group.get("state") in SHIPPED_GROUP_STATES else 0
