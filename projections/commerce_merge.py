"""A PUT body read against what Commerce holds just before it is sent (SPEC section 8).

The documents give no version, ETag or If-Match and lists replace, so a body
built from our view alone would erase what an agent did since the last
webhook. Here our body (from `commerce_bodies`) is laid onto Commerce's
current document: what Returnflow does not own goes back as Commerce holds it,
a list sent carries every member Commerce holds, and a state someone else set
is not overwritten but reported as a `Conflict`. Pure: the sync does the GET.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.money import quantize
from projections.commerce_bodies import (
    classic_body,
    identified,
    item_members,
    refund_methods,
    refund_split_kept,
)

Json = dict[str, Any]

RETURN_ITEM_FIELDS = (
    "commerceItemId",
    "shippingGroupId",
    "returnReason",
    "state",
    "quantityReceived",
    "refundAmount",
    "actualTaxRefundShare",
    "actualShippingRefundShare",
    "actualShippingSurchargeRefundShare",
    "comments",
    "additionalProperties",
)
"""A `returnItemList` member's documented fields (oms-integration-overview.txt:409-423)."""
SHIPPING_GROUP_FIELDS = ("id", "state", "trackingNumber", "actualShipDate")


@dataclass(frozen=True)
class Conflict:
    """Commerce holds a value someone else set; ours was not sent (drift for a person)."""

    subject: str
    field: str
    ours: Any
    theirs: Any


@dataclass
class Merged:
    """The body to send (None: nothing to send), someone else's changes, problems to log."""

    body: Json | None
    conflicts: list[Conflict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def held_state_is_ours(held: Json, known_states: frozenset[str]) -> bool:
    """Commerce holds a state we saw or sent (or none at all)."""
    return held.get("state") is None or held.get("state") in known_states


def _state(merged: Merged, subject: str, body: Json, held: Json, known_states: frozenset[str]) -> None:
    if "state" in body and not held_state_is_ours(held, known_states) and held["state"] != body["state"]:
        merged.conflicts.append(Conflict(subject, "state", body["state"], held["state"]))
        body.pop("state")


def _member_key(member: Mapping[str, Any]) -> tuple[Any, Any]:
    nested = member.get("commerceItem")
    item = member.get("commerceItemId") or (nested.get("id") if isinstance(nested, dict) else None)
    return item, member.get("shippingGroupId")


def _as_held(member: Mapping[str, Any]) -> Json:
    """A member sent back as Commerce holds it, under the documented names."""
    item, group = _member_key(member)
    kept = {k: member[k] for k in RETURN_ITEM_FIELDS if member.get(k) is not None}
    kept.update(commerceItemId=item, shippingGroupId=group)
    return kept


def _items(merged: Merged, subject: str, view: Json, held_items: list[Json]) -> list[Json] | None:
    """Every member Commerce holds, ours where we hold the item; None if one cannot be identified
    (sending the list without it would delete it at Commerce)."""
    pool = {_member_key(m): m for m in held_items}
    ours: dict[tuple[Any, Any], Json] = {}
    for member in item_members(view):
        if not identified(member):
            candidates = [k for k in pool if k[0] == member["commerceItemId"] and k not in ours]
            if len(candidates) != 1:
                merged.problems.append(f"return item {member['commerceItemId']} has no shippingGroupId")
                continue
            member["shippingGroupId"] = candidates[0][1]
        ours[_member_key(member)] = member
    members = []
    for key, theirs in pool.items():
        if None in key:
            merged.problems.append(f"Commerce holds return item {key[0]} without a shippingGroupId")
            return None
        mine = ours.get(key)
        if mine is not None and int(theirs.get("quantityReceived") or 0) > int(mine["quantityReceived"]):
            merged.conflicts.append(
                Conflict(subject, f"returnItemList.{key[0]}/{key[1]}.quantityReceived", mine, theirs)
            )
            mine = None
        members.append(mine if mine is not None else _as_held(theirs))
    for key in ours.keys() - pool.keys():
        merged.problems.append(f"return item {key[0]}/{key[1]} is not held by Commerce: not sent")
    return members


def return_onto_held(body: Json, view: Json, held: Json, known_states: frozenset[str]) -> Merged:
    """updateReturnRequest (classic): our body on Commerce's current return request."""
    out = dict(body)
    merged = Merged(out)
    _state(merged, view["id"], out, held, known_states)
    held_items = held.get("returnItemList")
    if "returnItemList" in out and isinstance(held_items, list):
        items = _items(merged, view["id"], view, [m for m in held_items if isinstance(m, dict)])
        if items is None:
            out.pop("returnItemList")
        else:
            out["returnItemList"] = items
    held_methods = held.get("refundMethodList")
    if isinstance(held_methods, list) and (held_methods or "refundMethodList" in out):
        methods = refund_methods(view, [m for m in held_methods if isinstance(m, dict)])
        kept = refund_split_kept(view, held_methods)
        if kept is not None:
            merged.problems.append(kept)
        out.pop("refundMethodList", None)
        if methods is not None:
            out["refundMethodList"] = methods
    return merged


def op_onto_held(body: Json, view: Json, held: Json, known_states: frozenset[str]) -> Merged:
    """An `op` call changes the state: none is sent over a state someone else set. With
    `initiateRefund` Commerce refunds its own figures; where ours differ in what that release
    has no operation for (fee, surcharge, item amounts), a person refunds (`markManualRefund`)."""
    if not held_state_is_ours(held, known_states):
        return Merged(None, [Conflict(view["id"], "state", body.get("op"), held["state"])])
    if body.get("op") != "initiateRefund":
        return Merged(body)
    untold = untellable_figures(view, held)
    if not untold:
        return Merged(body)
    return Merged(
        {"op": "markManualRefund"},
        problems=[f"initiateRefund withheld, Commerce would refund its own {', '.join(untold)}"],
    )


def untellable_figures(view: Json, held: Json) -> list[str]:
    """Figures of our refund that Commerce holds otherwise (or, for a fee, not at all) and no
    `op` can set."""
    currency = str(view.get("currency") or "USD")
    ours = classic_body(view)

    def differs(theirs: Any, mine: Any) -> bool:
        return held_amount(theirs, currency) != held_amount(mine, currency)

    differ: list[str] = []
    if "returnFee" in ours and differs(held.get("returnFee"), ours["returnFee"]):
        differ.append("returnFee")
    surcharge = held.get("actualShippingSurchargeRefund")
    mine = ours.get("actualShippingSurchargeRefund")
    if surcharge is not None and mine is not None and differs(surcharge, mine):
        differ.append("actualShippingSurchargeRefund")
    theirs = {_member_key(m): m for m in held.get("returnItemList") or [] if isinstance(m, dict)}
    for member in ours.get("returnItemList", []):
        held_amount_of = (theirs.get(_member_key(member)) or {}).get("refundAmount")
        if held_amount_of is not None and differs(held_amount_of, member.get("refundAmount")):
            differ.append(f"refundAmount of {member['commerceItemId']}")
    return differ


def held_amount(value: Any, currency: str) -> Decimal:
    try:
        return quantize(Decimal(str(value if value is not None else 0)), currency)
    except InvalidOperation:
        return quantize(Decimal(0), currency)


def credit_onto_held(held: Json, unapplied: Mapping[str, Decimal], currency: str) -> Merged:
    """updateOrder with every payment group Commerce holds, by `id`: `amountCredited` is
    Commerce's current figure plus our credits not applied yet (SPEC section 8)."""
    groups = [g for g in held.get("paymentGroups") or [] if isinstance(g, dict) and g.get("id")]
    merged = Merged(None)
    missing = set(unapplied) - {g["id"] for g in groups}
    merged.problems.extend(f"payment group {g} is not held by Commerce: credit not sent" for g in missing)
    if not any(unapplied.get(g["id"]) for g in groups):
        return merged
    merged.body = {
        "paymentGroups": [
            {
                "id": g["id"],
                "amountCredited": held_amount(g.get("amountCredited"), currency) + unapplied.get(g["id"], 0),
            }
            for g in groups
        ]
    }
    return merged


def shipment_onto_held(body: Json, held: Json, known_states: frozenset[str]) -> Merged:
    """updateOrder for a shipment: every shipping group Commerce holds, ours where we hold it."""
    out = dict(body)
    merged = Merged(out)
    _state(merged, str(held.get("id") or ""), out, held, known_states)
    held_groups = [g for g in held.get("shippingGroups") or [] if isinstance(g, dict) and g.get("id")]
    if held_groups:
        ours = {g["id"]: g for g in body.get("shippingGroups", [])}
        out["shippingGroups"] = [
            ours.get(g["id"]) or {k: g[k] for k in SHIPPING_GROUP_FIELDS if g.get(k) is not None}
            for g in held_groups
        ]
    return merged
