"""What a return will refund, per payment group: the quote, a fresh calculation, or an override.

The plan is what `initiate_refund` records and `settle_refund` credits, so the
numbers Commerce is told are the numbers the refund maths produced (or an
operator's override, checked against what each payment group can still take).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.eligibility import count_returns, order_money
from domain.errors import DomainError
from domain.exchanges import Charges, calculate_exchange, commerce_lines, net_refund, replacement_charges
from domain.money import quantize
from domain.orders import Order
from domain.refunds import ZERO, RefundTerms, ReturnSelection, calculate_refund
from domain.returns import ReturnRequest


def _selection(ret: ReturnRequest) -> dict[str, int]:
    quantities: dict[str, int] = {}
    for item in ret.items:
        ci = item["commerceItemId"]
        quantities[ci] = quantities.get(ci, 0) + item["quantityToReturn"]
    return {k: v for k, v in quantities.items() if v > 0}


def _quote_matches(quote: Mapping[str, Any] | None, selection: Mapping[str, int]) -> bool:
    if not quote:
        return False
    quoted = {i["commerce_item_id"]: i["quantity"] for i in quote.get("items", [])}
    return quoted == dict(selection)


def remaining_by_group(order: Order) -> dict[str, Decimal]:
    """What each payment group can still take: paid (capped at the order total) minus credited
    (by Commerce or an agent, as reported, and by Returnflow since)."""
    money = order_money(order)
    credited = order.credited_amounts()
    return {
        p.payment_group_id: p.amount - credited.get(p.payment_group_id, Decimal(0)) for p in money.payments
    }


def plan_refund(
    order: Order,
    ret: ReturnRequest,
    others: Sequence[ReturnRequest],
    terms: RefundTerms,
    override: Mapping[str, Any] | None = None,
    replacement: Order | None = None,
) -> dict[str, Any]:
    """The refund plan for `ret`; an override `{"paymentGroups": {id: amount}}` is validated.

    An exchange is planned net of its replacements (`domain.exchanges`): `replacement` is
    its replacement order, when Returnflow holds it.
    """
    currency = order.snapshot["currency"]
    if override is not None:
        return _override(order, override, currency)
    selection = _selection(ret)
    if not selection:
        raise DomainError("the return has no quantities to refund", code="NOTHING_TO_REFUND")
    if is_exchange(ret):
        return _exchange_plan(
            order, ret, _return_selection(order, ret, others, selection), terms, replacement
        )
    quote = order.refund_quote
    if quote is not None and _quote_matches(quote, selection):
        source, calc = "CalculateRefund_Return", quote
    else:
        calculation = calculate_refund(
            order_money(order), _return_selection(order, ret, others, selection), terms
        )
        source, calc = "calculated", calculation.to_primitive()
    return _plan(source, currency, calc)


def _plan(source: str, currency: str, calc: Mapping[str, Any]) -> dict[str, Any]:
    payments = {p["payment_group_id"]: p["amount"] for p in calc["payments"]}
    manual_methods = [p["payment_group_id"] for p in calc["payments"] if p.get("manual")]
    return {
        "source": source,
        "currency": currency,
        "total": calc["refund_total"],
        "payments": payments,
        "calculation": calc,
        "manualReasons": list(calc.get("manual_reasons", []))
        + [f"payment group {pg} cannot be refunded automatically" for pg in manual_methods],
    }


def _return_selection(
    order: Order, ret: ReturnRequest, others: Sequence[ReturnRequest], selection: Mapping[str, int]
) -> ReturnSelection:
    counts = count_returns(others, exclude=ret.commerce_id)
    lines = {line.commerce_item_id: line.quantity for line in order_money(order).lines}
    return ReturnSelection(
        quantities=selection,
        already_returned={
            ci: max(0, min(counts.returned.get(ci, 0), qty - selection.get(ci, 0)))
            for ci, qty in lines.items()
        },
        already_credited=order.credited_amounts(),
    )


def is_exchange(ret: ReturnRequest) -> bool:
    return ret.process_name.strip().lower() == "exchange"


def exchanged_units(ret: ReturnRequest) -> dict[str, int]:
    """Units replaced per commerce item: the items' `quantityToExchange`; an exchange that names
    none replaces every unit it takes back."""
    exchanged: dict[str, int] = {}
    for item in ret.items:
        ci = item["commerceItemId"]
        exchanged[ci] = exchanged.get(ci, 0) + int(item.get("quantityToExchange") or 0)
    if not any(exchanged.values()):
        return _selection(ret)
    return {ci: q for ci, q in exchanged.items() if q > 0}


def _exchange_plan(
    order: Order,
    ret: ReturnRequest,
    selection: ReturnSelection,
    terms: RefundTerms,
    replacement: Order | None,
) -> dict[str, Any]:
    """Priced by the replacement order when it carries prices, else by Commerce's own figures."""
    money = order_money(order)
    if replacement is not None and ret.details.get("replacementPriced"):
        exchange = calculate_exchange(
            money, selection, exchanged_units(ret), replacement_charges(order_money(replacement)), terms
        )
    else:
        lines, value = commerce_lines(
            [
                (
                    i["commerceItemId"],
                    i.get("shippingGroupId") or "",
                    int(i["quantityToReturn"]),
                    Charges(
                        _amount(i.get("refundAmount")),
                        _amount(i.get("actualTaxRefundShare")),
                        _amount(i.get("actualShippingRefundShare")),
                        ZERO,
                        _amount(i.get("actualShippingSurchargeRefundShare")),
                    ),
                )
                for i in ret.items
                if int(i["quantityToReturn"]) > 0
            ],
            _amount(ret.refund.get("totalRefundAmount")),
            money.currency,
            money.tax_included,
        )
        exchange = net_refund(money, selection, lines, value, ZERO, terms, "commerce")
    plan = _plan("exchange", order.snapshot["currency"], exchange.refund.to_primitive())
    plan["exchange"] = {
        **exchange.to_primitive(),
        "replacementOrderId": ret.details.get("replacementOrderId"),
    }
    return plan


def _amount(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else ZERO


def nothing_owed(plan: Mapping[str, Any] | None) -> bool:
    """An exchange plan that credits nothing: even, or the shopper owes the difference."""
    return bool(plan and plan.get("exchange") and Decimal(plan["total"]) == 0)


def no_refund_reason(ret: ReturnRequest, plan: Mapping[str, Any]) -> str:
    """Why no refund is owed on an exchange, in words for the audit and a 409."""
    figures = plan["exchange"]
    owed = Decimal(figures["owedByShopper"])
    tail = (
        f"the shopper owes {owed} {plan['currency']} (reported, not charged)"
        if owed > 0
        else "an even exchange"
    )
    return (
        f"no refund owed on exchange {ret.commerce_id}: returned units worth {figures['returnedValue']}"
        f" replaced by {figures['replacementValue']} {plan['currency']}; {tail}"
    )


def _override(order: Order, override: Mapping[str, Any], currency: str) -> dict[str, Any]:
    groups = override.get("paymentGroups")
    if not isinstance(groups, Mapping) or not groups:
        raise DomainError(
            "amounts.paymentGroups must map payment group ids to amounts", code="INVALID_AMOUNTS"
        )
    room = remaining_by_group(order)
    payments: dict[str, str] = {}
    for group_id, raw in groups.items():
        if group_id not in room:
            raise DomainError(
                f"order {order.commerce_id} has no payment group {group_id}", code="INVALID_AMOUNTS"
            )
        try:
            amount = Decimal(str(raw))
        except InvalidOperation:
            raise DomainError(f"amount for {group_id} is not a number", code="INVALID_AMOUNTS") from None
        if not amount.is_finite() or amount < 0 or quantize(amount, currency) != amount:
            raise DomainError(
                f"amount for {group_id} must be >= 0 in {currency}'s digits", code="INVALID_AMOUNTS"
            )
        if amount > room[group_id]:
            raise DomainError(
                f"{amount} exceeds what payment group {group_id} can still take ({room[group_id]})",
                code="REFUND_EXCEEDS_PAYMENT",
            )
        payments[group_id] = str(amount)
    total = sum((Decimal(v) for v in payments.values()), Decimal(0))
    return {
        "source": "override",
        "currency": currency,
        "total": str(total),
        "payments": payments,
        "calculation": None,
        "manualReasons": [],
    }


def needs_manual(plan: Mapping[str, Any], manual_methods: frozenset[str], order: Order) -> list[str]:
    """Why a person must refund: the maths said so, or a payment method cannot be refunded by API."""
    reasons = list(plan.get("manualReasons") or [])
    methods = {p["id"]: p.get("paymentMethod") for p in order.snapshot["paymentGroups"]}
    for group_id, amount in (plan.get("payments") or {}).items():
        if Decimal(amount) > 0 and methods.get(group_id) in manual_methods:
            reasons.append(f"payment method {methods[group_id]} of {group_id} is refunded by hand")
    return sorted(set(reasons))
