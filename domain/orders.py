"""The order aggregate: what Commerce told us about an order, and what happened to it since.

Every event carries the same audit fields (trigger, source, target, actor, cause;
the library stamps the time), so the history reads as a list of transitions.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError
from domain.identity import order_uuid
from domain.machines import CONTEXT_TRIGGERS, fire

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
        self.answers: dict[str, str] = {}
        self.refund_quote: dict[str, Any] | None = None
        self.return_ids: list[str] = []
        self.shipments: list[dict[str, Any]] = []
        self.credited: dict[str, str] = {}
        self.credited_since: dict[str, str] = {}
        self.credits_by_return: dict[str, dict[str, str]] = {}
        self.issued_rmas: dict[str, str] = {}
        self.exchange_of: dict[str, str] | None = None
        self.replacement_orders: list[dict[str, str]] = []

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
        reported_before = _reported_credits(self.snapshot)
        self.snapshot = snapshot
        self.last_modified = last_modified
        self.fingerprint = fingerprint
        self.state = target
        reported = _reported_credits(snapshot)
        self.credited_since = {
            group_id: amount
            for group_id, amount in self.credited_since.items()
            if reported.get(group_id) == reported_before.get(group_id)
        }

    def link_return(self, return_id: str, *, actor: str, cause: str) -> bool:
        """Remember the order's returns, so eligibility can count what is already returned."""
        if return_id in self.return_ids:
            return False
        self._return_linked(
            return_id=return_id,
            trigger="link_return",
            source=self.state,
            target=self.state,
            actor=actor,
            cause=cause,
        )
        return True

    @event("ReturnLinked")
    def _return_linked(
        self, return_id: str, trigger: str, source: str, target: str, actor: str, cause: str
    ) -> None:
        self.return_ids = [*self.return_ids, return_id]

    def link_exchange(self, relation: str, other_id: str, return_id: str, *, actor: str, cause: str) -> bool:
        """Link an exchange's orders (SPEC section 9): the original names its `replacementOrder`,
        the replacement the order it is the `exchangeOf`; False when already linked so."""
        link = {"orderId": other_id, "returnId": return_id}
        if relation == "exchangeOf" and self.exchange_of == link:
            return False
        if relation == "replacementOrder" and link in self.replacement_orders:
            return False
        if relation not in ("exchangeOf", "replacementOrder"):
            raise DomainError(f"unknown exchange link {relation!r}", code="INVALID_INPUT")
        self._exchange_linked(
            relation=relation,
            order_id=other_id,
            return_id=return_id,
            trigger="link_exchange",
            source=self.state,
            target=self.state,
            actor=actor,
            cause=cause,
        )
        return True

    @event("ExchangeLinked")
    def _exchange_linked(
        self,
        relation: str,
        order_id: str,
        return_id: str,
        trigger: str,
        source: str,
        target: str,
        actor: str,
        cause: str,
    ) -> None:
        link = {"orderId": order_id, "returnId": return_id}
        if relation == "exchangeOf":
            self.exchange_of = link
        else:
            self.replacement_orders = [*self.replacement_orders, link]

    def record_validation(
        self,
        *,
        context: str,
        facts: dict[str, Any],
        answer: dict[str, Any],
        answer_fingerprint: str,
        refund_quote: dict[str, Any] | None,
        actor: str,
        cause: str,
    ) -> bool:
        """Fire the lifecycle for a validation context; False when nothing new would be recorded.

        Raises IllegalTransition (recording nothing) when the context may not follow now.
        """
        step = fire("lifecycle", self.lifecycle_state, CONTEXT_TRIGGERS[context], **facts)
        if step.source == step.target and self.answers.get(context) == answer_fingerprint:
            return False
        self._context_validated(
            context=context,
            answer=answer,
            answer_fingerprint=answer_fingerprint,
            refund_quote=refund_quote,
            trigger=step.trigger,
            source=step.source,
            target=step.target,
            actor=actor,
            cause=cause,
        )
        return True

    def would_record(self, context: str, answer_fingerprint: str, facts: dict[str, Any]) -> bool:
        """Read-only twin of record_validation, so a repeated question needs no write."""
        step = fire("lifecycle", self.lifecycle_state, CONTEXT_TRIGGERS[context], **facts)
        return not (step.source == step.target and self.answers.get(context) == answer_fingerprint)

    @event("ContextValidated")
    def _context_validated(
        self,
        context: str,
        answer: dict[str, Any],
        answer_fingerprint: str,
        refund_quote: dict[str, Any] | None,
        trigger: str,
        source: str,
        target: str,
        actor: str,
        cause: str,
    ) -> None:
        self.lifecycle_state = target
        self.answers = {**self.answers, context: answer_fingerprint}
        if answer.get("rma") and answer.get("returnId"):
            self.issued_rmas = {**self.issued_rmas, str(answer["rma"]): str(answer["returnId"])}
        if refund_quote is not None:
            self.refund_quote = refund_quote

    def ship(
        self,
        *,
        shipping_group_id: str,
        items: dict[str, int] | None,
        tracking_number: str | None,
        ship_date: str,
        actor: str,
        cause: str,
    ) -> dict[str, int]:
        """Record a shipment (None: everything left in the group); answers what shipped now."""
        group = self.group(shipping_group_id)
        if group is None:
            raise DomainError(
                f"order {self.commerce_id} has no shipping group {shipping_group_id}", code="NOT_FOUND"
            )
        remaining = {
            link["commerceItemId"]: link["quantity"] - self.shipped_quantity(group, link)
            for link in group["items"]
        }
        wanted = {k: v for k, v in remaining.items() if v > 0} if items is None else items
        for item_id, quantity in wanted.items():
            if item_id not in remaining:
                raise DomainError(
                    f"item {item_id} is not in shipping group {shipping_group_id}", code="NOT_FOUND"
                )
            if quantity <= 0 or quantity > remaining[item_id]:
                raise DomainError(
                    f"cannot ship {quantity} of {item_id}: {remaining[item_id]} left to ship",
                    code="INVALID_QUANTITY",
                )
        if not wanted:
            raise DomainError(f"nothing left to ship in {shipping_group_id}", code="NOTHING_TO_SHIP")
        left = sum(remaining.values()) - sum(wanted.values())
        other_groups_done = all(
            sum(ln["quantity"] - self.shipped_quantity(g, ln) for ln in g["items"]) == 0
            for g in self.snapshot["shippingGroups"]
            if g["id"] != shipping_group_id
        )
        target = "NO_PENDING_ACTION" if left == 0 and other_groups_done else "PROCESSING"
        self._shipped(
            shipping_group_id=shipping_group_id,
            items=wanted,
            tracking_number=tracking_number,
            ship_date=ship_date,
            group_state="NO_PENDING_ACTION" if left == 0 else "PROCESSING",
            trigger="ship",
            source=self.state,
            target=target,
            actor=actor,
            cause=cause,
        )
        return wanted

    @event("Shipped")
    def _shipped(
        self,
        shipping_group_id: str,
        items: dict[str, int],
        tracking_number: str | None,
        ship_date: str,
        group_state: str,
        trigger: str,
        source: str,
        target: str,
        actor: str,
        cause: str,
    ) -> None:
        self.shipments = [
            *self.shipments,
            {
                "shippingGroupId": shipping_group_id,
                "items": items,
                "trackingNumber": tracking_number,
                "shipDate": ship_date,
                "groupState": group_state,
            },
        ]
        self.state = target

    def group(self, shipping_group_id: str) -> Snapshot | None:
        return next((g for g in self.snapshot["shippingGroups"] if g["id"] == shipping_group_id), None)

    def shipped_quantity(self, group: Snapshot, link: Snapshot) -> int:
        """What Commerce reported shipped, plus what we shipped since."""
        recorded = sum(
            s["items"].get(link["commerceItemId"], 0)
            for s in self.shipments
            if s["shippingGroupId"] == group["id"]
        )
        return quantity_shipped(group, link, self.snapshot.get("state")) + recorded

    def group_state(self, group: Snapshot) -> str:
        states = [s["groupState"] for s in self.shipments if s["shippingGroupId"] == group["id"]]
        return states[-1] if states else str(group["state"])

    def ship_date(self, group: Snapshot) -> str | None:
        dates = [s["shipDate"] for s in self.shipments if s["shippingGroupId"] == group["id"]]
        return dates[-1] if dates else group.get("actualShipDate")

    def credit(self, amounts: dict[str, str], *, return_id: str, actor: str, cause: str) -> None:
        """Record money credited back to payment groups after a return's refund settles."""
        totals = dict(self.credited)
        for group_id, amount in amounts.items():
            totals[group_id] = str(Decimal(totals.get(group_id, "0")) + Decimal(amount))
        self._credited(
            return_id=return_id,
            amounts=amounts,
            totals=totals,
            trigger="credit",
            source=self.state,
            target=self.state,
            actor=actor,
            cause=cause,
        )

    @event("Credited")
    def _credited(
        self,
        return_id: str,
        amounts: dict[str, str],
        totals: dict[str, str],
        trigger: str,
        source: str,
        target: str,
        actor: str,
        cause: str,
    ) -> None:
        self.credited = totals
        since = dict(self.credited_since)
        for group_id, amount in amounts.items():
            since[group_id] = str(Decimal(since.get(group_id, "0")) + Decimal(amount))
        self.credited_since = since
        mine = dict(self.credits_by_return.get(return_id, {}))
        for group_id, amount in amounts.items():
            mine[group_id] = str(Decimal(mine.get(group_id, "0")) + Decimal(amount))
        self.credits_by_return = {**self.credits_by_return, return_id: mine}

    def amount_credited(self, payment_group_id: str) -> Decimal:
        """What Commerce last reported credited to the group, plus what Returnflow credited since.

        A newer Commerce report of a different figure is taken to include our
        earlier credits (Commerce is told them at once), so they are not added twice.
        """
        reported = _reported_credits(self.snapshot).get(payment_group_id, Decimal(0))
        return reported + Decimal(self.credited_since.get(payment_group_id, "0"))

    def credited_amounts(self) -> dict[str, Decimal]:
        """amount_credited of every payment group."""
        return {p["id"]: self.amount_credited(p["id"]) for p in self.snapshot["paymentGroups"]}


def _reported_credits(snapshot: Snapshot) -> dict[str, Decimal]:
    return {p["id"]: Decimal(p.get("amountCredited") or "0") for p in snapshot["paymentGroups"]}


SHIPPED_GROUP_STATES = frozenset({"NO_PENDING_ACTION", "PENDING_CUSTOMER_RETURN"})
"""A group Commerce already reports in these states has left the warehouse."""


def quantity_shipped(group: Snapshot, link: Snapshot, order_state: str | None = None) -> int:
    """What Commerce reports shipped: a group, or the whole order, it marks as fulfilled."""
    if "quantityShipped" in link:
        return int(link["quantityShipped"])
    done = group.get("state") in SHIPPED_GROUP_STATES or order_state in SHIPPED_GROUP_STATES
    return int(link["quantity"]) if done else 0
