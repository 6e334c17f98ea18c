"""The return policy (SPEC section 3) and the per-item eligibility it implies.

The policy is parsed from TOML text (the service reads the file named by
RETURNFLOW_POLICY); unknown keys and wrong types are errors, so a typo such as
`return_windows_days` stops the service at start instead of silently applying
a default.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Literal

from domain.refunds import RefundShipping, ReturnFee, refund_shipping_choice
from domain.states import ValidationContext

Kind = Literal["return", "exchange"]

DEFAULT_MANUAL_REFUND_METHODS = frozenset({"invoice", "cash"})
"""Commerce payment methods with nothing to credit through a gateway.

An invoice is settled outside Commerce and cash was taken at a counter, so a
person issues those refunds; cards, gift cards and store credit are credited
back through Commerce's payment integrations.
"""


class PolicyError(ValueError):
    """A policy the service must not start with; the message names the offending key."""


class NonReturnableReason(StrEnum):
    """The fixed vocabulary sent to Commerce as `nonReturnableReason` (with human text)."""

    RETURN_WINDOW_EXPIRED = "RETURN_WINDOW_EXPIRED"
    FINAL_SALE = "FINAL_SALE"
    ALREADY_RETURNED = "ALREADY_RETURNED"
    UNFULFILLED = "UNFULFILLED"
    NOT_FOUND = "NOT_FOUND"
    OTHER = "OTHER"


def parse_return_fee(value: object) -> ReturnFee | None:
    """`"5.00"` (or 5) is an amount in the order's currency, `"10%"` a percent of the items.

    Floats are refused: TOML `5.1` is binary and money must be exact. Zero means no fee.
    """
    if isinstance(value, ReturnFee) or value is None:
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PolicyError(f'return_fee must be a string such as "5.00" or "10%", got {type(value).__name__}')
    text = str(value).strip()
    is_percent = text.endswith("%")
    number = text.removesuffix("%").strip()
    try:
        amount = Decimal(number)
    except InvalidOperation:
        raise PolicyError(f'return_fee must look like "5.00" or "10%", got {value!r}') from None
    if not amount.is_finite() or amount < 0:
        raise PolicyError(f"return_fee must be a non-negative amount or percent, got {value!r}")
    if is_percent and amount > 100:
        raise PolicyError(f"return_fee percent must be at most 100%, got {value!r}")
    if amount == 0:
        return None
    return ReturnFee(percent=amount) if is_percent else ReturnFee(amount=amount)


def _days(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyError(f"{key} must be a whole number of days, got {value!r}")
    if value < 0:
        raise PolicyError(f"{key} must not be negative, got {value}")
    return value


def _names(key: str, value: object) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
        raise PolicyError(f'{key} must be a list of strings, e.g. ["a", "b"], got {value!r}')
    if not all(isinstance(v, str) and v for v in value):
        raise PolicyError(f"{key} must contain only non-empty strings, got {sorted(map(repr, value))}")
    return frozenset(value)


_LABEL_FIELDS = frozenset({"rma", "order_id"})


def _contexts(key: str, value: object) -> frozenset[str]:
    names = _names(key, value) if value else frozenset()
    known = {c.value for c in ValidationContext}
    unknown = sorted(names - known)
    if unknown:
        raise PolicyError(f"{key}: unknown context {unknown[0]!r}; known: {', '.join(sorted(known))}")
    return names


def _text(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise PolicyError(f"{key} must be a string, got {value!r}")
    return value


def _label_template(value: object) -> str | None:
    if value is None or value == "":
        return None
    template = _text("return_label_url", value)
    try:
        used = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise PolicyError(f"return_label_url is not a valid template: {exc}") from None
    unknown = sorted(used - _LABEL_FIELDS)
    if unknown:
        raise PolicyError(
            f"return_label_url: unknown placeholder {{{unknown[0]}}}; use {{rma}} and {{order_id}}"
        )
    return template


def _refund_shipping(value: object) -> RefundShipping:
    try:
        return refund_shipping_choice(value)
    except ValueError as exc:
        raise PolicyError(str(exc)) from None


@dataclass(frozen=True)
class ReturnPolicy:
    """A merchant's return rules; the defaults are a common 30-day policy.

    - return_window_days / exchange_window_days (30): whole UTC calendar days
      counted from the ship date, else the submission date; the last day counts.
    - nonreturnable_skus / nonreturnable_products (empty): final-sale items.
    - require_shipped (True): only shipped units can be returned; False lets
      ordered-but-unshipped units be returned (e.g. digital or pick-up items).
    - refund_shipping ("when_group_fully_returned"): refund a shipping group's
      charge once nothing of it is kept; "never" and "always" (pro rata) too.
    - return_fee (None): fixed amount or percent of the item refund.
    - manual_refund_payment_methods ({"invoice", "cash"}): see
      DEFAULT_MANUAL_REFUND_METHODS.
    - issue_rma_on (empty): validation contexts whose returnable answer carries
      a return authorization number we issue, `rma_prefix` ("RMA-") followed by
      the return's id, else the order id and the number of its next return;
      Commerce's own `rma` on the request always wins.
    - return_label_url (None): label URL issued with the RMA, a template with
      `{rma}` and `{order_id}`. Tracking numbers come from the carrier, not us.
    """

    return_window_days: int = 30
    exchange_window_days: int = 30
    nonreturnable_skus: frozenset[str] = frozenset()
    nonreturnable_products: frozenset[str] = frozenset()
    require_shipped: bool = True
    refund_shipping: RefundShipping = "when_group_fully_returned"
    return_fee: ReturnFee | None = None
    manual_refund_payment_methods: frozenset[str] = DEFAULT_MANUAL_REFUND_METHODS
    issue_rma_on: frozenset[str] = frozenset()
    rma_prefix: str = "RMA-"
    return_label_url: str | None = None

    def __post_init__(self) -> None:
        _days("return_window_days", self.return_window_days)
        _days("exchange_window_days", self.exchange_window_days)
        for key in ("nonreturnable_skus", "nonreturnable_products", "manual_refund_payment_methods"):
            value = getattr(self, key)
            if not isinstance(value, frozenset):
                raise PolicyError(f"{key} must be a frozenset of strings")
            _names(key, value)
        if not isinstance(self.require_shipped, bool):
            raise PolicyError(f"require_shipped must be true or false, got {self.require_shipped!r}")
        _refund_shipping(self.refund_shipping)
        if self.return_fee is not None and not isinstance(self.return_fee, ReturnFee):
            raise PolicyError("return_fee must be a ReturnFee or None")
        if not isinstance(self.issue_rma_on, frozenset):
            raise PolicyError("issue_rma_on must be a frozenset of context names")
        _contexts("issue_rma_on", self.issue_rma_on)
        _text("rma_prefix", self.rma_prefix)
        _label_template(self.return_label_url)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ReturnPolicy:
        """Build from parsed TOML (or any mapping); missing keys take the defaults."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PolicyError(
                f"unknown policy key {unknown[0]!r}"
                + (f" (and {', '.join(map(repr, unknown[1:]))})" if unknown[1:] else "")
                + f"; known keys: {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key in ("return_window_days", "exchange_window_days"):
                values[key] = _days(key, value)
            elif key in ("nonreturnable_skus", "nonreturnable_products", "manual_refund_payment_methods"):
                values[key] = _names(key, value)
            elif key == "require_shipped":
                if not isinstance(value, bool):
                    raise PolicyError(f"require_shipped must be true or false, got {value!r}")
                values[key] = value
            elif key == "refund_shipping":
                values[key] = _refund_shipping(value)
            elif key == "return_fee":
                values[key] = parse_return_fee(value)
            elif key == "issue_rma_on":
                values[key] = _contexts(key, value)
            elif key == "rma_prefix":
                values[key] = _text(key, value)
            elif key == "return_label_url":
                values[key] = _label_template(value)
        return cls(**values)

    @classmethod
    def from_toml_text(cls, text: str) -> ReturnPolicy:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"policy is not valid TOML: {exc}") from None
        return cls.from_mapping(data)

    def to_mapping(self) -> dict[str, Any]:
        """The effective policy as TOML-ready values; `from_mapping` reads it back unchanged."""
        mapping: dict[str, Any] = {
            "return_window_days": self.return_window_days,
            "exchange_window_days": self.exchange_window_days,
            "nonreturnable_skus": sorted(self.nonreturnable_skus),
            "nonreturnable_products": sorted(self.nonreturnable_products),
            "require_shipped": self.require_shipped,
            "refund_shipping": self.refund_shipping,
            "manual_refund_payment_methods": sorted(self.manual_refund_payment_methods),
            "issue_rma_on": sorted(self.issue_rma_on),
            "rma_prefix": self.rma_prefix,
        }
        if self.return_fee is not None:
            mapping["return_fee"] = str(self.return_fee)
        if self.return_label_url is not None:
            mapping["return_label_url"] = self.return_label_url
        return mapping

    def return_authorization(
        self, context: str, order_id: str, return_id: str | None, next_return: int
    ) -> tuple[str, str | None] | None:
        """The RMA (and label URL) to answer a returnable `context` with; None: we issue none.

        Derived, not drawn: the same question gets the same number, so Commerce's
        retries and repeated questions never see two authorizations for one return.
        """
        if context not in self.issue_rma_on:
            return None
        rma = f"{self.rma_prefix}{return_id}" if return_id else f"{self.rma_prefix}{order_id}-{next_return}"
        return rma, self.label_for(rma, order_id)

    def label_for(self, rma: str, order_id: str) -> str | None:
        if self.return_label_url is None:
            return None
        return self.return_label_url.format(rma=rma, order_id=order_id)

    def window_days(self, kind: Kind) -> int:
        if kind == "return":
            return self.return_window_days
        if kind == "exchange":
            return self.exchange_window_days
        raise ValueError(f"kind must be 'return' or 'exchange', got {kind!r}")


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")


@dataclass(frozen=True)
class ItemFacts:
    """What the order says about one commerce item, as eligibility needs it."""

    sku: str
    product_id: str
    quantity_ordered: int
    quantity_shipped: int
    quantity_returned: int = 0
    quantity_in_open_returns: int = 0
    ship_date: datetime | None = None
    submitted_date: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("quantity_ordered", "quantity_shipped", "quantity_returned", "quantity_in_open_returns"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        _aware("ship_date", self.ship_date)
        _aware("submitted_date", self.submitted_date)


@dataclass(frozen=True)
class ItemVerdict:
    """Commerce's per-item answer: `nonreturnable` is `not returnable`, `reason` its code."""

    returnable: bool
    reason: NonReturnableReason | None
    text: str
    quantity_available: int

    @property
    def nonreturnable(self) -> bool:
        return not self.returnable


def _refuse(reason: NonReturnableReason, text: str) -> ItemVerdict:
    return ItemVerdict(False, reason, text, 0)


def not_found(commerce_item_id: str) -> ItemVerdict:
    """The answer for an item the stored order does not have."""
    return _refuse(NonReturnableReason.NOT_FOUND, f"Item {commerce_item_id} is not in this order")


def last_day(policy: ReturnPolicy, item: ItemFacts, kind: Kind) -> date | None:
    """The last UTC calendar day of the window, or None when the order has no date to count from."""
    start = item.ship_date or item.submitted_date
    if start is None:
        return None
    return start.astimezone(UTC).date() + timedelta(days=policy.window_days(kind))


def verdicts_hold_until(now: datetime) -> datetime:
    """The next instant at which `evaluate_item` may judge differently, facts unchanged: the
    next UTC midnight, since windows end on a calendar day (answers may be kept until then)."""
    _aware("now", now)
    tomorrow = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC)


def evaluate_item(policy: ReturnPolicy, item: ItemFacts, now: datetime, kind: Kind = "return") -> ItemVerdict:
    """Whether, and how many units of, an item can be returned (or exchanged) now.

    Checks in this order, first refusal wins: final sale, unfulfilled (nothing
    shipped, when shipping is required), window expired, nothing left to return.
    An order with neither ship nor submission date is refused as OTHER: without
    a start the window cannot be honoured, and an agent can still override.
    """
    _aware("now", now)
    label = "Return" if kind == "return" else "Exchange"
    days = policy.window_days(kind)
    if item.sku in policy.nonreturnable_skus:
        return _refuse(NonReturnableReason.FINAL_SALE, f"SKU {item.sku} is final sale")
    if item.product_id in policy.nonreturnable_products:
        return _refuse(NonReturnableReason.FINAL_SALE, f"Product {item.product_id} is final sale")
    if policy.require_shipped and item.quantity_shipped == 0:
        return _refuse(NonReturnableReason.UNFULFILLED, "Nothing of this item has shipped yet")
    end = last_day(policy, item, kind)
    if end is None:
        return _refuse(
            NonReturnableReason.OTHER,
            f"No ship or order date to count the {days}-day {kind} window from",
        )
    if now.astimezone(UTC).date() > end:
        return _refuse(
            NonReturnableReason.RETURN_WINDOW_EXPIRED,
            f"{label} window of {days} days ended on {end.isoformat()}",
        )
    base = item.quantity_shipped if policy.require_shipped else item.quantity_ordered
    available = base - item.quantity_returned - item.quantity_in_open_returns
    if available <= 0:
        unit = "unit" if base == 1 else "units"
        return _refuse(
            NonReturnableReason.ALREADY_RETURNED,
            f"All {base} {unit} already returned or in an open return",
        )
    verb = "returned" if kind == "return" else "exchanged"
    return ItemVerdict(True, None, f"{available} of {base} can be {verb} until {end.isoformat()}", available)
