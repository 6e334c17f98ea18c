"""Refund maths: the seed order worked through by hand, then properties over random orders."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.refunds import (
    OrderLine,
    OrderMoney,
    PaymentShare,
    RefundCalculation,
    RefundError,
    RefundPolicy,
    RefundShipping,
    ReturnFee,
    ReturnSelection,
    ShippingCharge,
    allocate,
    allocate_order_discount,
    calculate_refund,
    digits,
    quantize,
)

D = Decimal
JACKET = "ci2000007"


def seed_order() -> OrderMoney:
    """Order o20005 from the Order Submit seed.

    The sample's payment group says amount 297.5 but the order total is 268.4
    (291 - 29.1 + 6.5) and 261.9 was authorized: the sample is inconsistent, so
    the payable amount used is the order total.
    """
    lines = allocate_order_discount([OrderLine(JACKET, "sg20005", 2, D("291"))], D("29.1"), "USD")
    return OrderMoney(
        "USD",
        lines,
        (ShippingCharge("sg20005", D("6.5")),),
        (PaymentShare("pg20005", "tokenizedCreditCard", D("268.40")),),
    )


def test_seed_order_returned_in_two_halves() -> None:
    money = seed_order()
    assert money.lines[0].order_discount_share == D("29.10")
    assert money.lines[0].net == D("261.90")
    assert money.total == D("268.40")
    policy = RefundPolicy(refund_shipping="when_group_fully_returned")

    first = calculate_refund(money, ReturnSelection({JACKET: 1}), policy)
    assert (first.item_total, first.tax_total, first.shipping_total) == (
        D("130.95"),
        D("0.00"),
        D("0.00"),
    )
    assert first.refund_total == D("130.95")
    assert [(p.payment_group_id, p.amount) for p in first.payments] == [("pg20005", D("130.95"))]
    assert not first.requires_manual

    second = calculate_refund(
        money,
        ReturnSelection({JACKET: 1}, {JACKET: 1}, {"pg20005": first.refund_total}),
        policy,
    )
    assert (second.item_total, second.shipping_total) == (D("130.95"), D("6.50"))
    assert second.refund_total == D("137.45")
    assert second.payments[0].amount == D("137.45")
    assert not second.requires_manual

    assert first.item_total + second.item_total == D("261.90")
    assert first.shipping_total + second.shipping_total == D("6.50")
    assert first.refund_total + second.refund_total == money.total


def test_seed_order_as_primitive() -> None:
    calc = calculate_refund(seed_order(), ReturnSelection({JACKET: 2}), RefundPolicy())
    primitive = calc.to_primitive()
    assert primitive == {
        "currency": "USD",
        "items": [
            {
                "commerce_item_id": JACKET,
                "shipping_group_id": "sg20005",
                "quantity": 2,
                "amount": "261.90",
                "tax": "0.00",
                "shipping": "6.50",
                "shipping_tax": "0.00",
                "surcharge": "0.00",
                "total": "268.40",
            }
        ],
        "item_total": "261.90",
        "tax_total": "0.00",
        "shipping_total": "6.50",
        "shipping_tax_total": "0.00",
        "fee": "0.00",
        "refund_total": "268.40",
        "unallocated": "0.00",
        "payments": [
            {
                "payment_group_id": "pg20005",
                "payment_method": "tokenizedCreditCard",
                "amount": "268.40",
                "manual": False,
            }
        ],
        "requires_manual": False,
        "manual_reasons": [],
        "surcharge_total": "0.00",
        "tax_included": False,
    }
    assert RefundCalculation.from_primitive(primitive) == calc


def test_seed_return_request_always_refunds_shipping_pro_rata() -> None:
    """Order o30430 of the Return Request Update seed: 2 of 3 units back, 60 of 90.

    Commerce suggests 16.66 shipping (25 x 2/3, truncated) and 3.75 tax; half-up
    gives 16.67 now and 8.33 with the last unit, 25.00 in all.
    """
    money = OrderMoney(
        "USD",
        (OrderLine("ci3000439", "sg40430", 3, D("90"), tax=D("5.63")),),
        (ShippingCharge("sg40430", D("25"), D("1.56")),),
        (PaymentShare("pg30412", "tokenizedCreditCard", D("122.19")),),
    )
    policy = RefundPolicy(refund_shipping="always")
    first = calculate_refund(money, ReturnSelection({"ci3000439": 2}), policy)
    assert (first.item_total, first.tax_total) == (D("60.00"), D("3.75"))
    assert (first.shipping_total, first.shipping_tax_total) == (D("17.71"), D("1.04"))
    rest = calculate_refund(
        money,
        ReturnSelection({"ci3000439": 1}, {"ci3000439": 2}, {"pg30412": first.refund_total}),
        policy,
    )
    assert (rest.item_total, rest.tax_total) == (D("30.00"), D("1.88"))
    assert (rest.shipping_total, rest.shipping_tax_total) == (D("8.85"), D("0.52"))
    assert first.refund_total + rest.refund_total == money.total == D("122.19")


@pytest.mark.parametrize(
    ("fee", "expected_fee", "expected_total"),
    [
        (None, "0.00", "130.95"),
        (ReturnFee(amount=D("5")), "5.00", "125.95"),
        (ReturnFee(percent=D("10")), "13.10", "117.85"),
        (ReturnFee(amount=D("1000")), "130.95", "0.00"),
        (ReturnFee(percent=D("100")), "130.95", "0.00"),
    ],
)
def test_return_fee(fee: ReturnFee | None, expected_fee: str, expected_total: str) -> None:
    calc = calculate_refund(seed_order(), ReturnSelection({JACKET: 1}), RefundPolicy(return_fee=fee))
    assert calc.fee == D(expected_fee)
    assert calc.refund_total == D(expected_total)
    assert sum(p.amount for p in calc.payments) == calc.refund_total


@pytest.mark.parametrize(
    ("refund_shipping", "first", "second"),
    [("never", "0.00", "0.00"), ("when_group_fully_returned", "0.00", "6.50"), ("always", "3.25", "3.25")],
)
def test_refund_shipping_choices(refund_shipping: RefundShipping, first: str, second: str) -> None:
    policy = RefundPolicy(refund_shipping=refund_shipping)
    one = calculate_refund(seed_order(), ReturnSelection({JACKET: 1}), policy)
    two = calculate_refund(seed_order(), ReturnSelection({JACKET: 1}, {JACKET: 1}), policy)
    assert (one.shipping_total, two.shipping_total) == (D(first), D(second))


def test_group_fully_returned_counts_other_lines_of_the_group() -> None:
    money = OrderMoney(
        "USD",
        (
            OrderLine("a", "sg1", 1, D("10.00")),
            OrderLine("b", "sg1", 1, D("30.00")),
            OrderLine("c", "sg2", 1, D("5.00")),
        ),
        (ShippingCharge("sg1", D("4.00"), D("0.33")), ShippingCharge("sg2", D("2.00"))),
        (PaymentShare("pg", "creditCard", D("51.33")),),
    )
    policy = RefundPolicy()
    only_a = calculate_refund(money, ReturnSelection({"a": 1}), policy)
    assert only_a.shipping_total == D("0.00")
    a_and_b = calculate_refund(money, ReturnSelection({"a": 1, "b": 1}), policy)
    assert [(i.shipping, i.shipping_tax) for i in a_and_b.items] == [
        (D("1.08"), D("0.08")),
        (D("3.25"), D("0.25")),
    ]
    b_after_a = calculate_refund(money, ReturnSelection({"b": 1}, {"a": 1}), policy)
    assert b_after_a.shipping_total == D("4.33")


def test_refund_beyond_payment_groups_needs_a_person() -> None:
    money = OrderMoney(
        "USD",
        (OrderLine("a", "sg1", 2, D("100.00")),),
        (),
        (
            PaymentShare("gift", "giftCard", D("30.00")),
            PaymentShare("card", "creditCard", D("50.00")),
        ),
    )
    calc = calculate_refund(
        money, ReturnSelection({"a": 2}, already_credited={"card": D("10.00")}), RefundPolicy()
    )
    assert [p.amount for p in calc.payments] == [D("30.00"), D("40.00")]
    assert calc.unallocated == D("30.00")
    assert calc.requires_manual
    assert "exceeds" in calc.manual_reasons[0]


def test_manual_payment_method_is_flagged() -> None:
    money = OrderMoney(
        "EUR",
        (OrderLine("a", "sg1", 1, D("99.99")),),
        (),
        (
            PaymentShare("inv", "invoice", D("50.00")),
            PaymentShare("card", "creditCard", D("49.99")),
        ),
    )
    calc = calculate_refund(money, ReturnSelection({"a": 1}), RefundPolicy())
    assert [(p.amount, p.manual) for p in calc.payments] == [
        (D("50.00"), True),
        (D("49.99"), False),
    ]
    assert calc.requires_manual
    assert calc.manual_reasons == ("payment group inv (invoice) is refunded manually",)


def test_no_payment_groups_needs_a_person() -> None:
    money = OrderMoney("USD", (OrderLine("a", "sg1", 1, D("1.00")),))
    calc = calculate_refund(money, ReturnSelection({"a": 1}), RefundPolicy())
    assert calc.unallocated == D("1.00")
    assert calc.requires_manual


def test_allocate_is_exact_and_breaks_ties_by_index() -> None:
    assert allocate(D("0.10"), [1, 1, 1], "USD") == (D("0.04"), D("0.03"), D("0.03"))
    assert allocate(D("100"), [D("1"), D("2")], "JPY") == (D("33"), D("67"))
    assert allocate(D("0.005"), [0, 0], "BHD") == (D("0.003"), D("0.002"))
    assert allocate(D("0.00"), [], "USD") == ()
    with pytest.raises(RefundError):
        allocate(D("0.001"), [1], "USD")
    with pytest.raises(RefundError):
        allocate(D("1.00"), [], "USD")
    with pytest.raises(RefundError):
        allocate(D("1.00"), [-1, 2], "USD")


def test_allocate_order_discount_over_lines() -> None:
    lines = [
        OrderLine("a", "s", 1, D("10.00")),
        OrderLine("b", "s", 1, D("20.00")),
        OrderLine("c", "s", 1, D("0.00")),
    ]
    shares = [ln.order_discount_share for ln in allocate_order_discount(lines, D("1.00"), "USD")]
    assert shares == [D("0.33"), D("0.67"), D("0.00")]
    with pytest.raises(RefundError, match="exceeds"):
        allocate_order_discount(lines, D("30.01"), "USD")


@pytest.mark.parametrize(
    ("quantities", "already", "message"),
    [
        ({"nope": 1}, {}, "not in the order"),
        ({"a": 3}, {}, "exceeds"),
        ({"a": 1}, {"a": 2}, "exceeds"),
    ],
)
def test_bad_selection_is_refused(quantities: dict[str, int], already: dict[str, int], message: str) -> None:
    money = OrderMoney("USD", (OrderLine("a", "s", 2, D("1.00")),))
    with pytest.raises(RefundError, match=message):
        calculate_refund(money, ReturnSelection(quantities, already), RefundPolicy())


def test_negative_quantity_is_refused() -> None:
    with pytest.raises(RefundError):
        ReturnSelection({"a": -1})


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (OrderLine("a", "s", 1, D("1.001")), "more digits"),
        (OrderLine("a", "s", 0, D("1.00")), "at least 1"),
        (OrderLine("a", "s", 1, D("1.00"), D("2.00")), "exceeds amount"),
        (OrderLine("a", "s", 1, D("1.00"), tax=D("-0.01")), ">= 0"),
    ],
)
def test_bad_order_model_is_refused(line: OrderLine, message: str) -> None:
    with pytest.raises(RefundError, match=message):
        OrderMoney("USD", (line,))


def test_from_primitive_rejects_inconsistent_totals() -> None:
    primitive = calculate_refund(seed_order(), ReturnSelection({JACKET: 1}), RefundPolicy())
    data = primitive.to_primitive()
    data["item_total"] = "130.96"
    with pytest.raises(RefundError, match="item_total"):
        RefundCalculation.from_primitive(data)
    data = primitive.to_primitive()
    data["fee"] = 1.5
    with pytest.raises(RefundError, match="strings"):
        RefundCalculation.from_primitive(data)


def test_return_fee_needs_exactly_one_of_amount_or_percent() -> None:
    with pytest.raises(ValueError):
        ReturnFee()
    with pytest.raises(ValueError):
        ReturnFee(amount=D("1"), percent=D("1"))
    with pytest.raises(ValueError):
        ReturnFee(percent=D("101"))


# Property-based: random orders, random partial returns until everything is back.

CURRENCIES = ["JPY", "CLP", "USD", "EUR", "BHD", "KWD"]


def money_of(units: int, currency: str) -> Decimal:
    return Decimal(units).scaleb(-digits(currency))


@st.composite
def orders(draw: st.DrawFn) -> OrderMoney:
    currency = draw(st.sampled_from(CURRENCIES))
    scale = 10 ** digits(currency)
    groups = [f"sg{i}" for i in range(draw(st.integers(1, 3)))]
    lines = []
    for n in range(draw(st.integers(1, 6))):
        raw = draw(st.integers(0, 500 * scale))
        item_discount = draw(st.integers(0, raw))
        amount = raw - item_discount
        lines.append(
            OrderLine(
                f"ci{n}",
                draw(st.sampled_from(groups)),
                draw(st.integers(1, 5)),
                money_of(amount, currency),
                money_of(draw(st.integers(0, amount)), currency) if draw(st.booleans()) else Decimal(0),
                money_of(draw(st.integers(0, 50 * scale)), currency),
                money_of(draw(st.integers(0, 20 * scale)), currency) if draw(st.booleans()) else Decimal(0),
            )
        )
    if draw(st.booleans()):
        without = [
            OrderLine(
                ln.commerce_item_id,
                ln.shipping_group_id,
                ln.quantity,
                ln.amount,
                Decimal(0),
                ln.tax,
                ln.surcharge,
            )
            for ln in lines
        ]
        total_amount = sum(int(ln.amount.scaleb(digits(currency))) for ln in lines)
        discount = money_of(draw(st.integers(0, total_amount)), currency)
        lines = list(allocate_order_discount(without, discount, currency))
    shipping = tuple(
        ShippingCharge(
            g,
            money_of(draw(st.integers(0, 30 * scale)), currency),
            money_of(draw(st.integers(0, 5 * scale)), currency),
        )
        for g in groups
        if draw(st.booleans()) or g == "sg0"
    )
    tax_included = draw(st.booleans())
    partial = OrderMoney(currency, tuple(lines), shipping, tax_included=tax_included)
    tenders = draw(st.integers(1, 3))
    weights = [draw(st.integers(0, 10)) for _ in range(tenders)]
    parts = allocate(partial.total, weights, currency)
    methods = ["creditCard", "giftCard", "tokenizedCreditCard"]
    payments = tuple(PaymentShare(f"pg{k}", methods[k], part) for k, part in enumerate(parts))
    return OrderMoney(currency, tuple(lines), shipping, payments, tax_included)


@st.composite
def return_sequences(draw: st.DrawFn, money: OrderMoney) -> list[dict[str, int]]:
    """Partial returns, each a non-empty selection, that together return every unit."""
    left = {ln.commerce_item_id: ln.quantity for ln in money.lines}
    steps: list[dict[str, int]] = []
    while any(left.values()):
        open_lines = [i for i, q in left.items() if q]
        chosen = draw(st.lists(st.sampled_from(open_lines), min_size=1, unique=True))
        step = {i: draw(st.integers(1, left[i])) for i in chosen}
        for i, q in step.items():
            left[i] -= q
        steps.append(step)
    return steps


def assert_quantized(value: Decimal, currency: str) -> None:
    assert value == quantize(value, currency)
    assert value.as_tuple().exponent == -digits(currency), value


def all_amounts(calc: RefundCalculation) -> list[Decimal]:
    values = [
        calc.item_total,
        calc.tax_total,
        calc.shipping_total,
        calc.shipping_tax_total,
        calc.surcharge_total,
        calc.fee,
        calc.refund_total,
        calc.unallocated,
    ]
    for item in calc.items:
        values += [item.amount, item.tax, item.shipping, item.shipping_tax, item.surcharge]
    values += [p.amount for p in calc.payments]
    return values


@settings(max_examples=300, deadline=None)
@given(data=st.data(), refund_shipping=st.sampled_from(["never", "when_group_fully_returned", "always"]))
def test_partial_returns_add_up_to_exactly_what_was_paid(
    data: st.DataObject, refund_shipping: RefundShipping
) -> None:
    money = data.draw(orders())
    steps = data.draw(return_sequences(money))
    policy = RefundPolicy(refund_shipping=refund_shipping, manual_refund_payment_methods=frozenset())
    cur = money.currency
    returned: dict[str, int] = defaultdict(int)
    credited: dict[str, Decimal] = defaultdict(Decimal)
    item_sum: dict[str, Decimal] = defaultdict(Decimal)
    tax_sum: dict[str, Decimal] = defaultdict(Decimal)
    ship_sum: dict[str, Decimal] = defaultdict(Decimal)
    ship_tax_sum: dict[str, Decimal] = defaultdict(Decimal)
    surcharge_sum: dict[str, Decimal] = defaultdict(Decimal)
    lines = {ln.commerce_item_id: ln for ln in money.lines}
    charges = {c.shipping_group_id: c.amount + c.tax for c in money.shipping}

    for step in steps:
        calc = calculate_refund(money, ReturnSelection(step, dict(returned), dict(credited)), policy)
        for value in all_amounts(calc):
            assert_quantized(value, cur)
            assert value >= 0
        assert sum((i.amount for i in calc.items), Decimal(0)) == calc.item_total
        assert sum((i.tax for i in calc.items), Decimal(0)) == calc.tax_total
        assert sum((i.shipping for i in calc.items), Decimal(0)) == calc.shipping_total
        assert sum((i.shipping_tax for i in calc.items), Decimal(0)) == calc.shipping_tax_total
        assert sum((i.surcharge for i in calc.items), Decimal(0)) == calc.surcharge_total
        tax = Decimal(0) if money.tax_included else calc.tax_total
        assert calc.refund_total == (calc.item_total + tax + calc.shipping_total + calc.surcharge_total)
        assert calc.refund_total == sum((i.total for i in calc.items), Decimal(0))
        assert sum((p.amount for p in calc.payments), Decimal(0)) == calc.refund_total
        assert calc.unallocated == 0 and not calc.requires_manual
        assert {i.commerce_item_id: i.quantity for i in calc.items} == step
        remaining = {p.payment_group_id: p.amount - credited[p.payment_group_id] for p in money.payments}
        for p in calc.payments:
            assert p.amount <= remaining[p.payment_group_id]
            credited[p.payment_group_id] += p.amount
        for item in calc.items:
            line = lines[item.commerce_item_id]
            returned[item.commerce_item_id] += item.quantity
            item_sum[item.commerce_item_id] += item.amount
            tax_sum[item.commerce_item_id] += item.tax
            ship_sum[line.shipping_group_id] += item.shipping
            ship_tax_sum[line.shipping_group_id] += item.shipping_tax
            surcharge_sum[item.commerce_item_id] += item.surcharge
            assert item_sum[item.commerce_item_id] <= line.net
            assert tax_sum[item.commerce_item_id] <= line.tax
            assert ship_sum[line.shipping_group_id] <= charges.get(line.shipping_group_id, 0)
        assert RefundCalculation.from_primitive(calc.to_primitive()) == calc

    for ident, line in lines.items():
        assert item_sum[ident] == line.net
        assert tax_sum[ident] == line.tax
        assert surcharge_sum[ident] == line.surcharge
    shipped_groups = {ln.shipping_group_id for ln in money.lines}
    for group, charge in charges.items():
        expected = charge if refund_shipping != "never" and group in shipped_groups else 0
        assert ship_sum[group] == expected
    taxes = {c.shipping_group_id: c.tax for c in money.shipping}
    for group, tax_paid in taxes.items():
        expected = tax_paid if refund_shipping != "never" and group in shipped_groups else 0
        assert ship_tax_sum[group] == expected, "shipping tax refunded once, separately"
    total_refunded = sum(credited.values(), Decimal(0))
    expected_total = sum((money.line_paid(ln) for ln in money.lines), Decimal(0)) + sum(
        (charges[g] for g in shipped_groups if g in charges and refund_shipping != "never"),
        Decimal(0),
    )
    assert total_refunded == expected_total


@settings(max_examples=200, deadline=None)
@given(
    money=orders(),
    credited_fraction=st.lists(st.integers(0, 120), min_size=3, max_size=3),
    percent=st.integers(0, 100),
)
def test_payment_allocation_never_exceeds_what_a_group_can_take(
    money: OrderMoney, credited_fraction: list[int], percent: int
) -> None:
    cur = money.currency
    already = {
        p.payment_group_id: quantize(p.amount * credited_fraction[k] / 100, cur)
        for k, p in enumerate(money.payments)
    }
    selection = ReturnSelection(
        {ln.commerce_item_id: ln.quantity for ln in money.lines}, already_credited=already
    )
    policy = RefundPolicy(refund_shipping="always", return_fee=ReturnFee(percent=D(percent)))
    calc = calculate_refund(money, selection, policy)
    room = {p.payment_group_id: max(D(0), p.amount - already[p.payment_group_id]) for p in money.payments}
    for p in calc.payments:
        assert_quantized(p.amount, cur)
        assert 0 <= p.amount <= room[p.payment_group_id]
    assert sum((p.amount for p in calc.payments), D(0)) + calc.unallocated == calc.refund_total
    assert calc.requires_manual == (calc.unallocated > 0)
    assert calc.refund_total >= 0
    assert calc.fee <= calc.item_total + calc.tax_total + calc.shipping_total + calc.surcharge_total


@settings(max_examples=300, deadline=None)
@given(
    currency=st.sampled_from(CURRENCIES),
    units=st.integers(0, 10**9),
    weights=st.lists(st.integers(0, 10**6), min_size=1, max_size=8),
)
def test_allocate_sums_exactly_and_stays_within_one_unit(
    currency: str, units: int, weights: list[int]
) -> None:
    total = money_of(units, currency)
    shares = allocate(total, weights, currency)
    assert sum(shares, Decimal(0)) == total
    unit = Decimal(1).scaleb(-digits(currency))
    effective = weights if sum(weights) else [1] * len(weights)
    for share, weight in zip(shares, effective, strict=True):
        assert_quantized(share, currency)
        exact = total * Decimal(weight) / Decimal(sum(effective))
        assert abs(share - exact) < unit
    assert allocate(total, weights, currency) == shares


def test_primitive_is_json_friendly() -> None:
    import json

    calc = calculate_refund(seed_order(), ReturnSelection({JACKET: 1}), RefundPolicy())
    text = json.dumps(calc.to_primitive(), sort_keys=True)
    loaded: dict[str, Any] = json.loads(text)
    assert RefundCalculation.from_primitive(loaded) == calc


def test_tax_inclusive_prices_refund_the_price_and_report_the_tax_inside() -> None:
    """VAT sites (isTaxIncluded): the amount holds the tax, so the tax is not added on top."""
    money = OrderMoney(
        "EUR",
        (OrderLine("ci1", "sg1", 2, D("120.00"), tax=D("20.00")),),
        payments=(PaymentShare("pg1", "creditCard", D("120.00")),),
        tax_included=True,
    )
    calc = calculate_refund(money, ReturnSelection({"ci1": 1}), RefundPolicy(refund_shipping="never"))
    assert (calc.item_total, calc.tax_total, calc.refund_total) == (D("60.00"), D("10.00"), D("60.00"))
    assert calc.items[0].total == D("60.00")
    assert RefundCalculation.from_primitive(calc.to_primitive()) == calc


def test_shipping_surcharge_is_refunded_per_unit_and_shipping_tax_apart() -> None:
    money = OrderMoney(
        "USD",
        (OrderLine("ci1", "sg1", 3, D("90.00"), tax=D("5.63"), surcharge=D("10.00")),),
        (ShippingCharge("sg1", D("25.00"), D("1.56")),),
        (PaymentShare("pg1", "creditCard", D("200.00")),),
    )
    policy = RefundPolicy(refund_shipping="always")
    first = calculate_refund(money, ReturnSelection({"ci1": 2}), policy)
    assert (first.surcharge_total, first.items[0].surcharge) == (D("6.67"), D("6.67"))
    assert (first.shipping_total, first.shipping_tax_total) == (D("17.71"), D("1.04"))
    assert first.refund_total == D("60.00") + D("3.75") + D("17.71") + D("6.67")
    rest = calculate_refund(money, ReturnSelection({"ci1": 1}, {"ci1": 2}), policy)
    assert first.surcharge_total + rest.surcharge_total == D("10.00")
    assert first.refund_total + rest.refund_total == money.total
