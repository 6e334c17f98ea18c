"""A record of what an agent changed at Commerce, and which of those changes Commerce no longer holds.

An edit expects some fields of one target (the return or order itself, one return item,
one refund method, one payment group's credit) to hold the values it set. A later edit
of the same field of the same target supersedes an earlier one. Credits add up instead:
a payment group must still hold every credit the agent made on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from tests.commerce_sim.rules import Json, refund_method_keys, return_item_key

EditKind = Literal["return_state", "order_state", "add_item", "credit", "refund_method", "add_refund_method"]


@dataclass(frozen=True)
class Edit:
    """One agent edit. `resource` is `returnRequests/ID` or `orders/ID`; `target` names the member
    (`self`, `item:CI|SG`, `refundMethod:TYPE#RANK`, `paymentGroup:PG`); `expect` holds the fields
    it set; for a credit, `amount` is the credit and `before` what the group held before it."""

    seq: int
    kind: EditKind
    resource: str
    target: str
    expect: Json = field(default_factory=dict)
    amount: Decimal = Decimal(0)
    before: Decimal = Decimal(0)

    def describe(self) -> str:
        what = f"credit {self.amount}" if self.kind == "credit" else repr(self.expect)
        return f"#{self.seq} {self.kind} {self.resource} {self.target}: {what}"


def member(resource: Json, target: str) -> Json | None:
    """The member of `resource` that `target` names, as Commerce holds it now."""
    if target == "self":
        return resource
    kind, _, ident = target.partition(":")
    if kind == "item":
        wanted = tuple(ident.split("|", 1))
        return next((m for m in resource.get("returnItemList") or [] if return_item_key(m) == wanted), None)
    if kind == "refundMethod":
        methods = [m for m in resource.get("refundMethodList") or [] if isinstance(m, dict)]
        kind_, _, rank = ident.rpartition("#")
        keys = refund_method_keys(methods)
        return next((m for m, k in zip(methods, keys, strict=True) if k == (kind_, int(rank))), None)
    if kind == "paymentGroup":
        return next((g for g in resource.get("paymentGroups") or [] if g.get("id") == ident), None)
    raise ValueError(target)


def _same(held: Any, wanted: Any) -> bool:
    if isinstance(held, int | float | Decimal) and isinstance(wanted, int | float | Decimal):
        return Decimal(str(held)) == Decimal(str(wanted))
    return bool(held == wanted)


def lost_edits(
    edits: list[Edit],
    resources: Mapping[str, Json | None],
    others_credits: Mapping[str, Decimal] | None = None,
    seeded_credits: Mapping[str, Decimal] | None = None,
) -> list[Edit]:
    """The edits whose values Commerce no longer holds.

    `resources` maps `returnRequests/ID` / `orders/ID` to what Commerce holds. Credits: a
    group must hold at least what it held before the agent's first credit plus all the agent's
    credits. Given `others_credits` (`orders/ID/PG` -> everything others, e.g. Returnflow,
    credited on it since it was seeded), it must hold exactly what it was seeded with
    (`seeded_credits`, same keys) plus the agent's credits plus those.
    """
    lost: list[Edit] = []
    latest: dict[tuple[str, str, str], Edit] = {}
    credits: dict[tuple[str, str], list[Edit]] = {}
    for edit in edits:
        if edit.kind == "credit":
            credits.setdefault((edit.resource, edit.target), []).append(edit)
            continue
        for key in edit.expect:
            latest[edit.resource, edit.target, key] = edit
    for (resource_name, target, key), edit in latest.items():
        resource = resources.get(resource_name)
        found = member(resource, target) if resource is not None else None
        kept = found is not None and key in found and _same(found[key], edit.expect[key])
        if not kept and edit not in lost:
            lost.append(edit)
    for (resource_name, target), group_edits in credits.items():
        resource = resources.get(resource_name)
        group = member(resource, target) if resource is not None else None
        held = Decimal(str((group or {}).get("amountCredited") or 0))
        agents = sum((e.amount for e in group_edits), Decimal(0))
        key = f"{resource_name}/{target.partition(':')[2]}"
        if others_credits is None:
            short = held < group_edits[0].before + agents
        else:
            seeded = (seeded_credits or {}).get(key, Decimal(0))
            short = held != seeded + agents + others_credits.get(key, Decimal(0))
        if group is None or short:
            lost.extend(group_edits)
    return sorted(lost, key=lambda e: e.seq)
