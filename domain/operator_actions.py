"""Which operator actions a return allows now, asked of the machines themselves.

The console offers a button only for an action the operator API would accept
in the return's current state, so both must answer from the same rules: each
action here fires the machines' triggers with the facts the return holds (the
outcome is memoised by `fire`, and nothing is recorded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.machines import IllegalTransition, fire
from domain.returns import receipt_facts

ACTIONS = ("authorize", "receive", "refund_initiate", "refund_manual", "refund_settle", "close")


@dataclass(frozen=True)
class Allowed:
    """An action allowed now; `items` lists the return items it may name."""

    action: str
    items: tuple[str, ...] = ()


def _fires(machine: str, state: str, trigger: str, **facts: Any) -> bool:
    try:
        fire(machine, state, trigger, **facts)
    except IllegalTransition:
        return False
    return True


def allowed_actions(view: dict[str, Any]) -> list[Allowed]:
    """Actions for a return's view (`domain.views.return_view`), in the order of ACTIONS."""
    state = view["state"]
    items: list[dict[str, Any]] = view["returnItemList"]
    if state in ("COMPLETE", "INCOMPLETE"):
        return []
    found: list[Allowed] = []
    approvable = tuple(
        i["returnItemId"]
        for i in items
        if _fires("return_item", i["state"], "approve", shipment_required=True)
    )
    if approvable or state == "PENDING_CUSTOMER_ACTION":
        # Before goods arrive an RMA or tracking number may still be recorded (the domain
        # refuses an authorize only when final, or when it would change nothing).
        found.append(Allowed("authorize", approvable))
    receivable = tuple(
        i["returnItemId"]
        for i in items
        if i["quantityReceived"] < i["quantityToReturn"]
        and _fires("return_item", i["state"], "receive", fully_received=False)
    )
    if receivable and _fires("return", state, "receive", some_received=True):
        found.append(Allowed("receive", receivable))
    facts = receipt_facts(items)
    if _fires("return", state, "initiate_refund", refund_known=True, **facts):
        found.append(Allowed("refund_initiate"))
    if _fires("return", state, "require_manual_refund"):
        found.append(Allowed("refund_manual"))
    if _fires("return", state, "settle_refund", refund_recorded=view.get("refundPlan") is not None):
        found.append(Allowed("refund_settle"))
    if _fires("return", state, "close_incomplete"):
        found.append(Allowed("close"))
    return found
