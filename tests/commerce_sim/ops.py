"""updateReturnRequest in the `op` flavour of newer Admin API releases (seeds/README.md :31-38).

What each operation does is read from its name; the documents give the names and the
body fields only, so every effect here rests on assumptions A13-A15 (`assumptions.py`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tests.commerce_sim import assumptions as A
from tests.commerce_sim import documents as D
from tests.commerce_sim.rules import Context, Json, Refused, check_value

OP_BODIES: dict[str, frozenset[str]] = {  # A13
    "receiveReturns": frozenset({"op", "returnItems"}),
    "adjustRefundAmounts": frozenset({"op", *D.OP_ADJUST_FIELDS}),
    "initiateRefund": frozenset({"op"}),
    "markManualRefund": frozenset({"op"}),
    "markAsComplete": frozenset({"op"}),
}
OP_STATES = {
    "initiateRefund": "PENDING_REFUND",
    "markManualRefund": "MANUAL_REFUND",
    "markAsComplete": "COMPLETE",
}


@dataclass(frozen=True)
class IssuedRefund:
    """A15: Commerce issued a refund itself (initiateRefund): its own refund methods' amounts."""

    return_id: str
    methods: list[Json]

    @property
    def total(self) -> Decimal:
        return sum((Decimal(str(m.get("amount") or 0)) for m in self.methods), Decimal(0))


def check_op_body(body: Json, held: Json, ctx: Context) -> str:
    """The op named (README :31: required; :32-35: its values) and only its fields (A13)."""
    op = body.get("op")
    if op not in OP_BODIES:
        raise Refused("$.op", f"is required and must be one of {', '.join(D.OPS)} (README :31-35)")
    for key in body:
        if key not in OP_BODIES[op]:
            raise Refused(f"$.{key}", f"is not a property of the {op} operation (A13)")
    for key, field in D.OP_ADJUST_FIELDS.items():
        if key in body:
            check_value(body[key], field, f"$.{key}", ctx)
    if op == "receiveReturns":
        _check_receipts(body.get("returnItems"), held, ctx)
    wanted = OP_STATES.get(op)
    if wanted is not None and not A.return_state_may_move(held.get("state"), wanted):
        raise Refused("$.op", f"{op} would move the return back from {held.get('state')} to {wanted} (A6)")
    return str(op)


def _item_id(item: Json) -> str | None:
    """RRU :271 (`id`) or the flat shape's `returnItemId` (README :27-30)."""
    ident = item.get("id") or item.get("returnItemId")
    return None if ident is None else str(ident)


def _outstanding(item: Json) -> Decimal:
    return Decimal(str(item.get("quantityToReturn") or 0)) - Decimal(str(item.get("quantityReceived") or 0))


def _check_receipts(items: Any, held: Json, ctx: Context) -> None:
    if not isinstance(items, list) or not items:
        raise Refused("$.returnItems", "must be a non-empty list (README :36)")
    by_id = {_item_id(i): i for i in held.get("returnItemList") or [] if isinstance(i, dict)}
    receiving: dict[str, Decimal] = {}
    for index, item in enumerate(items):
        where = f"$.returnItems[{index}]"
        if not isinstance(item, dict):
            raise Refused(where, "must be an object")
        for key, value in item.items():
            if key not in D.OP_RETURN_ITEM_FIELDS:
                raise Refused(f"{where}.{key}", "is not a property of a received item (README :36-37)")
            check_value(value, D.OP_RETURN_ITEM_FIELDS[key], f"{where}.{key}", ctx)
        ident = item.get("returnItemId")
        target = by_id.get(ident) if isinstance(ident, str) else None
        if target is None or not isinstance(ident, str):
            raise Refused(f"{where}.returnItemId", "names no item of this return")
        receiving[ident] = receiving.get(ident, Decimal(0)) + Decimal(item.get("quantityReceived") or 0)
        if receiving[ident] > _outstanding(target):
            raise Refused(
                f"{where}.quantityReceived",
                f"is more than the {_outstanding(target)} still outstanding (A14)",
            )


def apply_op(held: Json, body: Json, return_id: str) -> tuple[Json, IssuedRefund | None]:
    """The operation's effect on the return (A14, A15); the body is already checked."""
    result = copy.deepcopy(held)
    op = body["op"]
    if op == "receiveReturns":
        _receive(result, body["returnItems"])
    elif op == "adjustRefundAmounts":
        for ours, theirs in (
            ("adjustedTaxRefund", "actualTaxRefund"),
            ("adjustedShippingRefund", "actualShippingRefund"),
        ):
            if ours in body:
                result[theirs] = body[ours]
    else:
        result["state"] = OP_STATES[op]
    if op == "initiateRefund":
        methods = [copy.deepcopy(m) for m in result.get("refundMethodList") or [] if isinstance(m, dict)]
        return result, IssuedRefund(return_id, methods)
    return result, None


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _receive(result: Json, receipts: list[Json]) -> None:
    by_id = {_item_id(i): i for i in result.get("returnItemList") or [] if isinstance(i, dict)}
    for receipt in receipts:
        target = by_id[receipt["returnItemId"]]
        received = Decimal(str(target.get("quantityReceived") or 0)) + Decimal(
            str(receipt.get("quantityReceived") or 0)
        )
        target["quantityReceived"] = _number(received)
        if receipt.get("dispositionReason") is not None:
            target["disposition"] = receipt["dispositionReason"]
        if _outstanding(target) <= 0:
            target["state"] = "RETURNED"
        elif received > 0:
            target["state"] = "PARTIAL_RETURN"
    counted = [i for i in by_id.values() if i.get("state") != "RETURN_NOT_REQUIRED"]
    done = all(i.get("state") == "RETURNED" for i in counted)
    wanted = "FULL_RETURN" if done else "PARTIAL_RETURN"
    if A.return_state_may_move(result.get("state"), wanted):
        result["state"] = wanted
