"""What an exchange refunds: the returned units' value less their replacements', never below 0.

SPEC section 9. Item, tax, shipping (and its tax) and surcharge are netted each
against the same figure of the replacement, so a size swap nets to 0 on every
one of them: tax charged on the replacement is always set against the tax the
returned units carried, never charged while none is refunded.

Exchanged units are not "gone" from their shipping group: their replacements
take their place, so they never earn the group's shipping back (a swap of the
whole group refunds no shipping); units returned without a replacement are
refunded as any return, fee included. When the replacements cost more than the
returned units the refund is 0 and what the shopper owes is reported, never
charged: Returnflow only credits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, Literal

from domain.refunds import (
    ItemRefund,
    OrderMoney,
    RefundCalculation,
    RefundPolicy,
    RefundTerms,
    ReturnSelection,
    allocate,
    calculate_refund,
    credit_payments,
    quantize,
)

ZERO = Decimal(0)
Basis = Literal["replacementOrder", "commerce"]
"""Where the replacements' value came from: the replacement order's own prices, or (when it
carries none) Commerce's figures on the request."""


@dataclass(frozen=True)
class Charges:
    """Money by component: `item` net of discounts, `shipping` without its tax."""

    item: Decimal = ZERO
    tax: Decimal = ZERO
    shipping: Decimal = ZERO
    shipping_tax: Decimal = ZERO
    surcharge: Decimal = ZERO

    def total(self, tax_included: bool) -> Decimal:
        tax = ZERO if tax_included else self.tax
        return self.item + tax + self.shipping + self.shipping_tax + self.surcharge

    def plus(self, other: Charges) -> Charges:
        return Charges(*(getattr(self, n) + getattr(other, n) for n in COMPONENTS))

    def to_primitive(self) -> dict[str, str]:
        return {name: format(getattr(self, name), "f") for name in COMPONENTS}

    def exact(self, currency: str) -> Charges:
        """Each figure in the currency's digits (0 as 0.00)."""
        return Charges(*(quantize(getattr(self, n), currency) for n in COMPONENTS))


COMPONENTS: tuple[str, ...] = tuple(f.name for f in fields(Charges))


@dataclass(frozen=True)
class ReturnedLine:
    """What returning these units of one commerce item is worth, by component."""

    commerce_item_id: str
    shipping_group_id: str
    quantity: int
    charges: Charges


@dataclass(frozen=True)
class ExchangeCalculation:
    """The netted refund (what is credited) beside the two values it was netted from."""

    refund: RefundCalculation
    returned: Charges
    replacement: Charges
    basis: Basis

    @property
    def returned_value(self) -> Decimal:
        return self.returned.total(self.refund.tax_included)

    @property
    def replacement_value(self) -> Decimal:
        return self.replacement.total(self.refund.tax_included)

    @property
    def difference(self) -> Decimal:
        """Returned minus replacement value: negative when the shopper owes money."""
        return self.returned_value - self.replacement_value

    @property
    def owed_by_shopper(self) -> Decimal:
        return quantize(max(ZERO, -self.difference), self.refund.currency)

    def to_primitive(self) -> dict[str, Any]:
        def text(value: Decimal) -> str:
            return format(value, "f")

        return {
            "basis": self.basis,
            "returned": self.returned.to_primitive(),
            "replacement": self.replacement.to_primitive(),
            "returnedValue": text(self.returned_value),
            "replacementValue": text(self.replacement_value),
            "difference": text(self.difference),
            "owedByShopper": text(self.owed_by_shopper),
            "refundTotal": text(self.refund.refund_total),
        }


def replacement_charges(money: OrderMoney) -> Charges:
    """What the replacement order charges, by component."""
    return Charges(
        item=sum((line.net for line in money.lines), ZERO),
        tax=sum((line.tax for line in money.lines), ZERO),
        shipping=sum((s.amount for s in money.shipping), ZERO),
        shipping_tax=sum((s.tax for s in money.shipping), ZERO),
        surcharge=sum((line.surcharge for line in money.lines), ZERO),
    )


def returned_lines(
    money: OrderMoney, selection: ReturnSelection, exchanged: Mapping[str, int], terms: RefundTerms
) -> tuple[list[ReturnedLine], Decimal]:
    """Each returned line's value and the return fee: units without a replacement as any return,
    exchanged units for their item, tax and surcharge only (no shipping, no fee)."""
    swap = {ci: min(q, exchanged.get(ci, 0)) for ci, q in selection.quantities.items()}
    swap = {ci: q for ci, q in swap.items() if q > 0}
    rest = {ci: q - swap.get(ci, 0) for ci, q in selection.quantities.items()}
    rest = {ci: q for ci, q in rest.items() if q > 0}
    parts: list[RefundCalculation] = []
    fee = ZERO
    if rest:
        kept = calculate_refund(
            money, ReturnSelection(rest, selection.already_returned, selection.already_credited), terms
        )
        parts.append(kept)
        fee = kept.fee
    if swap:
        before = {
            ci: selection.already_returned.get(ci, 0) + rest.get(ci, 0)
            for ci in {*selection.already_returned, *rest}
        }
        swapped_terms = RefundPolicy("never", None, terms.manual_refund_payment_methods)
        parts.append(calculate_refund(money, ReturnSelection(swap, before), swapped_terms))
    lines: dict[str, ReturnedLine] = {}
    for part in parts:
        for item in part.items:
            charges = Charges(
                item.amount, item.tax, item.shipping - item.shipping_tax, item.shipping_tax, item.surcharge
            )
            known = lines.get(item.commerce_item_id)
            lines[item.commerce_item_id] = ReturnedLine(
                item.commerce_item_id,
                item.shipping_group_id,
                item.quantity + (known.quantity if known else 0),
                charges.plus(known.charges) if known else charges,
            )
    order = [ln.commerce_item_id for ln in money.lines if ln.commerce_item_id in lines]
    return [lines[ci] for ci in order], fee


def calculate_exchange(
    money: OrderMoney,
    selection: ReturnSelection,
    exchanged: Mapping[str, int],
    replacement: Charges,
    terms: RefundTerms,
) -> ExchangeCalculation:
    """The exchange of `selection.quantities`, `exchanged` of them replaced by `replacement`."""
    lines, fee = returned_lines(money, selection, exchanged, terms)
    return net_refund(money, selection, lines, replacement, fee, terms, "replacementOrder")


def net_refund(
    money: OrderMoney,
    selection: ReturnSelection,
    lines: Sequence[ReturnedLine],
    replacement: Charges,
    fee: Decimal,
    terms: RefundTerms,
    basis: Basis,
) -> ExchangeCalculation:
    """Net each component, let what the replacement costs more on one component come off the
    others (pro rata, largest remainder), and split each component's refund over the returned
    lines in proportion to what each line brought (so no line gets more than a return gives)."""
    cur = money.currency
    returned = Charges()
    for line in lines:
        returned = returned.plus(line.charges)
    final = _netted(returned, replacement, money.tax_included, cur).exact(cur)
    shares = {
        name: allocate(getattr(final, name), [getattr(ln.charges, name) for ln in lines], cur)
        for name in COMPONENTS
    }
    items = tuple(
        ItemRefund(
            line.commerce_item_id,
            line.shipping_group_id,
            line.quantity,
            shares["item"][k],
            shares["tax"][k],
            shares["shipping"][k] + shares["shipping_tax"][k],
            shares["shipping_tax"][k],
            shares["surcharge"][k],
            money.tax_included,
        )
        for k, line in enumerate(lines)
    )
    gross = final.total(money.tax_included)
    charged_fee = quantize(min(fee, gross), cur)
    refund_total = gross - charged_fee
    payments, unallocated, reasons = credit_payments(money, selection, terms, refund_total)
    calculation = RefundCalculation(
        currency=cur,
        items=items,
        item_total=final.item,
        tax_total=final.tax,
        shipping_total=final.shipping + final.shipping_tax,
        shipping_tax_total=final.shipping_tax,
        fee=charged_fee,
        refund_total=refund_total,
        payments=payments,
        unallocated=unallocated,
        manual_reasons=reasons,
        surcharge_total=final.surcharge,
        tax_included=money.tax_included,
    )
    return ExchangeCalculation(calculation, returned.exact(cur), replacement.exact(cur), basis)


def _netted(returned: Charges, replacement: Charges, tax_included: bool, cur: str) -> Charges:
    net = {name: getattr(returned, name) - getattr(replacement, name) for name in COMPONENTS}
    counted = [n for n in COMPONENTS if not (tax_included and n == "tax")]
    if sum((net[n] for n in counted), ZERO) <= 0:
        return Charges()
    gains = [n for n in counted if net[n] > 0]
    deficit = sum((-net[n] for n in counted if net[n] < 0), ZERO)
    cuts = dict(zip(gains, allocate(deficit, [net[n] for n in gains], cur), strict=True))
    final = {n: (net[n] - cuts[n] if n in cuts else ZERO) for n in counted}
    if tax_included:
        final["tax"] = min(max(net["tax"], ZERO), final["item"])
    return Charges(**final)


def commerce_lines(
    figures: Sequence[tuple[str, str, int, Charges]],
    total_refund: Decimal,
    currency: str,
    tax_included: bool = False,
) -> tuple[list[ReturnedLine], Charges]:
    """Commerce's own figures on the request (its per-item refund shares and the request's
    `totalRefundAmount`, net of the replacements) as returned lines and the replacements'
    value (spread over the components pro rata), for a replacement order that carries no
    prices of its own.

    A total above what the items add up to is taken on the first line's item amount, so
    Commerce's total always stands.
    """
    lines: dict[str, ReturnedLine] = {}
    for ci, group, quantity, charges in figures:
        known = lines.get(ci)
        lines[ci] = ReturnedLine(
            ci,
            group,
            quantity + (known.quantity if known else 0),
            charges.plus(known.charges) if known else charges,
        )
    ordered = list(lines.values())
    returned = Charges()
    for line in ordered:
        returned = returned.plus(line.charges)
    worth = returned.total(tax_included)
    if ordered and total_refund > worth:
        first = ordered[0]
        extra = Charges(item=total_refund - worth)
        ordered[0] = ReturnedLine(
            first.commerce_item_id, first.shipping_group_id, first.quantity, first.charges.plus(extra)
        )
        returned = returned.plus(extra)
        worth = total_refund
    counted = [n for n in COMPONENTS if not (tax_included and n == "tax")]
    lump = allocate(worth - total_refund, [getattr(returned, n) for n in counted], currency)
    return ordered, Charges(**dict(zip(counted, lump, strict=True)))
