"""Exchange maths (SPEC section 9): worked examples with exact amounts, then properties."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.exchanges import Charges, calculate_exchange, commerce_lines, net_refund, returned_lines
from domain.refunds import (
    OrderLine,
    OrderMoney,
    PaymentShare,
    RefundCalculation,
    RefundPolicy,
    ReturnFee,
    ReturnSelection,
    ShippingCharge,
    calculate_refund,
    digits,
)
from tests.unit.test_refunds import CURRENCIES, JACKET, assert_quantized, money_of, orders, seed_order

D = Decimal
NO_MANUAL = RefundPolicy(manual_refund_payment_methods=frozenset())


def taxed_order() -> OrderMoney:
    """Two shirts at 50.00 + 4.00 tax each, shipping 10.00 + 0.80 tax, paid by card and gift card."""
    return OrderMoney(
        "USD",
        (OrderLine("ci-shirt", "sg1", 2, D("100.00"), tax=D("8.00")),),
        (ShippingCharge("sg1", D("10.00"), D("0.80")),),
        (PaymentShare("pg-card", "creditCard", D("78.80")), PaymentShare("pg-gift", "giftCard", D("40.00"))),
    )


def test_even_size_swap_nets_to_zero_on_item_tax_and_shipping() -> None:
    money = taxed_order()
    swap = calculate_exchange(
        money, ReturnSelection({"ci-shirt": 1}), {"ci-shirt": 1}, Charges(D("50.00"), D("4.00")), NO_MANUAL
    )
    refund = swap.refund
    assert (refund.item_total, refund.tax_total, refund.shipping_total, refund.refund_total) == (
        D("0.00"),
        D("0.00"),
        D("0.00"),
        D("0.00"),
    )
    assert [p.amount for p in refund.payments] == [D("0.00"), D("0.00")]
    assert (swap.returned_value, swap.replacement_value, swap.difference) == (D("54.00"), D("54.00"), 0)
    assert swap.owed_by_shopper == D("0.00")


def test_swapping_the_whole_group_refunds_no_shipping() -> None:
    """The replacements take the returned units' place: the delivery was not in vain."""
    money = taxed_order()
    swap = calculate_exchange(
        money, ReturnSelection({"ci-shirt": 2}), {"ci-shirt": 2}, Charges(D("100.00"), D("8.00")), NO_MANUAL
    )
    assert swap.refund.refund_total == D("0.00") and swap.refund.shipping_total == D("0.00")
    plain = calculate_refund(money, ReturnSelection({"ci-shirt": 2}), NO_MANUAL)
    assert plain.shipping_total == D("10.80"), "a plain return of the group refunds it"


def test_tax_on_the_replacement_is_set_against_the_tax_returned() -> None:
    """Never tax charged on the replacement while none refunded on the return: each figure nets."""
    money = taxed_order()
    cheaper = calculate_exchange(
        money, ReturnSelection({"ci-shirt": 1}), {"ci-shirt": 1}, Charges(D("45.00"), D("3.60")), NO_MANUAL
    )
    refund = cheaper.refund
    assert (refund.item_total, refund.tax_total, refund.refund_total) == (D("5.00"), D("0.40"), D("5.40"))
    # pro rata to what each group can still take: 78.80 : 40.00
    assert [(p.payment_group_id, p.amount) for p in refund.payments] == [
        ("pg-card", D("3.58")),
        ("pg-gift", D("1.82")),
    ]
    (item,) = refund.items
    assert (item.amount, item.tax, item.total) == (D("5.00"), D("0.40"), D("5.40"))


def test_dearer_replacement_refunds_nothing_and_reports_what_is_owed() -> None:
    money = taxed_order()
    dearer = calculate_exchange(
        money,
        ReturnSelection({"ci-shirt": 1}),
        {"ci-shirt": 1},
        Charges(D("59.99"), D("4.80"), D("4.95")),
        NO_MANUAL,
    )
    assert dearer.refund.refund_total == D("0.00")
    assert all(i.total == 0 for i in dearer.refund.items)
    assert (dearer.difference, dearer.owed_by_shopper) == (D("-15.74"), D("15.74"))


def test_a_cheaper_item_pays_for_dearer_tax_and_shipping_first() -> None:
    """Item +10.00, tax -0.50, shipping -2.00: the refund is 7.50, all of it on the item."""
    money = taxed_order()
    mixed = calculate_exchange(
        money,
        ReturnSelection({"ci-shirt": 1}),
        {"ci-shirt": 1},
        Charges(D("40.00"), D("4.50"), D("2.00")),
        NO_MANUAL,
    )
    refund = mixed.refund
    assert (refund.item_total, refund.tax_total, refund.shipping_total, refund.refund_total) == (
        D("7.50"),
        D("0.00"),
        D("0.00"),
        D("7.50"),
    )


def test_units_returned_without_replacement_are_refunded_as_a_return() -> None:
    """Seed order o20005: one jacket swapped even, the other sent back for good with the fee."""
    money = seed_order()
    policy = RefundPolicy(return_fee=ReturnFee(amount=D("5.00")), manual_refund_payment_methods=frozenset())
    mixed = calculate_exchange(money, ReturnSelection({JACKET: 2}), {JACKET: 1}, Charges(D("130.95")), policy)
    refund = mixed.refund
    # the kept-back jacket 130.95; the group is not emptied (one was swapped): no shipping
    assert (refund.item_total, refund.shipping_total, refund.fee, refund.refund_total) == (
        D("130.95"),
        D("0.00"),
        D("5.00"),
        D("125.95"),
    )
    (item,) = refund.items
    assert (item.quantity, item.amount) == (2, D("130.95"))


def test_commerces_figures_stand_when_the_replacement_has_no_prices() -> None:
    money = taxed_order()
    lines, replacement = commerce_lines(
        [("ci-shirt", "sg1", 1, Charges(D("50.00"), D("4.00")))], D("10.80"), "USD"
    )
    netted = net_refund(
        money, ReturnSelection({"ci-shirt": 1}), lines, replacement, D(0), NO_MANUAL, "commerce"
    )
    assert netted.refund.refund_total == D("10.80")
    assert (netted.refund.item_total, netted.refund.tax_total) == (D("10.00"), D("0.80"))
    owed_lines, owed = commerce_lines(
        [("ci-shirt", "sg1", 1, Charges(D("50.00"), D("4.00")))], D("-6.00"), "USD"
    )
    owing = net_refund(money, ReturnSelection({"ci-shirt": 1}), owed_lines, owed, D(0), NO_MANUAL, "commerce")
    assert (owing.refund.refund_total, owing.owed_by_shopper) == (D("0.00"), D("6.00"))
    above_lines, above = commerce_lines([("ci-shirt", "sg1", 1, Charges())], D("3.00"), "USD")
    above_items = net_refund(
        money, ReturnSelection({"ci-shirt": 1}), above_lines, above, D(0), NO_MANUAL, "commerce"
    )
    assert above_items.refund.refund_total == D("3.00"), "Commerce's total stands above its item figures"


# Properties: random orders, random exchanges of random parts, random replacements.


@st.composite
def exchanges(draw: st.DrawFn) -> tuple[OrderMoney, ReturnSelection, dict[str, int], Charges, RefundPolicy]:
    money = draw(orders())
    cur = money.currency
    chosen = draw(st.lists(st.sampled_from(money.lines), min_size=1, unique=True))
    quantities = {ln.commerce_item_id: draw(st.integers(1, ln.quantity)) for ln in chosen}
    exchanged = {ci: draw(st.integers(0, q)) for ci, q in quantities.items()}
    scale = 10 ** digits(cur)

    def amount(top: int) -> Decimal:
        return money_of(draw(st.integers(0, top * scale)), cur)

    replacement = Charges(amount(600), amount(60), amount(30), amount(5), amount(20))
    fee = draw(
        st.sampled_from([None, ReturnFee(amount=amount(10)), ReturnFee(percent=D(draw(st.integers(0, 100))))])
    )
    policy = RefundPolicy(
        draw(st.sampled_from(["never", "when_group_fully_returned", "always"])),
        fee,
        frozenset(),
    )
    return money, ReturnSelection(quantities), exchanged, replacement, policy


@settings(max_examples=300, deadline=None)
@given(case=exchanges())
def test_exchange_shares_always_sum_to_the_totals_and_never_exceed_a_return(
    case: tuple[OrderMoney, ReturnSelection, dict[str, int], Charges, RefundPolicy],
) -> None:
    money, selection, exchanged, replacement, policy = case
    result = calculate_exchange(money, selection, exchanged, replacement, policy)
    refund = result.refund
    cur = money.currency
    for value in (
        refund.item_total,
        refund.tax_total,
        refund.shipping_total,
        refund.refund_total,
        refund.fee,
    ):
        assert_quantized(value, cur)
        assert value >= 0
    for item in refund.items:
        for value in (item.amount, item.tax, item.shipping, item.shipping_tax, item.surcharge):
            assert_quantized(value, cur)
            assert value >= 0
    assert sum((i.amount for i in refund.items), D(0)) == refund.item_total
    assert sum((i.tax for i in refund.items), D(0)) == refund.tax_total
    assert sum((i.shipping for i in refund.items), D(0)) == refund.shipping_total
    assert sum((p.amount for p in refund.payments), D(0)) + refund.unallocated == refund.refund_total
    assert RefundCalculation.from_primitive(refund.to_primitive()) == refund
    lines, fee = returned_lines(money, selection, exchanged, policy)
    worth = {ln.commerce_item_id: ln.charges for ln in lines}
    for item in refund.items:
        line = worth[item.commerce_item_id]
        assert item.amount <= line.item and item.tax <= line.tax and item.surcharge <= line.surcharge
        assert item.shipping <= line.shipping + line.shipping_tax
    assert {i.commerce_item_id: i.quantity for i in refund.items} == dict(selection.quantities)
    if result.difference <= 0:
        assert refund.refund_total == 0 and result.owed_by_shopper == -result.difference
    else:
        assert refund.refund_total == result.difference - min(fee, result.difference)
        assert result.owed_by_shopper == 0


@settings(max_examples=200, deadline=None)
@given(case=exchanges())
def test_a_like_for_like_replacement_refunds_nothing(
    case: tuple[OrderMoney, ReturnSelection, dict[str, int], Charges, RefundPolicy],
) -> None:
    money, selection, _, _, policy = case
    everything = dict(selection.quantities)
    lines, _ = returned_lines(money, selection, everything, policy)
    same = Charges()
    for line in lines:
        same = same.plus(line.charges)
    swap = calculate_exchange(money, selection, everything, same, policy)
    assert swap.refund.refund_total == 0 and swap.difference == 0
    assert swap.refund.tax_total == 0 and swap.refund.shipping_total == 0


@pytest.mark.parametrize("currency", CURRENCIES)
def test_free_replacement_refunds_what_the_return_would(currency: str) -> None:
    """Nothing set against the returned units: exactly a return of them (minus their shipping)."""
    unit = money_of(1, currency)
    money = OrderMoney(
        currency,
        (OrderLine("ci", "sg", 3, unit * 1001, tax=unit * 77),),
        (),
        (PaymentShare("pg", "creditCard", unit * 1078),),
    )
    result = calculate_exchange(money, ReturnSelection({"ci": 2}), {"ci": 1}, Charges(), NO_MANUAL)
    plain = calculate_refund(money, ReturnSelection({"ci": 2}), NO_MANUAL)
    assert result.refund.refund_total == plain.refund_total
    assert result.refund.item_total == plain.item_total and result.refund.tax_total == plain.tax_total
