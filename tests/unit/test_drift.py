"""How a difference between Commerce and Returnflow is judged, without Commerce (issue 16)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from projections.drift import (
    COMMERCE_OWNED,
    DRIFT,
    PENDING,
    Expected,
    Finding,
    Setter,
    compare,
    flatten,
    same,
)
from projections.reconcile import RateLimit
from projections.redrive import keep_theirs, repairs

CREDITED = Setter("Order.Credited", 5, "2026-01-01T00:00:00Z", "credit")
SUBMITTED = Setter("Order.Submitted", 1, "2026-01-01T00:00:00Z", "submit")


def order_expected(credited: str) -> Expected:
    view = {
        "id": "o1",
        "state": "NO_PENDING_ACTION",
        "shippingGroups": [],
        "paymentGroups": [{"id": "pg1", "amountCredited": credited}],
    }
    fields = {("state",): "NO_PENDING_ACTION", ("paymentGroups", "pg1", "amountCredited"): Decimal(credited)}
    setters = {("state",): SUBMITTED, ("paymentGroups", "pg1", "amountCredited"): CREDITED}
    return Expected("order", "o1", 5, view, fields, setters)


def held_order(credited: float) -> dict[str, object]:
    return {
        "id": "o1",
        "state": "NO_PENDING_ACTION",
        "paymentGroups": [{"id": "pg1", "amount": 100, "amountCredited": credited}],
    }


def test_numbers_compare_by_value_and_strings_exactly() -> None:
    assert same(Decimal("268.40"), 268.4)
    assert same(2, Decimal("2.0"))
    assert not same(Decimal("268.40"), 268.41)
    assert not same("COMPLETE", "complete")
    assert not same(None, 0)


def test_members_are_keyed_as_commerce_matches_them() -> None:
    held = {
        "returnItemList": [{"commerceItem": {"id": "ci1"}, "shippingGroupId": "sg1", "state": "RETURNED"}],
        "refundMethodList": [{"refundType": "manualRefund", "amount": 3}],
        "additionalProperties": {"x": "y"},
    }
    assert flatten(held) == {
        ("returnItemList", "ci1/sg1", "state"): "RETURNED",
        ("refundMethodList", "type:manualRefund", "amount"): 3,
    }


def test_a_missing_credit_is_drift_and_a_larger_one_is_commerces() -> None:
    never_pending = lambda want, setter: False  # noqa: E731
    (missing,) = compare(order_expected("50.00"), held_order(0), never_pending)
    assert (missing.verdict, missing.ours, missing.theirs) == (DRIFT, Decimal("50.00"), 0)
    (beyond,) = compare(order_expected("50.00"), held_order(55.0), never_pending)
    assert beyond.verdict == COMMERCE_OWNED


def test_drift_the_sync_has_still_to_send_is_pending_and_not_redriven() -> None:
    want = order_expected("50.00")
    (finding,) = compare(want, held_order(0), lambda w, setter: setter.version == 5)
    assert finding.verdict == PENDING
    assert repairs(want, [finding], "classic", held_order(0)) == []


def test_a_credit_repair_keeps_what_commerce_is_entitled_to() -> None:
    findings = [
        Finding("order", "o1", ("paymentGroups", "pg1", "amountCredited"), Decimal("50"), 0, DRIFT, CREDITED),
        Finding(
            "order",
            "o1",
            ("paymentGroups", "pg2", "amountCredited"),
            Decimal("1"),
            7.5,
            COMMERCE_OWNED,
            CREDITED,
        ),
    ]
    body = {
        "paymentGroups": [
            {"id": "pg1", "amountCredited": Decimal("50")},
            {"id": "pg2", "amountCredited": Decimal("1")},
        ]
    }
    assert keep_theirs(body, findings) == {
        "paymentGroups": [
            {"id": "pg1", "amountCredited": Decimal("50")},
            {"id": "pg2", "amountCredited": Decimal("7.5")},
        ]
    }


def test_the_rate_limit_spaces_acquisitions(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a clock of its own: what it waits is checked, not how long a busy machine took."""
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    async def acquire(rate: float, count: int) -> None:
        limit = RateLimit(rate, clock=lambda: now[0])
        for _ in range(count):
            await limit.acquire()

    monkeypatch.setattr(asyncio, "sleep", sleep)
    asyncio.run(acquire(50, 11))
    assert len(slept) == 10 and sum(slept) == pytest.approx(0.2), "ten gaps of 1/50 s"
    slept.clear()
    asyncio.run(acquire(0, 1000))
    assert slept == [], "rate 0: no limit, never a wait"
