"""What a PUT body must be and what it does to what Commerce holds (updateReturnRequest, updateOrder).

Checks run on the body parsed with exact decimals (so 1.005 is seen as written); the
stored resource is then merged with the same body parsed normally. Sources:
`documents.py` (what the documents say), `assumptions.py` (where they are silent).
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from tests.commerce_sim import assumptions as A
from tests.commerce_sim import documents as D

Json = dict[str, Any]


class Refused(Exception):
    """A body Commerce would refuse: 400, naming the JSON path of what is wrong."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path} {message}")
        self.path = path


@dataclass(frozen=True)
class Context:
    """What a check needs beyond the body: the currency's digits (A4) and the active reasons."""

    digits: int = A.DEFAULT_DIGITS
    reasons: frozenset[str] = D.RETURN_REASONS


def exact(value: Any) -> Any:
    """`value` as an exactly parsed body holds it: floats become the Decimal of their JSON text."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [exact(v) for v in value]
    return value


def currency_of(order: Any) -> str:
    """A4: the order's currency: its priceInfo, else a payment group's, else USD."""
    if not isinstance(order, dict):
        return A.DEFAULT_CURRENCY
    price = order.get("priceInfo")
    if isinstance(price, dict) and isinstance(price.get("currencyCode"), str):
        return str(price["currencyCode"])
    for group in order.get("paymentGroups") or []:
        if isinstance(group, dict) and isinstance(group.get("currencyCode"), str):
            return str(group["currencyCode"])
    return A.DEFAULT_CURRENCY


# --- one value --------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "a number"


def _check_number(value: Any, path: str) -> Decimal:
    if not _is_number(value):
        raise Refused(path, f"must be a JSON number, not {_type_name(value)}")
    return Decimal(value)


def _check_money(value: Any, path: str, ctx: Context, *, limit: bool = False) -> None:
    amount = _check_number(value, path)
    if limit and amount == -1:
        return  # A5: maximumRefundAmount -1 (RRU :198)
    if amount < 0:
        raise Refused(path, "must not be negative")  # A5
    try:
        fits = amount == amount.quantize(Decimal(1).scaleb(-ctx.digits))
    except InvalidOperation:
        fits = False
    if not fits:
        raise Refused(path, f"has more than the currency's {ctx.digits} decimal digits")  # A4


def _check_whole(value: Any, path: str) -> None:
    amount = _check_number(value, path)
    if amount < 0 or amount != amount.to_integral_value():
        raise Refused(path, "must be a whole number >= 0")  # A17


def _check_text(value: Any, path: str, *, nullable: bool) -> None:
    if value is None and nullable:
        return
    if not isinstance(value, str):
        raise Refused(path, f"must be a string, not {_type_name(value)}")


def _check_in(value: Any, path: str, names: Iterable[str], what: str) -> None:
    if not isinstance(value, str) or value not in set(names):
        raise Refused(
            path, f"must be one of the documented {what} ({', '.join(sorted(names))}), not {value!r}"
        )


def _check_map(value: Any, path: str) -> None:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise Refused(path, "must be a flat map of strings")


def _check_links(value: Any, path: str) -> None:
    if not isinstance(value, list) or not all(
        isinstance(link, dict)
        and set(link) <= {"rel", "href"}
        and all(isinstance(v, str) for v in link.values())
        for link in value
    ):
        raise Refused(path, "must be a list of {rel, href} strings")


_VOCABULARIES: dict[str, tuple[frozenset[str], str]] = {
    "return_state": (D.RETURN_STATES, "return states"),
    "item_state": (D.RETURN_ITEM_STATES, "return item states"),
    "refund_state": (D.RETURN_STATES, "states (A2)"),
    "order_state": (D.ORDER_STATES, "order states"),
    "group_state": (D.SHIPPING_GROUP_STATES, "shipping group states"),
}


def check_value(value: Any, field: D.Field, path: str, ctx: Context) -> None:
    """One property against its documented kind (see `documents.Field`)."""
    kind = field.kind
    if kind in ("money", "limit"):
        _check_money(value, path, ctx, limit=kind == "limit")
    elif kind == "count":
        _check_whole(value, path)
    elif kind == "quantity":
        if _check_number(value, path) < 0:
            raise Refused(path, "must not be negative")
    elif kind in ("text", "text?"):
        _check_text(value, path, nullable=kind == "text?")
    elif kind == "when?":
        if not (value is None or isinstance(value, str) or _is_number(value)):
            raise Refused(path, "must be a date (text or epoch milliseconds) or null")  # A12
    elif kind == "map":
        _check_map(value, path)
    elif kind == "links":
        _check_links(value, path)
    elif kind == "reason?":
        if value is not None:
            _check_in(value, path, ctx.reasons, "return reasons")
    elif kind in _VOCABULARIES:
        names, what = _VOCABULARIES[kind]
        _check_in(value, path, names, what)
    else:
        raise AssertionError(f"unknown kind {kind}")


# --- member identity --------------------------------------------------------------------------------


def return_item_key(member: Any) -> tuple[str, str] | None:
    """commerceItemId + shippingGroupId (OMS :411, :414); a held member may nest its commerce
    item, as the webhook shows it (RRU :224-225)."""
    if not isinstance(member, dict):
        return None
    nested = member.get("commerceItem")
    item = member.get("commerceItemId") or (nested.get("id") if isinstance(nested, dict) else None)
    group = member.get("shippingGroupId")
    return None if item is None or group is None else (str(item), str(group))


def group_key(member: Any) -> Any:
    return member.get(D.GROUP_IDENTITY) if isinstance(member, dict) else None


def refund_method_keys(members: list[Any]) -> list[Any]:
    """A1: (refundType, rank among the members of that type)."""
    seen: Counter[Any] = Counter()
    keys: list[Any] = []
    for member in members:
        kind = member.get("refundType") if isinstance(member, dict) else None
        keys.append((kind, seen[kind]))
        seen[kind] += 1
    return keys


def _keys(name: str, members: list[Any]) -> list[Any]:
    if name == "refundMethodList":
        return refund_method_keys(members)
    if name == "returnItemList":
        return [return_item_key(m) for m in members]
    return [group_key(m) for m in members]


def matched(name: str, held: Any, sent: list[Any]) -> list[Json | None]:
    """For each member sent, the held member it matches (OMS :235), or None: it is new."""
    pool = [m for m in held if isinstance(m, dict)] if isinstance(held, list) else []
    by_key: dict[Any, Json] = {}
    for key, member in zip(_keys(name, pool), pool, strict=True):
        if key is not None:
            by_key.setdefault(key, member)
    return [by_key.get(key) if key is not None else None for key in _keys(name, sent)]


# --- lists ------------------------------------------------------------------------------------------


def _members(value: Any, path: str) -> list[Json]:
    if not isinstance(value, list):
        raise Refused(path, "must be a list")
    for index, member in enumerate(value):
        if not isinstance(member, dict):
            raise Refused(f"{path}[{index}]", "must be an object")
    return value


def _check_fields(member: Json, fields: dict[str, D.Field], path: str, ctx: Context, what: str) -> None:
    for key, value in member.items():
        if key not in fields:
            raise Refused(f"{path}.{key}", f"is not a property of {what} in the documents")
        check_value(value, fields[key], f"{path}.{key}", ctx)


def _require_identity(member: Json, keys: Iterable[str], path: str, why: str) -> None:
    for key in keys:
        value = member.get(key)
        if not isinstance(value, str) or not value:
            raise Refused(f"{path}.{key}", f"must be a non-empty string: it identifies the member ({why})")


def check_return_items(value: Any, held: Any, ctx: Context) -> None:
    path = "$.returnItemList"
    members = _members(value, path)
    keys: set[Any] = set()
    for index, (member, old) in enumerate(
        zip(members, matched("returnItemList", held, members), strict=True)
    ):
        where = f"{path}[{index}]"
        _check_fields(member, D.RETURN_ITEM_FIELDS, where, ctx, "a return item (OMS :409-423)")
        _require_identity(member, D.RETURN_ITEM_IDENTITY, where, "OMS :411, :414; A3")
        key = return_item_key(member)
        if key in keys:
            raise Refused(where, f"names {key} a second time (A3)")
        keys.add(key)
        if old is None:
            continue
        if "state" in member and not A.item_state_may_move(old.get("state"), member["state"]):
            raise Refused(
                f"{where}.state", f"may not go back from {old.get('state')} to {member['state']} (A7)"
            )
        if "quantityReceived" in member and member["quantityReceived"] < (old.get("quantityReceived") or 0):
            raise Refused(f"{where}.quantityReceived", "may not decrease (A7)")


def check_refund_methods(value: Any, ctx: Context) -> None:
    path = "$.refundMethodList"
    for index, member in enumerate(_members(value, path)):
        where = f"{path}[{index}]"
        _check_fields(
            member, D.REFUND_METHOD_FIELDS, where, ctx, "a refund method (OMS :384-388; RRU :196-200; A1)"
        )
        _require_identity(member, ("refundType",), where, "A1")


def _check_group(
    member: Json,
    old: Json | None,
    where: str,
    ctx: Context,
    writable: dict[str, D.Field],
    documented: frozenset[str],
) -> None:
    """A9, A10: writable keys checked by kind; other documented keys only as Commerce holds them."""
    for key, value in member.items():
        if key not in documented:
            raise Refused(f"{where}.{key}", "is not a property of this group in the documents")
        held = exact(old.get(key)) if old is not None else None
        if old is not None and key in old and value == held and key in ("state", "id"):
            continue  # A10: a code sent back as held
        if key in writable:
            check_value(value, writable[key], f"{where}.{key}", ctx)
        elif key != D.GROUP_IDENTITY and old is not None and value != held:
            raise Refused(f"{where}.{key}", "is not the OMS's to change (A9): send it as Commerce holds it")
    left = old is not None and old.get("state") in D.SHIPPING_GROUP_STATES - {"INITIAL"}
    if left and member.get("state") == "INITIAL":
        raise Refused(f"{where}.state", "may not go back to INITIAL (A8)")


def check_groups(name: str, value: Any, held: Any, ctx: Context) -> None:
    path = f"$.{name}"
    members = _members(value, path)
    writable, documented = (
        (D.SHIPPING_GROUP_WRITABLE, D.SHIPPING_GROUP_DOCUMENTED)
        if name == "shippingGroups"
        else (D.PAYMENT_GROUP_WRITABLE, D.PAYMENT_GROUP_DOCUMENTED)
    )
    ids: set[str] = set()
    for index, (member, old) in enumerate(zip(members, matched(name, held, members), strict=True)):
        where = f"{path}[{index}]"
        _require_identity(member, (D.GROUP_IDENTITY,), where, "OMS :44, :161, :234-235")
        if member[D.GROUP_IDENTITY] in ids:
            raise Refused(where, f"names group {member[D.GROUP_IDENTITY]} a second time")
        ids.add(member[D.GROUP_IDENTITY])
        _check_group(member, old, where, ctx, writable, documented)


# --- whole bodies -----------------------------------------------------------------------------------


def check_return_body(body: Json, held: Json, ctx: Context) -> None:
    """updateReturnRequest, classic: only the documented body (OMS :375-428), typed, moving forward."""
    for key, value in body.items():
        field = D.RETURN_REQUEST_FIELDS.get(key)
        if field is None:
            raise Refused(f"$.{key}", "is not a property of updateReturnRequest (OMS :375-428)")
        if key == "returnItemList":
            check_return_items(value, held.get("returnItemList"), ctx)
        elif key == "refundMethodList":
            check_refund_methods(value, ctx)
        else:
            check_value(value, field, f"$.{key}", ctx)
    if "state" in body and not A.return_state_may_move(held.get("state"), body["state"]):
        raise Refused("$.state", f"may not go back from {held.get('state')} to {body['state']} (A6)")
    if "requestId" in body and held.get("requestId") not in (None, body["requestId"]):
        raise Refused("$.requestId", "is the return's own and cannot change (A11)")


def check_order_body(body: Json, held: Json, ctx: Context) -> None:
    """updateOrder: state and the groups (OMS :221-236, :456)."""
    for key, value in body.items():
        field = D.ORDER_FIELDS.get(key)
        if field is None:
            raise Refused(
                f"$.{key}", "is not a property updateOrder takes in the documents (OMS :221, :228, :456)"
            )
        if key in ("shippingGroups", "paymentGroups"):
            check_groups(key, value, held.get(key), ctx)
        elif value != held.get(key):
            check_value(value, field, f"$.{key}", ctx)
    if body.get("state") == "SUBMITTED" and held.get("state") not in (None, "SUBMITTED"):
        raise Refused("$.state", f"may not go back from {held.get('state')} to SUBMITTED (A8)")


# --- applying a body (PUT semantics, OMS :232-236) --------------------------------------------------


def replace_list(name: str, held: Any, sent: list[Any]) -> list[Any]:
    """OMS :234-236: the list sent becomes the list; a member matching a held one is merged onto
    it, one matching none is created, held members left out are deleted ([] deletes all)."""
    result: list[Any] = []
    for member, old in zip(sent, matched(name, held, sent), strict=True):
        result.append(copy.deepcopy(member) if old is None else merge(old, member))
    return result


def merge(held: Json, body: Json, dropped: Callable[[str], bool] = lambda _: False) -> Json:
    """OMS :234: properties left out are kept; scalars overwrite; a list or map sent replaces."""
    merged = copy.deepcopy(held)
    for key, value in body.items():
        if dropped(key):
            continue
        if isinstance(value, list):
            merged[key] = replace_list(key, held.get(key), value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def apply_return_body(held: Json, body: Json) -> Json:
    return merge(held, body, lambda key: key == "links")  # A11
