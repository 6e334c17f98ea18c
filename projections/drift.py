"""Where Commerce's record of a return or order differs from what Returnflow's history says.

What is compared is exactly what the sync sends (SPEC section 4): the fields of
the bodies `commerce_bodies` builds for the resource's latest state, in the
flavour configured. The history is folded event by event so that each field
has the event that last set it; that event decides whose the field is:

- set by a Returnflow event the sync sends (`RETURN_EVENTS`, `ORDER_EVENTS`): ours,
  a difference is `drift` (or `pending` while the sync has not sent that version yet);
- set by a Commerce override Returnflow recorded: `accepted-override`;
- set by what Commerce itself reported (a webhook): `commerce-owned`.

Commerce is also entitled to a refund method we do not know of (an agent's) and a
credit beyond ours on a payment group: both are `commerce-owned`, never fixed.
Pure: the caller reads the events and Commerce's answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from eventsourcing.domain import Aggregate, DomainEvent

from domain.orders import Order
from domain.returns import ReturnRequest
from domain.views import order_view, return_view
from projections.commerce_bodies import (
    ORDER_EVENTS,
    RETURN_EVENTS,
    Flavour,
    classic_body,
    credit_body,
    op_calls,
    shipment_body,
)

Json = dict[str, Any]
Path = tuple[str, ...]
"""`("state",)`, or `(list name, member key, field)` such as
`("returnItemList", "ci1/sg1", "quantityReceived")`."""

DRIFT, PENDING, COMMERCE_OWNED, ACCEPTED_OVERRIDE, MISSING = (
    "drift",
    "pending",
    "commerce-owned",
    "accepted-override",
    "missing-at-commerce",
)
OVERRIDE_EVENT = "ReturnRequest.CommerceOverridden"
_IDENTITY = {
    "returnItemList": ("commerceItemId", "shippingGroupId"),
    "refundMethodList": ("refundType", "paymentGroupId"),
    "shippingGroups": ("id",),
    "paymentGroups": ("id",),
}


@dataclass(frozen=True)
class Setter:
    """The event that last set a field: what the report names as "should have set it"."""

    type: str
    version: int
    time: str
    trigger: str | None


@dataclass(frozen=True)
class Finding:
    kind: str
    subject: str
    path: Path
    ours: Any
    theirs: Any
    verdict: str
    event: Setter | None

    @property
    def field(self) -> str:
        """`returnItemList[ci1/sg1].state`: the path as one readable name."""
        if len(self.path) == 3:
            return f"{self.path[0]}[{self.path[1]}].{self.path[2]}"
        return ".".join(self.path)


@dataclass
class Expected:
    """What Commerce should hold for one resource, each field with the event that set it."""

    kind: str
    subject: str
    version: int
    view: Json
    fields: dict[Path, Any]
    setters: dict[Path, Setter]


def member_key(name: str, member: Json) -> str:
    """How Commerce matches a list member (as the simulator, from the documents)."""
    if name == "returnItemList":
        nested = member.get("commerceItem")
        item = member.get("commerceItemId") or (nested.get("id") if isinstance(nested, dict) else None)
        return f"{item}/{member.get('shippingGroupId')}"
    if name == "refundMethodList":
        group = member.get("paymentGroupId")
        return f"paymentGroup:{group}" if group is not None else f"type:{member.get('refundType')}"
    return str(member.get("id"))


def flatten(body: Json) -> dict[Path, Any]:
    """A body (or Commerce's record) as path -> scalar; maps such as additionalProperties and
    members' identity keys are left out."""
    fields: dict[Path, Any] = {}
    for key, value in body.items():
        if key in _IDENTITY and isinstance(value, list):
            for member in value:
                if not isinstance(member, dict):
                    continue
                ident = member_key(key, member)
                for name, scalar in member.items():
                    if name not in _IDENTITY[key] and not isinstance(scalar, dict | list):
                        fields[(key, ident, name)] = scalar
        elif not isinstance(value, dict | list):
            fields[(key,)] = value
    return fields


def return_fields(view: Json, flavour: Flavour) -> dict[Path, Any]:
    """The return fields the sync sets in this flavour."""
    if flavour == "classic":
        return flatten(classic_body(view))
    fields: dict[Path, Any] = {("state",): view["state"]}
    for item in view["returnItemList"]:
        fields[("returnItemList", member_key("returnItemList", item), "quantityReceived")] = item[
            "quantityReceived"
        ]
    for op, body in op_calls("ReturnRequest.RefundStep", "initiate_refund", view):
        if op == "adjustRefundAmounts":
            fields[("actualTaxRefund",)] = body["adjustedTaxRefund"]
            fields[("actualShippingRefund",)] = body["adjustedShippingRefund"]
    return fields


def order_fields(view: Json, flavour: Flavour) -> dict[Path, Any]:
    """The order fields the sync sets: shipments; credits only in classic (in op Commerce refunds)."""
    fields = flatten(shipment_body(view))
    if flavour == "classic":
        fields.update(flatten(credit_body(view)))
    return fields


def same(ours: Any, theirs: Any) -> bool:
    """Equal as Commerce would store them: numbers by value (JSON 0.1 == Decimal 0.10)."""
    if ours is None or theirs is None or isinstance(ours, bool) or isinstance(theirs, bool):
        return bool(ours == theirs)
    if isinstance(ours, int | float | Decimal) or isinstance(theirs, int | float | Decimal):
        try:
            return Decimal(str(ours)) == Decimal(str(theirs))
        except InvalidOperation:
            return False
    return bool(ours == theirs)


def expected(events: Iterable[DomainEvent], flavour: Flavour) -> Expected | None:
    """Fold the history; each field keeps the event after which it last took its value."""
    aggregate: Aggregate | None = None
    current: dict[Path, Any] = {}
    setters: dict[Path, Setter] = {}
    view: Json = {}
    for event in events:
        aggregate = event.mutate(aggregate)  # type: ignore[attr-defined]
        setter = Setter(
            type(event).__qualname__,
            event.originator_version,
            event.timestamp.isoformat().replace("+00:00", "Z"),
            getattr(event, "trigger", None),
        )
        view, fields = _view_and_fields(aggregate, flavour)
        for path, value in fields.items():
            if path not in current or not same(current[path], value):
                setters[path] = setter
        current = fields
    if aggregate is None:
        return None
    kind = "return" if isinstance(aggregate, ReturnRequest) else "order"
    return Expected(kind, view["id"], aggregate.version, view, current, setters)


def _view_and_fields(aggregate: Aggregate | None, flavour: Flavour) -> tuple[Json, dict[Path, Any]]:
    if isinstance(aggregate, ReturnRequest):
        view = return_view(aggregate)
        return view, return_fields(view, flavour)
    if isinstance(aggregate, Order):
        view = order_view(aggregate)
        return view, order_fields(view, flavour)
    raise TypeError(type(aggregate).__name__)


Pending = Callable[[Expected, Setter], bool]
"""Whether the sync has yet to send the call of that event (its ledger is behind)."""


def compare(want: Expected, held: Json | None, pending: Pending) -> list[Finding]:
    """Each difference between what Commerce should hold and what it holds, with its verdict."""
    if held is None:
        return [Finding(want.kind, want.subject, ("(resource)",), "present", None, MISSING, None)]
    theirs = flatten(held)
    findings = []
    for path, ours in want.fields.items():
        value = theirs.get(path)
        if same(ours, value):
            continue
        setter = want.setters.get(path)
        findings.append(
            Finding(
                want.kind,
                want.subject,
                path,
                ours,
                value,
                _verdict(want, path, ours, value, setter, pending),
                setter,
            )
        )
    if any(p[0] == "refundMethodList" for p in want.fields):
        findings += [
            Finding(want.kind, want.subject, path, None, value, COMMERCE_OWNED, None)
            for path, value in theirs.items()
            if path[0] == "refundMethodList" and path[-1] == "amount" and path not in want.fields
        ]
    return findings


def _verdict(
    want: Expected, path: Path, ours: Any, theirs: Any, setter: Setter | None, pending: Pending
) -> str:
    if (
        path[-1] == "amountCredited"
        and theirs is not None
        and same(max(Decimal(str(ours)), Decimal(str(theirs))), theirs)
    ):
        return COMMERCE_OWNED  # a credit Commerce or an agent recorded beyond ours
    if setter is None:
        return COMMERCE_OWNED
    if setter.type == OVERRIDE_EVENT:
        return ACCEPTED_OVERRIDE
    if setter.type not in RETURN_EVENTS | ORDER_EVENTS:
        return COMMERCE_OWNED
    return PENDING if pending(want, setter) else DRIFT
