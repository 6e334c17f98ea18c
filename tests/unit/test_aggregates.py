"""Aggregates: deterministic ids, transitions as events, refusals that record nothing, replay."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from domain.identity import order_uuid, return_uuid
from domain.orders import Order
from domain.returns import ReturnRequest
from service.store import EventStore


def order_snapshot(state: str = "SUBMITTED") -> dict[str, Any]:
    return {
        "id": "o1",
        "state": state,
        "currency": "USD",
        "commerceItems": [],
        "shippingGroups": [],
        "paymentGroups": [],
        "priceInfo": {},
    }


def return_snapshot(
    state: str = "PENDING_CUSTOMER_ACTION", received: int = 0, item_state: str = "AWAITING_RETURN"
) -> dict[str, Any]:
    return {
        "id": "r1",
        "orderId": "o1",
        "processName": "Return",
        "state": state,
        "returnItemList": [
            {
                "returnItemId": "ri1",
                "commerceItemId": "ci1",
                "state": item_state,
                "quantityToReturn": 2,
                "quantityReceived": received,
                "returnShipmentRequired": True,
            },
        ],
        "refund": {"totalRefundAmount": "10.00"},
        "details": {},
    }


def new_return(**kw: Any) -> ReturnRequest:
    return ReturnRequest.receive_request(
        return_snapshot(**kw),
        version_key=1,
        fingerprint="f1",
        actor="commerce-webhook",
        cause="sha256:a",
    )


def test_ids_are_derived_from_commerce_ids() -> None:
    order = Order.submit(
        order_snapshot(),
        last_modified=1,
        fingerprint="f",
        origin="order-submit",
        actor="commerce-webhook",
        cause="c",
    )
    assert order.id == order_uuid("o1")
    assert new_return().id == return_uuid("r1")


def test_duplicate_creation_collides_in_the_store() -> None:
    store = EventStore(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    store.save(new_return())
    with pytest.raises(IntegrityError):
        store.save(new_return())


def test_creation_event_carries_the_audit_fields() -> None:
    ret = new_return()
    (event,) = ret.collect_events()
    assert (event.trigger, event.source, event.target) == ("request", None, "PENDING_CUSTOMER_ACTION")
    assert (event.actor, event.cause) == ("commerce-webhook", "sha256:a")
    assert event.timestamp.tzinfo is not None and event.timestamp.utcoffset().total_seconds() == 0


def test_commerce_update_is_one_event_with_item_and_return_steps() -> None:
    ret = new_return()
    ret.collect_events()
    outcome = ret.apply_commerce_update(
        return_snapshot(state="PARTIAL_RETURN", received=1, item_state="PARTIAL_RETURN"),
        version_key=2,
        fingerprint="f2",
        actor="commerce-webhook",
        cause="sha256:b",
    )
    (event,) = ret.collect_events()
    assert outcome == "updated"
    assert (event.trigger, event.source, event.target) == (
        "receive",
        "PENDING_CUSTOMER_ACTION",
        "PARTIAL_RETURN",
    )
    assert event.item_steps == [
        {
            "returnItemId": "ri1",
            "trigger": "receive",
            "from": "AWAITING_RETURN",
            "to": "PARTIAL_RETURN",
            "quantityReceived": 1,
        }
    ]
    assert ret.state == "PARTIAL_RETURN"


@pytest.mark.parametrize(
    ("fingerprint", "version_key", "expected"),
    [("f1", 5, "duplicate"), ("f-other", 0, "stale")],
)
def test_duplicates_and_stale_updates_record_nothing(
    fingerprint: str, version_key: int, expected: str
) -> None:
    ret = new_return()
    ret.collect_events()
    outcome = ret.apply_commerce_update(
        return_snapshot(state="PARTIAL_RETURN", received=1, item_state="PARTIAL_RETURN"),
        version_key=version_key,
        fingerprint=fingerprint,
        actor="a",
        cause="c",
    )
    assert outcome == expected
    assert ret.collect_events() == []
    assert ret.state == "PENDING_CUSTOMER_ACTION"


def test_state_commerce_cannot_reach_is_recorded_as_its_override() -> None:
    """SPEC 4, "Commerce's word stands": refusing would lose the update after five retries."""
    ret = new_return(state="PARTIAL_RETURN", received=1, item_state="PARTIAL_RETURN")
    ret.collect_events()
    outcome = ret.apply_commerce_update(
        return_snapshot(state="PENDING_CUSTOMER_ACTION", received=1, item_state="PARTIAL_RETURN"),
        version_key=2,
        fingerprint="f2",
        actor="a",
        cause="c",
    )
    (event,) = ret.collect_events()
    assert outcome == "overridden"
    assert type(event).__qualname__ == "ReturnRequest.CommerceOverridden"
    assert (event.trigger, event.source, event.target) == (
        "commerce_override",
        "PARTIAL_RETURN",
        "PENDING_CUSTOMER_ACTION",
    )
    assert "PARTIAL_RETURN" in event.reason and "would not make" in event.reason
    assert ret.state == "PENDING_CUSTOMER_ACTION"


def test_full_return_without_every_item_received_is_an_override() -> None:
    ret = new_return()
    ret.collect_events()
    outcome = ret.apply_commerce_update(
        return_snapshot(state="FULL_RETURN", received=1, item_state="PARTIAL_RETURN"),
        version_key=2,
        fingerprint="f2",
        actor="a",
        cause="c",
    )
    assert outcome == "overridden"
    assert ret.state == "FULL_RETURN"


def test_received_quantity_going_down_is_an_override() -> None:
    ret = new_return(state="PARTIAL_RETURN", received=1, item_state="PARTIAL_RETURN")
    ret.collect_events()
    outcome = ret.apply_commerce_update(
        return_snapshot(state="PARTIAL_RETURN", received=0, item_state="PARTIAL_RETURN"),
        version_key=2,
        fingerprint="f2",
        actor="a",
        cause="c",
    )
    (event,) = ret.collect_events()
    assert outcome == "overridden"
    assert "quantity received cannot go down" in event.reason
    assert ret.items[0]["quantityReceived"] == 0


def test_an_update_that_omits_the_rma_keeps_the_one_returnflow_issued() -> None:
    ret = new_return()
    ret.authorize(
        rma="RMA-1",
        tracking_number=None,
        return_label=None,
        shipment_required=None,
        actor="operator:a",
        cause="c",
    )
    ret.apply_commerce_update(return_snapshot(), version_key=2, fingerprint="f2", actor="a", cause="c")
    assert ret.details["rma"] == "RMA-1"


def test_replaying_the_same_events_yields_the_same_state() -> None:
    store = EventStore(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    ret = new_return()
    ret.apply_commerce_update(
        return_snapshot(state="PARTIAL_RETURN", received=1, item_state="PARTIAL_RETURN"),
        version_key=2,
        fingerprint="f2",
        actor="a",
        cause="c",
    )
    ret.apply_commerce_update(
        return_snapshot(state="FULL_RETURN", received=2, item_state="RETURNED"),
        version_key=3,
        fingerprint="f3",
        actor="a",
        cause="c",
    )
    store.save(ret)
    expected = copy.deepcopy(ret.__dict__)
    for _ in range(2):
        replayed = store.repository.get(ret.id)
        assert replayed.__dict__ == expected
    assert store.repository.get(ret.id, version=2).state == "PARTIAL_RETURN"


def test_order_refresh_only_for_newer_different_snapshots() -> None:
    order = Order.submit(
        order_snapshot(), last_modified=10, fingerprint="f", origin="order-submit", actor="a", cause="c"
    )
    order.collect_events()
    assert not order.refresh_from_commerce(
        order_snapshot("PROCESSING"), last_modified=9, fingerprint="g", actor="a", cause="c"
    )
    assert not order.refresh_from_commerce(
        order_snapshot(), last_modified=11, fingerprint="f", actor="a", cause="c"
    )
    assert order.refresh_from_commerce(
        order_snapshot("PROCESSING"), last_modified=11, fingerprint="g", actor="a", cause="c"
    )
    (event,) = order.collect_events()
    assert (event.source, event.target) == ("SUBMITTED", "PROCESSING")


def test_an_rma_answered_for_a_named_return_is_remembered_by_the_order() -> None:
    """So a Return Request Update keyed by that RMA is found to be the same return."""
    order = Order.submit(
        order_snapshot(),
        last_modified=1,
        fingerprint="f",
        origin="order-submit",
        actor="commerce-webhook",
        cause="c",
    )
    order.record_validation(
        context="Initiate_Return",
        facts={},
        answer={"rma": "RMA-r1", "returnId": "r1"},
        answer_fingerprint="a",
        refund_quote=None,
        actor="commerce-webhook",
        cause="c",
    )
    assert order.issued_rmas == {"RMA-r1": "r1"}


def test_credits_are_commerces_report_plus_ours_since() -> None:
    snapshot = order_snapshot()
    snapshot["paymentGroups"] = [
        {"id": "pg1", "paymentMethod": "card", "amount": "100.00", "amountCredited": "5.00"}
    ]
    order = Order.submit(
        snapshot, last_modified=1, fingerprint="f", origin="order-submit", actor="commerce-webhook", cause="c"
    )
    order.credit({"pg1": "10.00"}, return_id="r1", actor="operator:a", cause="c")
    assert order.amount_credited("pg1") == Decimal("15.00")
    unchanged = copy.deepcopy(snapshot) | {"state": "PROCESSING"}
    order.refresh_from_commerce(unchanged, last_modified=2, fingerprint="f2", actor="a", cause="c")
    assert order.amount_credited("pg1") == Decimal("15.00"), "a report of the old figure"
    reported = copy.deepcopy(snapshot)
    reported["paymentGroups"][0]["amountCredited"] = "15.00"
    order.refresh_from_commerce(reported, last_modified=3, fingerprint="f3", actor="a", cause="c")
    assert order.amount_credited("pg1") == Decimal("15.00"), "Commerce's figure holds ours now"
