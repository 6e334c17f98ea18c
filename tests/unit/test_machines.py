"""Every row of SPEC section 3's tables is allowed; every other (state, trigger) is refused."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from domain.machines import IllegalTransition, allowed_triggers, fire, states_of, triggers_to

ALL = {"all_received": True, "some_received": True}
SOME = {"some_received": True}
KNOWN = {"refund_known": True}
RECORDED = {"refund_recorded": True}

# (machine, trigger, source, facts, target): written from the SPEC, not read off the machines.
ALLOWED: list[tuple[str, str, str, dict[str, Any], str]] = [
    ("return", "receive", "PENDING_CUSTOMER_ACTION", SOME, "PARTIAL_RETURN"),
    ("return", "receive", "PARTIAL_RETURN", SOME, "PARTIAL_RETURN"),
    ("return", "receive", "PENDING_CUSTOMER_ACTION", ALL, "FULL_RETURN"),
    ("return", "receive", "PARTIAL_RETURN", ALL, "FULL_RETURN"),
    ("return", "initiate_refund", "FULL_RETURN", KNOWN, "PENDING_REFUND"),
    ("return", "initiate_refund", "PARTIAL_RETURN", KNOWN, "PENDING_REFUND"),
    (
        "return",
        "initiate_refund",
        "PENDING_CUSTOMER_ACTION",
        {**KNOWN, "nothing_to_ship": True},
        "PENDING_REFUND",
    ),
    ("return", "require_manual_refund", "PENDING_REFUND", {}, "MANUAL_REFUND"),
    ("return", "require_manual_refund", "FULL_RETURN", {}, "MANUAL_REFUND"),
    ("return", "require_manual_refund", "PARTIAL_RETURN", {}, "MANUAL_REFUND"),
    ("return", "settle_refund", "PENDING_REFUND", RECORDED, "COMPLETE"),
    ("return", "settle_refund", "MANUAL_REFUND", RECORDED, "COMPLETE"),
    ("return", "close_incomplete", "PENDING_CUSTOMER_ACTION", {}, "INCOMPLETE"),
    ("return", "close_incomplete", "PARTIAL_RETURN", {}, "INCOMPLETE"),
    # SPEC section 9: an exchange that credits nothing completes once its goods are all in.
    ("return", "complete_exchange", "FULL_RETURN", {"nothing_owed": True}, "COMPLETE"),
    ("return_item", "approve", "INITIAL", {"shipment_required": True}, "AWAITING_RETURN"),
    ("return_item", "approve", "INITIAL", {"shipment_required": False}, "RETURN_NOT_REQUIRED"),
    ("return_item", "receive", "AWAITING_RETURN", {}, "PARTIAL_RETURN"),
    ("return_item", "receive", "PARTIAL_RETURN", {}, "PARTIAL_RETURN"),
    ("return_item", "receive", "AWAITING_RETURN", {"fully_received": True}, "RETURNED"),
    ("return_item", "receive", "PARTIAL_RETURN", {"fully_received": True}, "RETURNED"),
]
LIFECYCLE_STATES = [
    "IDLE",
    "RETURN_INITIATED",
    "REFUND_CALCULATED",
    "RETURN_SUBMITTED",
    "EXCHANGE_INITIATED",
    "EXCHANGE_SUBMITTED",
    "EXCHANGE_PROCESSED",
]
ALLOWED += [("lifecycle", "initiate_return", s, {}, "RETURN_INITIATED") for s in LIFECYCLE_STATES]
ALLOWED += [("lifecycle", "initiate_exchange", s, {}, "EXCHANGE_INITIATED") for s in LIFECYCLE_STATES]
ALLOWED += [("lifecycle", "custom", s, {}, s) for s in LIFECYCLE_STATES]
ALLOWED += [
    ("lifecycle", "calculate_refund", "RETURN_INITIATED", {}, "REFUND_CALCULATED"),
    ("lifecycle", "calculate_refund", "REFUND_CALCULATED", {}, "REFUND_CALCULATED"),
    ("lifecycle", "submit_return", "REFUND_CALCULATED", {}, "RETURN_SUBMITTED"),
    ("lifecycle", "submit_return", "RETURN_SUBMITTED", {}, "RETURN_SUBMITTED"),
    ("lifecycle", "submit_exchange", "EXCHANGE_INITIATED", {}, "EXCHANGE_SUBMITTED"),
    ("lifecycle", "submit_exchange", "EXCHANGE_SUBMITTED", {}, "EXCHANGE_SUBMITTED"),
    ("lifecycle", "process_exchange", "EXCHANGE_SUBMITTED", {"goods_received": True}, "EXCHANGE_PROCESSED"),
    ("lifecycle", "process_exchange", "EXCHANGE_PROCESSED", {"goods_received": True}, "EXCHANGE_PROCESSED"),
]

TRIGGERS = {
    "return": [
        "receive",
        "initiate_refund",
        "require_manual_refund",
        "settle_refund",
        "close_incomplete",
        "complete_exchange",
    ],
    "return_item": ["approve", "receive"],
    "lifecycle": [
        "initiate_return",
        "calculate_refund",
        "submit_return",
        "custom",
        "initiate_exchange",
        "submit_exchange",
        "process_exchange",
    ],
}
STATES = {
    "return": [
        "PENDING_CUSTOMER_ACTION",
        "PARTIAL_RETURN",
        "FULL_RETURN",
        "PENDING_REFUND",
        "MANUAL_REFUND",
        "COMPLETE",
        "INCOMPLETE",
    ],
    "return_item": ["INITIAL", "AWAITING_RETURN", "RETURN_NOT_REQUIRED", "PARTIAL_RETURN", "RETURNED"],
    "lifecycle": LIFECYCLE_STATES,
}
EVERY_FACT = {
    "all_received": True,
    "some_received": True,
    "refund_known": True,
    "nothing_to_ship": True,
    "refund_recorded": True,
    "shipment_required": True,
    "fully_received": True,
    "goods_received": True,
    "nothing_owed": True,
}


@pytest.mark.parametrize("machine", sorted(STATES))
def test_machines_have_exactly_the_commerce_states(machine: str) -> None:
    assert states_of(machine) == STATES[machine]


@pytest.mark.parametrize(("machine", "trigger", "source", "facts", "target"), ALLOWED)
def test_allowed_transition(
    machine: str, trigger: str, source: str, facts: dict[str, Any], target: str
) -> None:
    step = fire(machine, source, trigger, **facts)
    assert (step.trigger, step.source, step.target) == (trigger, source, target)


ALLOWED_PAIRS = {(m, t, s) for m, t, s, _, _ in ALLOWED}
REFUSED = [
    (m, t, s)
    for m in STATES
    for t, s in itertools.product(TRIGGERS[m], STATES[m])
    if (m, t, s) not in ALLOWED_PAIRS
]


@pytest.mark.parametrize(("machine", "trigger", "source"), REFUSED)
def test_every_other_transition_is_refused(machine: str, trigger: str, source: str) -> None:
    with pytest.raises(IllegalTransition) as refused:
        fire(machine, source, trigger, **EVERY_FACT)
    assert refused.value.state == source
    assert trigger not in refused.value.allowed


@pytest.mark.parametrize(
    ("machine", "trigger", "source"),
    [
        ("return", "receive", "PENDING_CUSTOMER_ACTION"),
        ("return", "initiate_refund", "FULL_RETURN"),
        ("return", "initiate_refund", "PENDING_CUSTOMER_ACTION"),
        ("return", "settle_refund", "PENDING_REFUND"),
        ("lifecycle", "process_exchange", "EXCHANGE_SUBMITTED"),
        ("return", "complete_exchange", "FULL_RETURN"),
    ],
)
def test_false_guard_refuses(machine: str, trigger: str, source: str) -> None:
    """Without the facts its guard needs, a declared transition is refused too."""
    with pytest.raises(IllegalTransition):
        fire(machine, source, trigger)


def test_initiate_refund_from_pending_customer_action_needs_nothing_to_ship() -> None:
    with pytest.raises(IllegalTransition):
        fire("return", "PENDING_CUSTOMER_ACTION", "initiate_refund", refund_known=True)


def test_allowed_triggers_lists_what_may_happen_now() -> None:
    assert allowed_triggers("return", "PENDING_REFUND") == ["require_manual_refund", "settle_refund"]
    assert allowed_triggers("return", "COMPLETE") == []


def test_triggers_to_maps_a_reported_state_to_its_trigger() -> None:
    assert triggers_to("return", "FULL_RETURN", "PENDING_REFUND") == ["initiate_refund"]
    assert triggers_to("return", "COMPLETE", "PENDING_CUSTOMER_ACTION") == []
