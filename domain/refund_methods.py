"""How a refund is spread over Commerce's refund methods, from their documented fields only.

The documents give a refund method `refundType`, `amount`, `maximumRefundAmount`
and `state` (seed return-request-update-webhook.txt:196-200,
oms-integration-overview.txt:384-388) and nothing tying it to a payment group.
So a split is changed only where those fields decide it; anywhere else
Commerce's split stands and the caller reports it for a person. A method is
never set to 0 on a guess.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

UNLIMITED = Decimal(-1)
"""`maximumRefundAmount: -1` in the webhook sample: no cap."""


@dataclass(frozen=True)
class Split:
    """The amount of each method, in the order Commerce holds them; `kept` says why Commerce's
    own split was left as it is (None when ours was decided)."""

    amounts: tuple[Decimal, ...]
    kept: str | None = None


def _decimal(value: Any, default: Decimal) -> Decimal:
    try:
        return default if value is None else Decimal(str(value))
    except InvalidOperation:
        return default


def split_refund(
    total: Decimal, methods: Sequence[Mapping[str, Any]], seen: Collection[Decimal] | None = None
) -> Split:
    """`total` over `methods`: already there, or one method able to take it all. `seen`: the
    amounts Commerce reported for the method (None: not known); any other amount it holds was
    set by someone else since, and stands."""
    current = tuple(_decimal(m.get("amount"), Decimal(0)) for m in methods)
    if sum(current, Decimal(0)) == total:
        return Split(current)
    if len(methods) != 1:
        return Split(
            current,
            f"{len(methods)} refund methods hold {sum(current, Decimal(0))} of a {total} refund and "
            "the documents do not say which payment each refunds: Commerce's split kept",
        )
    if seen is not None and current[0] not in seen:
        return Split(current, f"the refund method's amount {current[0]} was set at Commerce: kept")
    cap = _decimal(methods[0].get("maximumRefundAmount"), UNLIMITED)
    if UNLIMITED < cap < total:
        return Split(current, f"the refund {total} exceeds the method's maximumRefundAmount {cap}")
    return Split((total,))
