"""Return policy: defaults, TOML parsing, and the eligibility table."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.policy import (
    ItemFacts,
    ItemVerdict,
    Kind,
    NonReturnableReason,
    PolicyError,
    ReturnPolicy,
    evaluate_item,
    not_found,
    parse_return_fee,
    verdicts_hold_until,
)
from domain.refunds import ReturnFee

R = NonReturnableReason


def test_defaults() -> None:
    policy = ReturnPolicy()
    assert policy.return_window_days == 30
    assert policy.exchange_window_days == 30
    assert policy.nonreturnable_skus == frozenset()
    assert policy.nonreturnable_products == frozenset()
    assert policy.require_shipped is True
    assert policy.refund_shipping == "when_group_fully_returned"
    assert policy.return_fee is None
    assert policy.manual_refund_payment_methods == {"invoice", "cash"}
    assert ReturnPolicy.from_toml_text("") == policy


def test_full_toml() -> None:
    policy = ReturnPolicy.from_toml_text(
        """
        return_window_days = 14
        exchange_window_days = 60
        nonreturnable_skus = ["sku-final-1", "sku-final-2"]
        nonreturnable_products = ["prod-gift-card"]
        require_shipped = false
        refund_shipping = "always"
        return_fee = "4.95"
        manual_refund_payment_methods = ["invoice"]
        """
    )
    assert policy == ReturnPolicy(
        return_window_days=14,
        exchange_window_days=60,
        nonreturnable_skus=frozenset({"sku-final-1", "sku-final-2"}),
        nonreturnable_products=frozenset({"prod-gift-card"}),
        require_shipped=False,
        refund_shipping="always",
        return_fee=ReturnFee(amount=Decimal("4.95")),
        manual_refund_payment_methods=frozenset({"invoice"}),
    )
    assert ReturnPolicy.from_mapping(policy.to_mapping()) == policy


@pytest.mark.parametrize(
    ("text", "fee"),
    [
        ('"5.00"', ReturnFee(amount=Decimal("5.00"))),
        ("5", ReturnFee(amount=Decimal("5"))),
        ('"10%"', ReturnFee(percent=Decimal("10"))),
        ('"12.5 %"', ReturnFee(percent=Decimal("12.5"))),
        ('"100%"', ReturnFee(percent=Decimal("100"))),
        ('"0"', None),
        ('"0%"', None),
    ],
)
def test_return_fee_amount_or_percent(text: str, fee: ReturnFee | None) -> None:
    policy = ReturnPolicy.from_toml_text(f"return_fee = {text}")
    assert policy.return_fee == fee
    assert ReturnPolicy.from_mapping(policy.to_mapping()) == policy


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("return_windows_days = 14", "unknown policy key 'return_windows_days'"),
        ("[policy]\nreturn_window_days = 14", "unknown policy key 'policy'"),
        ("b = 1\na = 2", "unknown policy key 'a' (and 'b')"),
        ('return_window_days = "30"', "return_window_days must be a whole number"),
        ("return_window_days = 30.5", "return_window_days must be a whole number"),
        ("return_window_days = true", "return_window_days must be a whole number"),
        ("exchange_window_days = -1", "exchange_window_days must not be negative"),
        ('nonreturnable_skus = "sku1"', "nonreturnable_skus must be a list of strings"),
        ("nonreturnable_products = [1, 2]", "nonreturnable_products must contain only"),
        ('require_shipped = "yes"', "require_shipped must be true or false"),
        ('refund_shipping = "sometimes"', "refund_shipping must be one of never"),
        ("return_fee = 5.5", "return_fee must be a string"),
        ('return_fee = "five"', "return_fee must look like"),
        ('return_fee = "-1"', "non-negative"),
        ('return_fee = "150%"', "at most 100%"),
        ('manual_refund_payment_methods = ["invoice", ""]', "non-empty strings"),
        ("return_window_days = ", "not valid TOML"),
        ('issue_rma_on = ["Submit_Refund"]', "unknown context 'Submit_Refund'"),
        ('issue_rma_on = "Submit_Return"', "issue_rma_on must be a list of strings"),
        ("rma_prefix = 7", "rma_prefix must be a string"),
        ('return_label_url = "https://l.test/{tracking}"', "unknown placeholder {tracking}"),
        ('return_label_url = "https://l.test/{rma"', "not a valid template"),
    ],
)
def test_bad_toml_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        ReturnPolicy.from_toml_text(text)
    assert message in str(caught.value)


def test_direct_construction_is_checked_too() -> None:
    with pytest.raises(PolicyError):
        ReturnPolicy(refund_shipping="sometimes")  # type: ignore[arg-type]
    with pytest.raises(PolicyError):
        ReturnPolicy(nonreturnable_skus={"a"})  # type: ignore[arg-type]


def test_authorization_keys_round_trip_and_issue_labels() -> None:
    policy = ReturnPolicy.from_toml_text(
        'issue_rma_on = ["Submit_Return"]\nrma_prefix = "WH-"\n'
        'return_label_url = "https://labels.test/{order_id}/{rma}.pdf"\n'
    )
    assert ReturnPolicy.from_mapping(policy.to_mapping()) == policy
    assert policy.return_authorization("Submit_Return", "o1", None, 3) == (
        "WH-o1-3",
        "https://labels.test/o1/WH-o1-3.pdf",
    )
    assert policy.return_authorization("Submit_Return", "o1", "r7", 3) == (
        "WH-r7",
        "https://labels.test/o1/WH-r7.pdf",
    )
    assert policy.return_authorization("Initiate_Return", "o1", None, 1) is None
    assert ReturnPolicy().return_authorization("Submit_Return", "o1", None, 1) is None


def test_parse_return_fee_passes_fees_through() -> None:
    fee = ReturnFee(percent=Decimal("5"))
    assert parse_return_fee(fee) is fee
    assert parse_return_fee(None) is None


SHIPPED = datetime(2026, 1, 1, 15, 30, tzinfo=UTC)
SUBMITTED = datetime(2025, 12, 19, 9, 0, tzinfo=UTC)
BASE = ItemFacts(
    sku="sku40139",
    product_id="prod20012",
    quantity_ordered=2,
    quantity_shipped=2,
    quantity_returned=0,
    quantity_in_open_returns=0,
    ship_date=SHIPPED,
    submitted_date=SUBMITTED,
)
DEFAULT = ReturnPolicy()
FINAL_SKU = ReturnPolicy(nonreturnable_skus=frozenset({"sku40139"}))
FINAL_PRODUCT = ReturnPolicy(nonreturnable_products=frozenset({"prod20012"}))
ANY_TIME_SHIPPED_OR_NOT = ReturnPolicy(require_shipped=False)
SHORT_EXCHANGE = ReturnPolicy(return_window_days=30, exchange_window_days=7)


def on(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


# (case, policy, changes to BASE, now, kind, returnable, reason, quantity available, text)
ELIGIBILITY: list[tuple[str, ReturnPolicy, dict[str, Any], str, Kind, bool, R | None, int, str]] = [
    (
        "eligible",
        DEFAULT,
        {},
        "2026-01-10",
        "return",
        True,
        None,
        2,
        "2 of 2 can be returned until 2026-01-31",
    ),
    (
        "last day of the window counts",
        DEFAULT,
        {},
        "2026-01-31T23:59:59",
        "return",
        True,
        None,
        2,
        "2 of 2 can be returned until 2026-01-31",
    ),
    (
        "window expired from ship date",
        DEFAULT,
        {},
        "2026-02-01",
        "return",
        False,
        R.RETURN_WINDOW_EXPIRED,
        0,
        "Return window of 30 days ended on 2026-01-31",
    ),
    (
        "window counted from submitted date without a ship date",
        DEFAULT,
        {"ship_date": None},
        "2026-01-19T10:00",
        "return",
        False,
        R.RETURN_WINDOW_EXPIRED,
        0,
        "Return window of 30 days ended on 2026-01-18",
    ),
    (
        "submitted date fallback still open",
        DEFAULT,
        {"ship_date": None},
        "2026-01-18",
        "return",
        True,
        None,
        2,
        "2 of 2 can be returned until 2026-01-18",
    ),
    (
        "no date at all",
        DEFAULT,
        {"ship_date": None, "submitted_date": None},
        "2026-01-02",
        "return",
        False,
        R.OTHER,
        0,
        "No ship or order date to count the 30-day return window from",
    ),
    (
        "final sale by sku",
        FINAL_SKU,
        {},
        "2026-01-10",
        "return",
        False,
        R.FINAL_SALE,
        0,
        "SKU sku40139 is final sale",
    ),
    (
        "final sale by product",
        FINAL_PRODUCT,
        {},
        "2026-01-10",
        "return",
        False,
        R.FINAL_SALE,
        0,
        "Product prod20012 is final sale",
    ),
    (
        "final sale wins over an expired window",
        FINAL_SKU,
        {},
        "2027-01-01",
        "return",
        False,
        R.FINAL_SALE,
        0,
        "SKU sku40139 is final sale",
    ),
    (
        "already returned",
        DEFAULT,
        {"quantity_returned": 2},
        "2026-01-10",
        "return",
        False,
        R.ALREADY_RETURNED,
        0,
        "All 2 units already returned or in an open return",
    ),
    (
        "rest is in an open return",
        DEFAULT,
        {"quantity_returned": 1, "quantity_in_open_returns": 1},
        "2026-01-10",
        "return",
        False,
        R.ALREADY_RETURNED,
        0,
        "All 2 units already returned or in an open return",
    ),
    (
        "expired wins over already returned",
        DEFAULT,
        {"quantity_returned": 2},
        "2026-03-01",
        "return",
        False,
        R.RETURN_WINDOW_EXPIRED,
        0,
        "Return window of 30 days ended on 2026-01-31",
    ),
    (
        "partially returned",
        DEFAULT,
        {"quantity_ordered": 5, "quantity_shipped": 4, "quantity_returned": 1, "quantity_in_open_returns": 1},
        "2026-01-10",
        "return",
        True,
        None,
        2,
        "2 of 4 can be returned until 2026-01-31",
    ),
    (
        "unshipped",
        DEFAULT,
        {"quantity_shipped": 0, "ship_date": None},
        "2026-01-10",
        "return",
        False,
        R.UNFULFILLED,
        0,
        "Nothing of this item has shipped yet",
    ),
    (
        "unfulfilled wins over an expired window",
        DEFAULT,
        {"quantity_shipped": 0},
        "2027-01-01",
        "return",
        False,
        R.UNFULFILLED,
        0,
        "Nothing of this item has shipped yet",
    ),
    (
        "require_shipped=False counts ordered units",
        ANY_TIME_SHIPPED_OR_NOT,
        {"quantity_ordered": 3, "quantity_shipped": 0, "ship_date": None},
        "2026-01-10",
        "return",
        True,
        None,
        3,
        "3 of 3 can be returned until 2026-01-18",
    ),
    (
        "require_shipped=False still honours the window",
        ANY_TIME_SHIPPED_OR_NOT,
        {"quantity_shipped": 0, "ship_date": None},
        "2026-02-10",
        "return",
        False,
        R.RETURN_WINDOW_EXPIRED,
        0,
        "Return window of 30 days ended on 2026-01-18",
    ),
    (
        "exchange window shorter than return window",
        SHORT_EXCHANGE,
        {},
        "2026-01-09",
        "exchange",
        False,
        R.RETURN_WINDOW_EXPIRED,
        0,
        "Exchange window of 7 days ended on 2026-01-08",
    ),
    (
        "same day is a return",
        SHORT_EXCHANGE,
        {},
        "2026-01-09",
        "return",
        True,
        None,
        2,
        "2 of 2 can be returned until 2026-01-31",
    ),
    (
        "exchange within its window",
        SHORT_EXCHANGE,
        {},
        "2026-01-08",
        "exchange",
        True,
        None,
        2,
        "2 of 2 can be exchanged until 2026-01-08",
    ),
]


@pytest.mark.parametrize(
    ("policy", "changes", "now", "kind", "returnable", "reason", "available", "text"),
    [case[1:] for case in ELIGIBILITY],
    ids=[case[0] for case in ELIGIBILITY],
)
def test_eligibility(
    policy: ReturnPolicy,
    changes: dict[str, Any],
    now: str,
    kind: Kind,
    returnable: bool,
    reason: R | None,
    available: int,
    text: str,
) -> None:
    verdict = evaluate_item(policy, replace(BASE, **changes), on(now), kind)
    assert verdict == ItemVerdict(returnable, reason, text, available)


def test_window_is_counted_in_utc_calendar_days() -> None:
    early_morning_in_tokyo = datetime(2026, 1, 2, 1, 0, tzinfo=timezone(timedelta(hours=9)))
    facts = replace(BASE, ship_date=early_morning_in_tokyo)
    verdict = evaluate_item(DEFAULT, facts, on("2026-02-01"), "return")
    assert verdict.reason is R.RETURN_WINDOW_EXPIRED
    assert verdict.text == "Return window of 30 days ended on 2026-01-31"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        replace(BASE, ship_date=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate_item(DEFAULT, BASE, datetime(2026, 1, 10), "return")


def test_bad_kind_and_quantities_are_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        evaluate_item(DEFAULT, BASE, on("2026-01-10"), "refund")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="quantity_shipped"):
        replace(BASE, quantity_shipped=-1)


def test_not_found() -> None:
    assert not_found("ci9") == ItemVerdict(False, R.NOT_FOUND, "Item ci9 is not in this order", 0)


def test_reasons_are_the_commerce_vocabulary() -> None:
    assert [r.value for r in NonReturnableReason] == [
        "RETURN_WINDOW_EXPIRED",
        "FINAL_SALE",
        "ALREADY_RETURNED",
        "UNFULFILLED",
        "NOT_FOUND",
        "OTHER",
    ]


MOMENTS = st.datetimes(
    min_value=datetime(2025, 12, 1),
    max_value=datetime(2026, 3, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-8)), timezone(timedelta(hours=9))]),
)


@given(
    now=MOMENTS,
    later=st.floats(min_value=0, max_value=1),
    shipped=MOMENTS,
    kind=st.sampled_from(["return", "exchange"]),
)
def test_verdicts_hold_until_the_next_utc_midnight(
    now: datetime, later: float, shipped: datetime, kind: Kind
) -> None:
    """What lets a remembered validation answer be given again until then."""
    until = verdicts_hold_until(now)
    assert until > now and until - now <= timedelta(days=1)
    assert (until.hour, until.minute, until.second, until.microsecond) == (0, 0, 0, 0)
    facts = replace(BASE, ship_date=shipped)
    moment = now + (until - now - timedelta(microseconds=1)) * later
    assert evaluate_item(SHORT_EXCHANGE, facts, moment, kind) == evaluate_item(
        SHORT_EXCHANGE, facts, now, kind
    )


def test_a_verdict_can_change_at_that_midnight() -> None:
    last_moment = on("2026-01-31T23:59:59.999999")
    assert verdicts_hold_until(last_moment) == on("2026-02-01")
    assert evaluate_item(DEFAULT, BASE, last_moment, "return").returnable
    assert not evaluate_item(DEFAULT, BASE, verdicts_hold_until(last_moment), "return").returnable
