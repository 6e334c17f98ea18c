"""A random agent at the Agent Console: documented edits between our calls, reproducible by seed.

`Agent(sim, random.Random(seed)).random_edit(return_id, order_id)` makes one edit: the
return's state moved forward (A6; to INCOMPLETE from any open state), the order's state
changed, an item of the order added to the return, a credit on any payment group, a
refund method's amount changed (or, with none, a manual refund added). `lost_edits()`
then tells which of its edits Commerce no longer holds. Whether the Return Request Update
that would follow is sent is the caller's choice (`sim.webhook_body(return_id)`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tests.commerce_sim import assumptions as A
from tests.commerce_sim import documents as D
from tests.commerce_sim.edits import Edit
from tests.commerce_sim.rules import Json, currency_of, return_item_key
from tests.commerce_sim.webhook_sender import Delivery, WebhookSender

if TYPE_CHECKING:
    from tests.commerce_sim.server import CommerceSimulator

RETURN_UPDATE_PATH = "/webhooks/return-request-update"
KINDS = ("return_state", "order_state", "add_item", "credit", "refund_method")


class Agent:
    """One agent's edits on a simulator; `edits` lists them in order."""

    def __init__(self, sim: CommerceSimulator, rng: random.Random, kinds: tuple[str, ...] = KINDS) -> None:
        self.sim = sim
        self.rng = rng
        self.kinds = kinds
        self.edits: list[Edit] = []
        self._added = 0

    def random_edit(self, return_id: str, order_id: str) -> Edit:
        """One documented edit, of a kind chosen at random among those possible now."""
        makers: dict[str, Callable[[], Edit | None]] = {
            "return_state": lambda: self._return_state(return_id),
            "order_state": lambda: self._order_state(order_id),
            "add_item": lambda: self._add_item(return_id, order_id),
            "credit": lambda: self._credit(order_id),
            "refund_method": lambda: self._refund_method(return_id, order_id),
        }
        for kind in self.rng.sample(list(self.kinds), len(self.kinds)):
            edit = makers[kind]()
            if edit is not None:
                self.edits.append(edit)
                return edit
        raise RuntimeError("no edit is possible on this return and order")

    async def send_update(self, sender: WebhookSender, return_id: str, attempts: int = 5) -> list[Delivery]:
        """The Return Request Update that would follow an edit, delivered as Commerce does."""
        return await sender.deliver(RETURN_UPDATE_PATH, self.sim.webhook_body(return_id), attempts)

    def lost_edits(self, others_credits: Mapping[str, Decimal] | None = None) -> list[Edit]:
        """This agent's edits that Commerce no longer holds (see `edits.lost_edits`)."""
        return self.sim.lost_agent_edits(self.edits, dict(others_credits) if others_credits else None)

    # --- the edits ---------------------------------------------------------------------------

    def _return_state(self, return_id: str) -> Edit | None:
        held = self.sim.returns[return_id].get("state")
        states = sorted(s for s in D.RETURN_STATES if s != held and A.return_state_may_move(held, s))
        return self.sim.agent_set_state(return_id, self.rng.choice(states)) if states else None

    def _order_state(self, order_id: str) -> Edit | None:
        held = self.sim.orders[order_id].get("state")
        states = sorted(D.ORDER_STATES - {held, "SUBMITTED"})  # A8
        return self.sim.agent_set_order_state(order_id, self.rng.choice(states))

    def _add_item(self, return_id: str, order_id: str) -> Edit | None:
        taken = {return_item_key(m) for m in self.sim.returns[return_id].get("returnItemList") or []}
        free = [pair for pair in _order_lines(self.sim.orders[order_id]) if pair not in taken]
        self._added += 1
        if free:
            commerce_item, group = self.rng.choice(free)
        else:
            groups = [g["id"] for g in self.sim.orders[order_id].get("shippingGroups") or [] if g.get("id")]
            commerce_item, group = f"ci-agent-{self._added}", (groups[0] if groups else "sg-agent")
        item: Json = {
            "id": f"agent-{return_id}-{self._added}",
            "commerceItemId": commerce_item,
            "shippingGroupId": group,
            "quantityToReturn": self.rng.randint(1, 3),
            "quantityReceived": 0,
            "state": "AWAITING_RETURN",
            "returnReason": self.rng.choice(sorted(self.sim.return_reasons)),
        }
        return self.sim.agent_add_return_item(return_id, item)

    def _amount(self, order: Json | None) -> Decimal:
        digits = A.currency_digits(currency_of(order))
        return Decimal(self.rng.randint(1, 20 * 10**digits)).scaleb(-digits)

    def _credit(self, order_id: str) -> Edit | None:
        order = self.sim.orders[order_id]
        groups = [g["id"] for g in order.get("paymentGroups") or [] if g.get("id")]
        if not groups:
            return None
        return self.sim.agent_credit(order_id, self.rng.choice(groups), self._amount(order))

    def _refund_method(self, return_id: str, order_id: str) -> Edit | None:
        amount = self._amount(self.sim.orders.get(order_id))
        methods = self.sim.returns[return_id].get("refundMethodList") or []
        if methods:
            index = self.rng.randrange(len(methods))
            return self.sim.agent_change_refund_method(return_id, index, amount=_plain(amount))
        method = {"refundType": "manualRefund", "amount": _plain(amount), "state": "INCOMPLETE"}
        return self.sim.agent_add_refund_method(return_id, method)


def _plain(amount: Decimal) -> Any:
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def _order_lines(order: Json) -> list[tuple[str, str]]:
    """(commerceItemId, shippingGroupId) of the order's lines: its SHIPPINGQUANTITY relationships
    (OMS :186-204) and its groups' commerceItemRelationships (RRU :42-50)."""
    lines: list[tuple[str, str]] = []
    for rel in order.get("relationships") or []:
        if rel.get("commerceItemId") and rel.get("shippingGroupId"):
            lines.append((str(rel["commerceItemId"]), str(rel["shippingGroupId"])))
    for group in order.get("shippingGroups") or []:
        for rel in group.get("commerceItemRelationships") or []:
            if rel.get("commerceItemId") and group.get("id"):
                lines.append((str(rel["commerceItemId"]), str(group["id"])))
    return sorted(set(lines))
