"""Exact refund maths: what a return gives back, per item, per tax and shipping, per payment.

Everything is `Decimal` in the currency's minor units (`domain.money`, ISO 4217),
computed internally as integer minor units so no step loses a cent.

Rounding is ROUND_HALF_UP, the rule shoppers, agents and most tax authorities
expect (2.345 -> 2.35). Half-even exists to cancel bias over many independent
roundings; here no rounding error ever accumulates, because every split is
either *cumulative* (a partial return refunds share(done + now) - share(done),
so all partial returns of a line add up to exactly what was paid) or a
*largest-remainder* allocation (shares add up exactly to the total). The
direction of a single rounding therefore only decides which return or which
line gets the odd cent, never how many cents there are.

Commerce orders are mapped onto the primitive model below (`OrderMoney`) by the
service layer; this module never sees Commerce JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from types import MappingProxyType
from typing import Any, Literal, Protocol, cast, get_args

from domain.errors import DomainError
from domain.money import MINOR_UNITS, digits, quantize

__all__ = [
    "MINOR_UNITS",
    "REFUND_SHIPPING_CHOICES",
    "ItemRefund",
    "OrderLine",
    "OrderMoney",
    "PaymentRefund",
    "PaymentShare",
    "RefundCalculation",
    "RefundError",
    "RefundPolicy",
    "RefundShipping",
    "RefundTerms",
    "ReturnFee",
    "ReturnSelection",
    "ShippingCharge",
    "allocate",
    "allocate_order_discount",
    "calculate_refund",
    "credit_payments",
    "digits",
    "quantize",
    "refund_shipping_choice",
]

RefundShipping = Literal["never", "when_group_fully_returned", "always"]
REFUND_SHIPPING_CHOICES: tuple[str, ...] = get_args(RefundShipping)


def refund_shipping_choice(value: object) -> RefundShipping:
    """Narrow a configured string to `RefundShipping`, or say what is allowed."""
    if value not in REFUND_SHIPPING_CHOICES:
        raise ValueError(
            f"refund_shipping must be one of {', '.join(REFUND_SHIPPING_CHOICES)}, got {value!r}"
        )
    return cast(RefundShipping, value)


ZERO = Decimal(0)


class RefundError(DomainError, ValueError):
    """A refund that cannot be computed from what was asked (bad order model or selection)."""

    code = "REFUND_INVALID"


def _units(amount: Decimal, currency: str, what: str) -> int:
    """Minor units of an amount that must already be exact in the currency's digits."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise RefundError(f"{what} must be a finite Decimal, got {amount!r}")
    if quantize(amount, currency) != amount:
        raise RefundError(f"{what} {amount} has more digits than {currency} allows ({digits(currency)})")
    return int(amount.scaleb(digits(currency)))


def _money(units: int, currency: str) -> Decimal:
    return Decimal(units).scaleb(-digits(currency))


def _half_up(value: Fraction) -> int:
    """ROUND_HALF_UP (ties away from zero) on an exact fraction."""
    magnitude = (abs(value.numerator) * 2 + value.denominator) // (2 * value.denominator)
    return magnitude if value >= 0 else -magnitude


def _share(total_units: int, part: int, whole: int) -> int:
    """total * part / whole, rounded half-up; `whole` > 0."""
    return _half_up(Fraction(total_units * part, whole))


def _allocate_units(total: int, weights: Sequence[Fraction]) -> list[int]:
    """Largest remainder: floors first, then one unit each by biggest remainder, ties by index."""
    if not weights:
        if total:
            raise RefundError(f"cannot allocate {total} minor units over no weights")
        return []
    if any(w < 0 for w in weights):
        raise RefundError("allocation weights must not be negative")
    weight_sum = sum(weights, Fraction(0))
    if weight_sum == 0:
        weights = [Fraction(1)] * len(weights)
        weight_sum = Fraction(len(weights))
    exact = [total * w / weight_sum for w in weights]
    floors = [e.numerator // e.denominator for e in exact]
    leftover = total - sum(floors)
    order = sorted(range(len(exact)), key=lambda i: (floors[i] - exact[i], i))
    for i in order[:leftover]:
        floors[i] += 1
    return floors


def allocate(total: Decimal, weights: Sequence[Decimal | int], currency: str) -> tuple[Decimal, ...]:
    """Split `total` pro rata to `weights` so the shares sum to `total` exactly.

    Largest-remainder method in minor units, ties broken by index (earlier wins),
    so the result is deterministic. All-zero weights split equally. A share never
    exceeds its weight when `total` does not exceed the sum of the weights, which
    is what makes it safe for capped splits (discounts, payment groups).
    """
    total_units = _units(total, currency, "total")
    if total_units < 0:
        raise RefundError(f"cannot allocate a negative total {total}")
    fractions = [Fraction(w) for w in weights]
    return tuple(_money(u, currency) for u in _allocate_units(total_units, fractions))


@dataclass(frozen=True)
class ReturnFee:
    """A restocking fee: a fixed amount, or a percent of the item refund (not tax or shipping)."""

    amount: Decimal | None = None
    percent: Decimal | None = None

    def __post_init__(self) -> None:
        if (self.amount is None) == (self.percent is None):
            raise ValueError("a return fee is either an amount or a percent, exactly one")
        value = self.amount if self.amount is not None else self.percent
        if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
            raise ValueError(f"return fee must be a non-negative Decimal, got {value!r}")
        if self.percent is not None and self.percent > 100:
            raise ValueError(f"return fee percent must be at most 100, got {self.percent}")

    def charge(self, item_units: int, currency: str) -> int:
        """The fee in minor units for a return whose item refund is `item_units`."""
        if self.percent is not None:
            return _half_up(Fraction(item_units) * Fraction(self.percent) / 100)
        assert self.amount is not None
        return int(quantize(self.amount, currency).scaleb(digits(currency)))

    def __str__(self) -> str:
        return f"{self.percent}%" if self.percent is not None else str(self.amount)


class RefundTerms(Protocol):
    """The policy knobs refunds depend on; `domain.policy.ReturnPolicy` satisfies it."""

    @property
    def refund_shipping(self) -> RefundShipping: ...

    @property
    def return_fee(self) -> ReturnFee | None: ...

    @property
    def manual_refund_payment_methods(self) -> frozenset[str]: ...


@dataclass(frozen=True)
class RefundPolicy:
    """Stand-alone refund terms, with the same defaults as `ReturnPolicy`."""

    refund_shipping: RefundShipping = "when_group_fully_returned"
    return_fee: ReturnFee | None = None
    manual_refund_payment_methods: frozenset[str] = frozenset({"invoice", "cash"})

    def __post_init__(self) -> None:
        refund_shipping_choice(self.refund_shipping)


@dataclass(frozen=True)
class OrderLine:
    """One commerce item as paid.

    `amount` is Commerce `priceInfo.amount` (after item discounts);
    `order_discount_share` is this line's (positive) part of the order-level
    discounts and adjustments; `tax` is the line's tax; `surcharge` the line's
    shipping surcharge (`priceInfo.shippingSurcharge`). What the shopper paid
    for the line is amount - order_discount_share + tax + surcharge (on a
    tax-inclusive site the tax is inside the amount: `OrderMoney.line_paid`).
    """

    commerce_item_id: str
    shipping_group_id: str
    quantity: int
    amount: Decimal
    order_discount_share: Decimal = ZERO
    tax: Decimal = ZERO
    surcharge: Decimal = ZERO

    @property
    def net(self) -> Decimal:
        return self.amount - self.order_discount_share

    @property
    def paid(self) -> Decimal:
        return self.net + self.tax + self.surcharge


@dataclass(frozen=True)
class ShippingCharge:
    """A shipping group's shipping charge and the tax on it."""

    shipping_group_id: str
    amount: Decimal
    tax: Decimal = ZERO


@dataclass(frozen=True)
class PaymentShare:
    """What one payment group paid; the most that can ever be credited back to it."""

    payment_group_id: str
    payment_method: str
    amount: Decimal


@dataclass(frozen=True)
class OrderMoney:
    """The money side of an order, checked once so the maths can trust it."""

    currency: str
    lines: tuple[OrderLine, ...]
    shipping: tuple[ShippingCharge, ...] = ()
    payments: tuple[PaymentShare, ...] = ()
    tax_included: bool = False
    """VAT sites (`taxPriceInfo.isTaxIncluded`): item amounts already hold their tax."""

    def line_paid(self, line: OrderLine) -> Decimal:
        return line.paid - line.tax if self.tax_included else line.paid

    def __post_init__(self) -> None:
        cur = self.currency
        if not (len(cur) == 3 and cur.isascii() and cur.isalpha() and cur.isupper()):
            raise RefundError(f"currency must be an ISO 4217 code like USD, got {cur!r}")
        _unique([line.commerce_item_id for line in self.lines], "commerce item")
        _unique([s.shipping_group_id for s in self.shipping], "shipping group")
        _unique([p.payment_group_id for p in self.payments], "payment group")
        for line in self.lines:
            where = f"line {line.commerce_item_id}"
            if isinstance(line.quantity, bool) or not isinstance(line.quantity, int):
                raise RefundError(f"{where}: quantity must be an int")
            if line.quantity < 1:
                raise RefundError(f"{where}: quantity must be at least 1, got {line.quantity}")
            amount = _units(line.amount, cur, f"{where} amount")
            discount = _units(line.order_discount_share, cur, f"{where} order discount share")
            tax = _units(line.tax, cur, f"{where} tax")
            surcharge = _units(line.surcharge, cur, f"{where} surcharge")
            if amount < 0 or tax < 0 or discount < 0 or surcharge < 0:
                raise RefundError(f"{where}: amount, order discount share, tax and surcharge must be >= 0")
            if discount > amount:
                raise RefundError(
                    f"{where}: order discount share {line.order_discount_share} exceeds amount {line.amount}"
                )
        for charge in self.shipping:
            where = f"shipping group {charge.shipping_group_id}"
            if (
                _units(charge.amount, cur, f"{where} amount") < 0
                or _units(charge.tax, cur, f"{where} tax") < 0
            ):
                raise RefundError(f"{where}: amount and tax must be >= 0")
        for payment in self.payments:
            if _units(payment.amount, cur, f"payment group {payment.payment_group_id}") < 0:
                raise RefundError(f"payment group {payment.payment_group_id}: amount must be >= 0")

    @property
    def total(self) -> Decimal:
        """What the order cost: lines paid plus shipping and shipping tax."""
        lines = sum((self.line_paid(line) for line in self.lines), ZERO)
        shipping = sum((s.amount + s.tax for s in self.shipping), ZERO)
        return quantize(lines + shipping, self.currency)


def _unique(ids: list[str], what: str) -> None:
    seen: set[str] = set()
    for ident in ids:
        if ident in seen:
            raise RefundError(f"{what} {ident!r} appears twice")
        seen.add(ident)


def allocate_order_discount(
    lines: Sequence[OrderLine], discount: Decimal, currency: str
) -> tuple[OrderLine, ...]:
    """Spread an order-level discount (Commerce order `priceInfo.discountAmount`) over lines.

    For orders whose lines do not carry `orderDiscountShare`: pro rata to each
    line's amount, largest remainder, so the shares sum exactly to the discount
    and no share exceeds its line's amount.
    """
    discount_units = _units(discount, currency, "order discount")
    amounts = [_units(line.amount, currency, f"line {line.commerce_item_id} amount") for line in lines]
    if discount_units < 0:
        raise RefundError(f"order discount must not be negative, got {discount}")
    if discount_units > sum(amounts):
        raise RefundError(f"order discount {discount} exceeds the lines' amounts")
    shares = _allocate_units(discount_units, [Fraction(a) for a in amounts])
    return tuple(
        OrderLine(
            line.commerce_item_id,
            line.shipping_group_id,
            line.quantity,
            line.amount,
            _money(share, currency),
            line.tax,
            line.surcharge,
        )
        for line, share in zip(lines, shares, strict=True)
    )


def _frozen_map(values: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(values))


@dataclass(frozen=True)
class ReturnSelection:
    """What this return takes back, and what earlier returns of the order already did.

    `quantities`: commerce item id -> units returned now (0 means not returned).
    `already_returned`: units of each line refunded by earlier returns; it drives
    the cumulative split and "group fully returned".
    `already_credited`: per payment group, what earlier refunds credited to it.
    Earlier refunds are assumed computed by this module under the same terms.
    """

    quantities: Mapping[str, int]
    already_returned: Mapping[str, int] = field(default_factory=dict)
    already_credited: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("quantities", "already_returned", "already_credited"):
            object.__setattr__(self, name, _frozen_map(getattr(self, name)))
        for name in ("quantities", "already_returned"):
            for item_id, qty in getattr(self, name).items():
                if isinstance(qty, bool) or not isinstance(qty, int) or qty < 0:
                    raise RefundError(f"{name}[{item_id!r}] must be an int >= 0, got {qty!r}")


@dataclass(frozen=True)
class ItemRefund:
    """One returned line's refund. `shipping` includes `shipping_tax`; `surcharge` is the line's
    share of its shipping surcharge; with `tax_included` the tax is inside `amount`."""

    commerce_item_id: str
    shipping_group_id: str
    quantity: int
    amount: Decimal
    tax: Decimal
    shipping: Decimal
    shipping_tax: Decimal
    surcharge: Decimal = ZERO
    tax_included: bool = False

    @property
    def total(self) -> Decimal:
        tax = ZERO if self.tax_included else self.tax
        return self.amount + tax + self.shipping + self.surcharge


@dataclass(frozen=True)
class PaymentRefund:
    """What goes back to one payment group; `manual` when its method cannot be credited by API."""

    payment_group_id: str
    payment_method: str
    amount: Decimal
    manual: bool = False


_DECIMAL_TOTALS = (
    "item_total",
    "tax_total",
    "shipping_total",
    "shipping_tax_total",
    "fee",
    "refund_total",
    "unallocated",
)


@dataclass(frozen=True)
class RefundCalculation:
    """A return's refund. Construction checks that every split sums exactly to its total.

    refund_total = item_total + tax_total + shipping_total + surcharge_total - fee
    (without tax_total when `tax_included`: the tax is inside the item amounts), and
    refund_total = sum(payments) + unallocated, where `unallocated` is what no
    payment group could take (then `requires_manual`).
    """

    currency: str
    items: tuple[ItemRefund, ...]
    item_total: Decimal
    tax_total: Decimal
    shipping_total: Decimal
    shipping_tax_total: Decimal
    fee: Decimal
    refund_total: Decimal
    payments: tuple[PaymentRefund, ...]
    unallocated: Decimal
    manual_reasons: tuple[str, ...] = ()
    surcharge_total: Decimal = ZERO
    tax_included: bool = False

    def __post_init__(self) -> None:
        cur = self.currency
        amounts: list[tuple[str, Decimal]] = [(n, getattr(self, n)) for n in _DECIMAL_TOTALS]
        amounts.append(("surcharge_total", self.surcharge_total))
        for item in self.items:
            if item.tax_included != self.tax_included:
                raise RefundError(f"{item.commerce_item_id}: tax_included differs from the refund's")
            amounts += [
                (f"{item.commerce_item_id}.{n}", getattr(item, n))
                for n in ("amount", "tax", "shipping", "shipping_tax", "surcharge")
            ]
        amounts += [(f"payment {p.payment_group_id}", p.amount) for p in self.payments]
        for what, value in amounts:
            if _units(value, cur, what) < 0:
                raise RefundError(f"{what} must not be negative, got {value}")

        def check(what: str, total: Decimal, parts: Sequence[Decimal]) -> None:
            if sum(parts, ZERO) != total:
                raise RefundError(f"{what} {total} is not the sum of its parts {sum(parts, ZERO)}")

        check("item_total", self.item_total, [i.amount for i in self.items])
        check("tax_total", self.tax_total, [i.tax for i in self.items])
        check("shipping_total", self.shipping_total, [i.shipping for i in self.items])
        check("shipping_tax_total", self.shipping_tax_total, [i.shipping_tax for i in self.items])
        check("surcharge_total", self.surcharge_total, [i.surcharge for i in self.items])
        for item in self.items:
            if item.shipping_tax > item.shipping:
                raise RefundError(f"{item.commerce_item_id}: shipping tax exceeds shipping")
        tax = ZERO if self.tax_included else self.tax_total
        gross = self.item_total + tax + self.shipping_total + self.surcharge_total
        check("refund_total", self.refund_total, [gross, -self.fee])
        check(
            "refund_total",
            self.refund_total,
            [*(p.amount for p in self.payments), self.unallocated],
        )

    @property
    def requires_manual(self) -> bool:
        return bool(self.manual_reasons)

    def to_primitive(self) -> dict[str, Any]:
        """JSON-friendly and stable: Decimals as fixed-point strings in the currency's digits."""

        def text(value: Decimal) -> str:
            return format(value, "f")

        return {
            "currency": self.currency,
            "items": [
                {
                    "commerce_item_id": i.commerce_item_id,
                    "shipping_group_id": i.shipping_group_id,
                    "quantity": i.quantity,
                    "amount": text(i.amount),
                    "tax": text(i.tax),
                    "shipping": text(i.shipping),
                    "shipping_tax": text(i.shipping_tax),
                    "surcharge": text(i.surcharge),
                    "total": text(i.total),
                }
                for i in self.items
            ],
            **{name: text(getattr(self, name)) for name in _DECIMAL_TOTALS},
            "surcharge_total": text(self.surcharge_total),
            "tax_included": self.tax_included,
            "payments": [
                {
                    "payment_group_id": p.payment_group_id,
                    "payment_method": p.payment_method,
                    "amount": text(p.amount),
                    "manual": p.manual,
                }
                for p in self.payments
            ],
            "requires_manual": self.requires_manual,
            "manual_reasons": list(self.manual_reasons),
        }

    @classmethod
    def from_primitive(cls, data: Mapping[str, Any]) -> RefundCalculation:
        """Inverse of `to_primitive`; derived fields (`total`, `requires_manual`) are recomputed."""
        currency = str(data["currency"])
        tax_included = bool(data.get("tax_included", False))

        def dec(value: Any) -> Decimal:
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise RefundError(f"amounts are strings like '1.00', got {value!r}")
            try:
                exact = Decimal(value)
            except InvalidOperation:
                raise RefundError(f"not an amount: {value!r}") from None
            return _money(_units(exact, currency, f"amount {value!r}"), currency)

        items = tuple(
            ItemRefund(
                str(i["commerce_item_id"]),
                str(i["shipping_group_id"]),
                int(i["quantity"]),
                dec(i["amount"]),
                dec(i["tax"]),
                dec(i["shipping"]),
                dec(i["shipping_tax"]),
                dec(i.get("surcharge", "0")),
                tax_included,
            )
            for i in data["items"]
        )
        payments = tuple(
            PaymentRefund(
                str(p["payment_group_id"]),
                str(p["payment_method"]),
                dec(p["amount"]),
                bool(p["manual"]),
            )
            for p in data["payments"]
        )
        totals = {name: dec(data[name]) for name in _DECIMAL_TOTALS}
        return cls(
            currency=currency,
            items=items,
            payments=payments,
            manual_reasons=tuple(str(r) for r in data.get("manual_reasons", ())),
            surcharge_total=dec(data.get("surcharge_total", "0")),
            tax_included=tax_included,
            **totals,
        )


@dataclass(frozen=True)
class _Split:
    """Per returned line, minor units."""

    line: OrderLine
    quantity: int
    amount: int
    tax: int
    shipping: int = 0
    shipping_tax: int = 0
    surcharge: int = 0


def _returned_value(lines: Sequence[OrderLine], returned: Mapping[str, int], cur: str) -> int:
    """Net item value (minor units) refunded for `returned` units, by the cumulative split."""
    return sum(
        _share(_units(line.net, cur, "net"), returned.get(line.commerce_item_id, 0), line.quantity)
        for line in lines
    )


def _group_shipping(
    terms: RefundTerms,
    charge: ShippingCharge,
    lines: Sequence[OrderLine],
    before: Mapping[str, int],
    after: Mapping[str, int],
    cur: str,
) -> tuple[int, int]:
    """This return's part of one group's (shipping, shipping tax), in minor units.

    `when_group_fully_returned`: all of it, by the return that takes back the
    group's last unit. `always`: pro rata to the net item value returned,
    cumulatively (what Commerce itself suggests: its sample return of 60 of 90
    gets 2/3 of the shipping), so the group's shipping is refunded once in total.
    """
    ship = _units(charge.amount, cur, "shipping")
    tax = _units(charge.tax, cur, "shipping tax")
    if terms.refund_shipping == "never":
        return 0, 0
    if terms.refund_shipping == "when_group_fully_returned":
        done = all(after.get(ln.commerce_item_id, 0) >= ln.quantity for ln in lines)
        was_done = all(before.get(ln.commerce_item_id, 0) >= ln.quantity for ln in lines)
        return (ship, tax) if done and not was_done else (0, 0)
    whole = _returned_value(lines, {ln.commerce_item_id: ln.quantity for ln in lines}, cur)
    if whole > 0:
        then, now = _returned_value(lines, before, cur), _returned_value(lines, after, cur)
    else:
        whole = sum(ln.quantity for ln in lines)
        then = sum(before.get(ln.commerce_item_id, 0) for ln in lines)
        now = sum(after.get(ln.commerce_item_id, 0) for ln in lines)
    return (
        _share(ship, now, whole) - _share(ship, then, whole),
        _share(tax, now, whole) - _share(tax, then, whole),
    )


def calculate_refund(money: OrderMoney, selection: ReturnSelection, policy: RefundTerms) -> RefundCalculation:
    """The refund for returning `selection.quantities` now, given what earlier returns took.

    Item amount and tax are split cumulatively over a line's units; shipping is
    per group (see `_group_shipping`) and split over this return's lines of the
    group by item amount; the fee comes off the total (never below zero); the
    total goes to payment groups pro rata to what each can still take.
    """
    try:
        refund_shipping_choice(policy.refund_shipping)
    except ValueError as exc:
        raise RefundError(str(exc)) from None
    cur = money.currency
    by_id = {line.commerce_item_id: line for line in money.lines}
    for item_id in (*selection.quantities, *selection.already_returned):
        if item_id not in by_id:
            raise RefundError(f"commerce item {item_id!r} is not in the order")

    before = {i: selection.already_returned.get(i, 0) for i in by_id}
    after = {i: before[i] + selection.quantities.get(i, 0) for i in by_id}
    splits = _line_splits(money, selection, before, after)
    splits = _with_shipping(splits, money, policy, before, after)

    item_total = sum(s.amount for s in splits)
    tax_total = sum(s.tax for s in splits)
    shipping_total = sum(s.shipping for s in splits)
    surcharge_total = sum(s.surcharge for s in splits)
    gross = item_total + (0 if money.tax_included else tax_total) + shipping_total + surcharge_total
    fee = min(policy.return_fee.charge(item_total, cur), gross) if policy.return_fee else 0
    refund = gross - fee

    payments, unallocated, reasons = _credit(money, selection, policy, refund)
    return RefundCalculation(
        currency=cur,
        items=tuple(_item_refund(s, cur, money.tax_included) for s in splits),
        item_total=_money(item_total, cur),
        tax_total=_money(tax_total, cur),
        shipping_total=_money(shipping_total, cur),
        shipping_tax_total=_money(sum(s.shipping_tax for s in splits), cur),
        fee=_money(fee, cur),
        refund_total=_money(refund, cur),
        payments=payments,
        unallocated=_money(unallocated, cur),
        manual_reasons=reasons,
        surcharge_total=_money(surcharge_total, cur),
        tax_included=money.tax_included,
    )


def _with_shipping(
    splits: list[_Split],
    money: OrderMoney,
    policy: RefundTerms,
    before: Mapping[str, int],
    after: Mapping[str, int],
) -> list[_Split]:
    """Each group's shipping (and its tax) for this return, split over its returned lines by
    item amount."""
    cur = money.currency
    splits = list(splits)
    charges = {c.shipping_group_id: c for c in money.shipping}
    for group_id in dict.fromkeys(s.line.shipping_group_id for s in splits):
        charge = charges.get(group_id)
        if charge is None:
            continue
        group_lines = [ln for ln in money.lines if ln.shipping_group_id == group_id]
        ship, ship_tax = _group_shipping(policy, charge, group_lines, before, after, cur)
        members = [k for k, s in enumerate(splits) if s.line.shipping_group_id == group_id]
        weights = [Fraction(splits[k].amount) for k in members]
        for k, s_part, t_part in zip(
            members,
            _allocate_units(ship, weights),
            _allocate_units(ship_tax, weights),
            strict=True,
        ):
            old = splits[k]
            splits[k] = _Split(
                old.line, old.quantity, old.amount, old.tax, s_part + t_part, t_part, old.surcharge
            )
    return splits


def _line_splits(
    money: OrderMoney, selection: ReturnSelection, before: Mapping[str, int], after: Mapping[str, int]
) -> list[_Split]:
    """Each returned line's amount, tax and surcharge, split cumulatively over its units."""
    cur = money.currency
    splits: list[_Split] = []
    for line in money.lines:
        ident, qty = line.commerce_item_id, selection.quantities.get(line.commerce_item_id, 0)
        if after[ident] > line.quantity:
            raise RefundError(
                f"{ident}: returning {qty} after {before[ident]} exceeds the {line.quantity} ordered"
            )
        if qty == 0:
            continue

        def part(units: int, ident: str = ident, quantity: int = line.quantity) -> int:
            return _share(units, after[ident], quantity) - _share(units, before[ident], quantity)

        splits.append(
            _Split(
                line,
                qty,
                part(_units(line.net, cur, "net")),
                part(_units(line.tax, cur, "tax")),
                surcharge=part(_units(line.surcharge, cur, "surcharge")),
            )
        )
    return splits


def _item_refund(split: _Split, cur: str, tax_included: bool) -> ItemRefund:
    return ItemRefund(
        split.line.commerce_item_id,
        split.line.shipping_group_id,
        split.quantity,
        _money(split.amount, cur),
        _money(split.tax, cur),
        _money(split.shipping, cur),
        _money(split.shipping_tax, cur),
        _money(split.surcharge, cur),
        tax_included,
    )


def credit_payments(
    money: OrderMoney, selection: ReturnSelection, terms: RefundTerms, refund: Decimal
) -> tuple[tuple[PaymentRefund, ...], Decimal, tuple[str, ...]]:
    """`refund` over the payment groups as `calculate_refund` splits it: (payments, unallocated,
    reasons a person must act)."""
    cur = money.currency
    payments, unallocated, reasons = _credit(money, selection, terms, _units(refund, cur, "refund"))
    return payments, _money(unallocated, cur), reasons


def _credit(
    money: OrderMoney, selection: ReturnSelection, terms: RefundTerms, refund: int
) -> tuple[tuple[PaymentRefund, ...], int, tuple[str, ...]]:
    """Split the refund over payment groups, pro rata to what each can still take.

    Pro rata keeps mixed tenders refunded in the proportion they paid; capping
    at amount - already credited means no group is ever credited more than it
    paid. What does not fit is left unallocated and flagged for a person.
    """
    cur = money.currency
    known = {p.payment_group_id for p in money.payments}
    for group_id in selection.already_credited:
        if group_id not in known:
            raise RefundError(f"payment group {group_id!r} is not in the order")
    room = [
        max(
            0,
            _units(p.amount, cur, "payment amount")
            - _units(
                selection.already_credited.get(p.payment_group_id, ZERO),
                cur,
                f"already credited to {p.payment_group_id}",
            ),
        )
        for p in money.payments
    ]
    creditable = sum(room)
    reasons: list[str] = []
    if refund <= creditable:
        parts = _allocate_units(refund, [Fraction(r) for r in room]) if room else []
        unallocated = 0
    else:
        parts, unallocated = room, refund - creditable
        reasons.append(
            f"refund {_money(refund, cur)} {cur} exceeds the {_money(creditable, cur)} "
            f"the payment groups can still be credited; {_money(unallocated, cur)} unallocated"
        )
    manual = terms.manual_refund_payment_methods
    payments = tuple(
        PaymentRefund(
            p.payment_group_id, p.payment_method, _money(part, cur), part > 0 and p.payment_method in manual
        )
        for p, part in zip(money.payments, parts, strict=True)
    )
    reasons += [
        f"payment group {p.payment_group_id} ({p.payment_method}) is refunded manually"
        for p in payments
        if p.manual
    ]
    return payments, unallocated, tuple(reasons)
