"""What an agent does at Commerce between our calls (the Agent Console), as simulator methods.

Each edit is checked against the documented vocabularies and shapes (an agent works
inside Commerce, so Commerce never holds what the documents do not show), applied to
what Commerce holds, logged in `agent_log` and returned as an `Edit`. No webhook is sent:
whether the Return Request Update that would follow goes out is the caller's choice
(`webhook_body()` gives its body).
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from tests.commerce_sim import documents as D
from tests.commerce_sim.assumptions import currency_digits
from tests.commerce_sim.edits import Edit, EditKind, lost_edits, member
from tests.commerce_sim.rules import (
    Context,
    Json,
    Refused,
    check_refund_methods,
    check_value,
    currency_of,
    exact,
    refund_method_keys,
    return_item_key,
)


def _plain(amount: Decimal) -> int | float:
    return int(amount) if amount == amount.to_integral_value() else float(amount)


class AgentConsole:
    """Mixed into `CommerceSimulator`: needs `orders`, `returns`, `agent_log`, `seeded_credits`."""

    orders: dict[str, Json]
    returns: dict[str, Json]
    agent_log: list[Edit]
    seeded_credits: dict[str, Decimal]
    return_reasons: frozenset[str]

    def _log(self, kind: EditKind, resource: str, target: str, expect: Json, **credit: Decimal) -> Edit:
        edit = Edit(len(self.agent_log) + 1, kind, resource, target, copy.deepcopy(expect), **credit)
        self.agent_log.append(edit)
        return edit

    def _context_for_order(self, order: Json | None) -> Context:
        return Context(currency_digits(currency_of(order)), self.return_reasons)

    def originating_order(self, return_request: Json) -> Json | None:
        """The return's order as Commerce holds it now (A16), else the copy the return carries."""
        nested = return_request.get("originatingOrder")
        ident = return_request.get("originatingOrderId") or (
            nested.get("id") if isinstance(nested, dict) else None
        )
        held = self.orders.get(str(ident)) if ident is not None else None
        return held if held is not None else (nested if isinstance(nested, dict) else None)

    def return_context(self, return_request: Json) -> Context:
        return self._context_for_order(self.originating_order(return_request))

    def _check(self, value: Any, field: D.Field, what: str, ctx: Context | None = None) -> None:
        try:
            check_value(exact(value), field, what, ctx or Context(reasons=self.return_reasons))
        except Refused as exc:
            raise ValueError(str(exc)) from exc

    def agent_set_state(self, return_id: str, state: str) -> Edit:
        """An agent changes the return's state (any documented state: A6 binds the Admin API only)."""
        self._check(state, D.RETURN_REQUEST_FIELDS["state"], "state")
        self.returns[return_id]["state"] = state
        return self._log("return_state", f"returnRequests/{return_id}", "self", {"state": state})

    def agent_set_order_state(self, order_id: str, state: str) -> Edit:
        self._check(state, D.ORDER_FIELDS["state"], "state")
        self.orders[order_id]["state"] = state
        return self._log("order_state", f"orders/{order_id}", "self", {"state": state})

    def agent_add_return_item(self, return_id: str, item: Json) -> Edit:
        """An item added to the return at Commerce: identified by commerceItemId + shippingGroupId."""
        held = self.returns[return_id]
        key = return_item_key(item)
        if key is None or not all(isinstance(item.get(k), str) for k in D.RETURN_ITEM_IDENTITY):
            raise ValueError("an item needs commerceItemId and shippingGroupId (OMS :411, :414)")
        if any(return_item_key(m) == key for m in held.get("returnItemList") or []):
            raise ValueError(f"the return already has an item {key}")
        for name in ("state", "returnReason", "quantityReceived"):
            if name in item:
                self._check(item[name], D.RETURN_ITEM_FIELDS[name], name)
        item = {"id": f"{return_id}-agent-{len(self.agent_log) + 1}", **item}  # A19: Commerce names it
        held.setdefault("returnItemList", []).append(copy.deepcopy(item))
        return self._log("add_item", f"returnRequests/{return_id}", f"item:{key[0]}|{key[1]}", item)

    def agent_credit(self, order_id: str, payment_group_id: str, amount: float | Decimal | str) -> Edit:
        """An agent (or Commerce) records a credit on a payment group: amountCredited grows."""
        order = self.orders[order_id]
        group = member(order, f"paymentGroup:{payment_group_id}")
        if group is None:
            raise KeyError(payment_group_id)
        credit = Decimal(str(amount))
        self._check(
            credit, D.PAYMENT_GROUP_WRITABLE["amountCredited"], "amount", self._context_for_order(order)
        )
        before = Decimal(str(group.get("amountCredited") or 0))
        group["amountCredited"] = _plain(before + credit)
        return self._log(
            "credit",
            f"orders/{order_id}",
            f"paymentGroup:{payment_group_id}",
            {},
            amount=credit,
            before=before,
        )

    def agent_add_refund_method(self, return_id: str, method: Json) -> Edit:
        """An agent adds a refund method (a manual refund, say), documented fields only (A1).

        The edit expects the method to stay, with its type and state; its amount is what the
        refund allocates (an agent who sets an amount changes it: `agent_change_refund_method`)."""
        held = self.returns[return_id]
        try:
            check_refund_methods(exact([method]), self.return_context(held))
        except Refused as exc:
            raise ValueError(str(exc)) from exc
        methods = held.setdefault("refundMethodList", [])
        methods.append(copy.deepcopy(method))
        kind, rank = refund_method_keys(methods)[-1]
        kept = {k: v for k, v in method.items() if k != "amount"}  # the amount is the refund's to set
        target = f"refundMethod:{kind}#{rank}"
        return self._log("add_refund_method", f"returnRequests/{return_id}", target, kept)

    def agent_change_refund_method(self, return_id: str, index: int, **changes: Any) -> Edit:
        """An agent changes the amount or state of the return's `index`-th refund method."""
        held = self.returns[return_id]
        methods = held.get("refundMethodList") or []
        if not 0 <= index < len(methods) or "refundType" in changes:
            raise ValueError("a refund method of the return, by index; its refundType identifies it (A1)")
        try:
            check_refund_methods(exact([{"refundType": "x", **changes}]), self.return_context(held))
        except Refused as exc:
            raise ValueError(str(exc)) from exc
        methods[index].update(copy.deepcopy(changes))
        kind, rank = refund_method_keys(methods)[index]
        return self._log(
            "refund_method", f"returnRequests/{return_id}", f"refundMethod:{kind}#{rank}", changes
        )

    def resources(self) -> dict[str, Json | None]:
        """What Commerce holds, by `returnRequests/ID` and `orders/ID`."""
        held: dict[str, Json | None] = {f"orders/{k}": v for k, v in self.orders.items()}
        held.update({f"returnRequests/{k}": v for k, v in self.returns.items()})
        return held

    def lost_agent_edits(
        self, edits: list[Edit] | None = None, others_credits: dict[str, Decimal] | None = None
    ) -> list[Edit]:
        """Which of `edits` (default: every agent edit so far) Commerce no longer holds."""
        chosen = self.agent_log if edits is None else edits
        return lost_edits(chosen, self.resources(), others_credits, self.seeded_credits)

    def webhook_body(self, return_id: str) -> Json:
        """The Return Request Update that would follow (RRU :11-320 shape): the return with its order."""
        held = copy.deepcopy(self.returns[return_id])
        order = self.originating_order(held)
        if order is not None:
            held["originatingOrder"] = copy.deepcopy(order)
        return {"return": held}
