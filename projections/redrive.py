"""The calls that repair drift: the sync's own bodies for the latest state, nothing else.

Built with the same builders as the sync (`commerce_bodies`), so a repair is a
call the sync could have sent. Absolute values make it harmless to repeat; what
Commerce is entitled to is put back into the body as Commerce holds it, so a repair
changes only the drifted fields (an agent's credit beyond ours stays, an agent's
refund method is read back just before, as the sync does). In the `op` flavour
`initiateRefund` is never re-sent: Commerce refunds on it, and whether an earlier
one took effect cannot be told from the return alone; a person decides.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from projections.commerce_bodies import (
    UPDATE_ORDER,
    UPDATE_RETURN_REQUEST,
    CommerceCall,
    Flavour,
    classic_body,
    credit_body,
    op_calls,
    shipment_body,
)
from projections.drift import DRIFT, PENDING, Expected, Finding, member_key

Json = dict[str, Any]

OP_FOR_STATE = {
    "FULL_RETURN": "receiveReturns",
    "PARTIAL_RETURN": "receiveReturns",
    "MANUAL_REFUND": "markManualRefund",
    "COMPLETE": "markAsComplete",
}
"""In the op flavour, the operation that brings Commerce to a state we set."""
REFUNDED_STATES = frozenset({"PENDING_REFUND", "MANUAL_REFUND", "COMPLETE"})
OP_ORDER = ("receiveReturns", "adjustRefundAmounts", "markManualRefund", "markAsComplete")


@dataclass(frozen=True)
class Repair:
    """One call and the findings (indexes into the resource's findings) it repairs."""

    call: CommerceCall
    covers: tuple[int, ...]


def repairs(want: Expected, findings: list[Finding], flavour: Flavour, held: Json | None) -> list[Repair]:
    """The calls for a resource's drift; none while the sync has a call for it still to send."""
    drifted = [i for i, f in enumerate(findings) if f.verdict == DRIFT]
    if not drifted or held is None or any(f.verdict == PENDING for f in findings):
        return []
    if want.kind == "order":
        return _order_repairs(want, findings, drifted)
    path = f"/ccadmin/v1/returnRequests/{want.subject}"
    if flavour == "classic":
        body = keep_theirs(classic_body(want.view), findings)
        return [Repair(CommerceCall("PUT", path, body, want.subject, UPDATE_RETURN_REQUEST), tuple(drifted))]
    wanted: dict[str, list[int]] = {}
    for i in drifted:
        op = _op_for(findings[i], held)
        if op is not None:
            wanted.setdefault(op, []).append(i)
    bodies = dict(_op_bodies(want.view))
    return [
        Repair(
            CommerceCall(
                "PUT", path, {"op": op, **bodies.get(op, {})}, want.subject, f"{UPDATE_RETURN_REQUEST}:{op}"
            ),
            tuple(wanted[op]),
        )
        for op in OP_ORDER
        if op in wanted
    ]


def _order_repairs(want: Expected, findings: list[Finding], drifted: list[int]) -> list[Repair]:
    path = f"/ccadmin/v1/orders/{want.subject}"
    credit = tuple(i for i in drifted if findings[i].path[0] == "paymentGroups")
    shipment = tuple(i for i in drifted if i not in credit)
    out = []
    if shipment:
        body = keep_theirs(shipment_body(want.view), findings)
        out.append(
            Repair(CommerceCall("PUT", path, body, want.subject, f"{UPDATE_ORDER}:shipment"), shipment)
        )
    if credit:
        body = keep_theirs(credit_body(want.view), findings)
        out.append(Repair(CommerceCall("PUT", path, body, want.subject, f"{UPDATE_ORDER}:credit"), credit))
    return out


def _op_for(finding: Finding, held: Json) -> str | None:
    """Which operation repairs a field in the op flavour; None when none may be sent."""
    field = finding.path[-1]
    if field == "quantityReceived":
        return "receiveReturns"
    if field in ("actualTaxRefund", "actualShippingRefund"):
        return "adjustRefundAmounts"
    op = OP_FOR_STATE.get(str(finding.ours)) if field == "state" else None
    if op == "markAsComplete" and held.get("state") not in REFUNDED_STATES:
        return None  # completing a return Commerce never refunded would lose the refund
    return op


def _op_bodies(view: Json) -> list[tuple[str, Json]]:
    return [
        *op_calls("ReturnRequest.ItemsReceived", None, view),
        *op_calls("ReturnRequest.RefundStep", "initiate_refund", view),
    ]


def keep_theirs(body: Json, findings: list[Finding]) -> Json:
    """`body` with every field Commerce is entitled to set back to what Commerce holds."""
    body = copy.deepcopy(body)
    for finding in findings:
        if finding.verdict in (DRIFT, PENDING) or finding.theirs is None:
            continue
        value = _number(finding.theirs)
        name = finding.path[0]
        if len(finding.path) == 1 and name in body:
            body[name] = value
        elif len(finding.path) == 3 and isinstance(body.get(name), list):
            for member in body[name]:
                if member_key(name, member) == finding.path[1] and finding.path[2] in member:
                    member[finding.path[2]] = value
    return body


def _number(value: Any) -> Any:
    """JSON numbers read back go out exactly as read (Decimal, not float)."""
    return Decimal(str(value)) if isinstance(value, float) else value
