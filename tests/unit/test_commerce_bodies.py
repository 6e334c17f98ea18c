"""Commerce bodies (SPEC section 4): only documented fields, Commerce's members kept, both flavours.

Each body is also checked against the simulator's allow-lists, which are written from the
seed documents rather than from these bodies.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from projections.commerce_bodies import (
    classic_body,
    commerce_calls,
    flavour_choice,
    refund_methods,
)
from projections.commerce_merge import return_onto_held
from tests.commerce_sim.server import ORDER_FIELDS, RETURN_REQUEST_FIELDS, apply_op, check_fields

D = Decimal

CALCULATION: dict[str, Any] = {
    "currency": "USD",
    "items": [
        {
            "commerce_item_id": "ci1",
            "shipping_group_id": "sg1",
            "quantity": 2,
            "amount": "60.00",
            "tax": "3.75",
            "shipping": "17.71",
            "shipping_tax": "1.04",
            "surcharge": "6.67",
            "total": "88.13",
        }
    ],
    "item_total": "60.00",
    "tax_total": "3.75",
    "shipping_total": "17.71",
    "shipping_tax_total": "1.04",
    "surcharge_total": "6.67",
    "fee": "0.00",
    "refund_total": "88.13",
    "unallocated": "0.00",
    "payments": [],
    "requires_manual": False,
    "manual_reasons": [],
    "tax_included": False,
}


def return_view(
    state: str = "PENDING_REFUND",
    methods: list[dict[str, Any]] | None = None,
    payments: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "id": "100003",
        "orderId": "o1",
        "state": state,
        "rma": "RMA-100003",
        "trackingNumber": "1Z9",
        "returnLabel": None,
        "returnItemList": [
            {
                "returnItemId": "ri1",
                "commerceItemId": "ci1",
                "shippingGroupId": "sg1",
                "state": "RETURNED",
                "quantityToReturn": 2,
                "quantityReceived": 2,
                "returnShipmentRequired": True,
                "returnReason": "defective",
                "comments": None,
                "disposition": "resell",
            }
        ],
        "refund": {
            "refundMethodList": methods
            if methods is not None
            else [
                {
                    "refundType": "manualRefund",
                    "paymentGroupId": None,
                    "state": "INCOMPLETE",
                    "amount": "80.41",
                    "maximumRefundAmount": "-1",
                }
            ]
        },
        "refundPlan": {
            "source": "calculated",
            "currency": "USD",
            "total": "88.13",
            "payments": payments or {"pg1": "88.13"},
            "calculation": CALCULATION,
        },
    }


def test_classic_body_has_only_the_documented_fields_and_identifies_items() -> None:
    """Issue 13 items 1, 3 and 5: items by commerceItemId + shippingGroupId, the RMA as
    authorizationNumber, shipping tax and surcharge apart, no derived totals."""
    body = classic_body(return_view())
    check_fields(body, RETURN_REQUEST_FIELDS)
    assert body["authorizationNumber"] == "RMA-100003" and "rma" not in body
    assert "totalRefundAmount" not in body
    (item,) = body["returnItemList"]
    assert item == {
        "commerceItemId": "ci1",
        "shippingGroupId": "sg1",
        "returnReason": "defective",
        "state": "RETURNED",
        "quantityReceived": 2,
        "refundAmount": D("60.00"),
        "actualTaxRefundShare": D("3.75"),
        "actualShippingRefundShare": D("16.67"),
        "actualShippingSurchargeRefundShare": D("6.67"),
    }
    assert (body["actualShippingRefund"], body["shippingTaxRefund"]) == (D("16.67"), D("1.04"))
    assert body["actualShippingSurchargeRefund"] == D("6.67")
    assert body["actualTaxRefund"] == D("3.75")


def test_refund_methods_are_commerces_own_with_only_amounts_changed() -> None:
    """Issue 13 item 2: the manualRefund method Commerce reported is kept, no invented type."""
    assert refund_methods(return_view()) == [
        {"refundType": "manualRefund", "state": "INCOMPLETE", "amount": D("88.13")}
    ]
    card_and_gift: list[dict[str, Any]] = [
        {"refundType": "creditCard", "paymentGroupId": "pg1", "state": "PENDING", "amount": "1"},
        {"refundType": "giftCard", "paymentGroupId": "pg2", "state": None, "amount": "0"},
    ]
    methods = refund_methods(return_view(methods=card_and_gift, payments={"pg1": "80.00", "pg2": "8.13"}))
    assert methods == [
        {"refundType": "creditCard", "state": "PENDING", "amount": D("1")},
        {"refundType": "giftCard", "amount": D("0")},
    ], "several methods, no documented field to split by: Commerce's split kept, no paymentGroupId"


def test_no_reported_methods_means_no_list_unless_a_person_must_refund() -> None:
    assert refund_methods(return_view(methods=[])) is None
    assert "refundMethodList" not in classic_body(return_view(methods=[]))
    assert refund_methods(return_view(state="MANUAL_REFUND", methods=[])) == [
        {"refundType": "manualRefund", "amount": D("88.13"), "state": "INCOMPLETE"}
    ]


def order_view() -> dict[str, Any]:
    return {
        "id": "o1",
        "state": "NO_PENDING_ACTION",
        "shippingGroups": [
            {
                "id": "sg1",
                "state": "NO_PENDING_ACTION",
                "trackingNumber": "1Z",
                "actualShipDate": "2026-11-01T00:00:00Z",
                "items": [],
            }
        ],
        "paymentGroups": [
            {"id": "pg1", "paymentMethod": "creditCard", "amount": "100.00", "amountCredited": "93.13"}
        ],
    }


def test_update_order_sends_only_what_the_event_changed() -> None:
    """Issue 13 item 4: a shipment sends no payment groups, a credit no state or shipping groups."""
    (shipped,) = commerce_calls("Order.Shipped", "ship", order_view())
    (credited,) = commerce_calls("Order.Credited", "credit", order_view())
    assert set(shipped.body) == {"state", "shippingGroups"}
    assert credited.body == {"paymentGroups": [{"id": "pg1", "amountCredited": D("93.13")}]}
    assert shipped.operation != credited.operation, "coalesced apart"
    for call in (shipped, credited):
        check_fields(copy.deepcopy(call.body), ORDER_FIELDS)


@pytest.mark.parametrize(
    ("event", "trigger", "ops"),
    [
        ("ReturnRequest.Authorized", "authorize", []),
        ("ReturnRequest.ItemsReceived", "receive", ["receiveReturns"]),
        ("ReturnRequest.RefundStep", "initiate_refund", ["adjustRefundAmounts", "initiateRefund"]),
        ("ReturnRequest.RefundStep", "require_manual_refund", ["markManualRefund"]),
        ("ReturnRequest.RefundSettled", "settle_refund", ["markAsComplete"]),
        ("ReturnRequest.Closed", "close_incomplete", []),
        ("Order.Credited", "credit", []),
    ],
)
def test_op_flavour_sends_the_documented_operations(event: str, trigger: str, ops: list[str]) -> None:
    """Issue 13 item 7: camelCase ops with that release's body; Commerce refunds itself, so
    no payment group credit goes out."""
    view = order_view() if event.startswith("Order.") else return_view()
    calls = commerce_calls(event, trigger, view, "op")
    assert [c.body["op"] for c in calls] == ops
    stored = {
        "state": "PENDING_CUSTOMER_ACTION",
        "returnItemList": [{"id": "ri1", "quantityToReturn": 2, "state": "AWAITING_RETURN"}],
    }
    for call in calls:
        stored = apply_op(stored, call.body)
    if ops[:1] == ["receiveReturns"]:
        assert calls[0].body["returnItems"] == [
            {"returnItemId": "ri1", "quantityReceived": 2, "dispositionReason": "resell"}
        ]
        assert stored["state"] == "FULL_RETURN"
    if "adjustRefundAmounts" in ops:
        assert calls[0].body == {
            "op": "adjustRefundAmounts",
            "adjustedTaxRefund": D("3.75"),
            "adjustedShippingRefund": D("17.71"),
        }


def test_flavour_is_one_of_two() -> None:
    assert flavour_choice("op") == "op"
    with pytest.raises(ValueError, match="classic, op"):
        flavour_choice("ReceiveReturns")


def test_op_flavour_never_has_commerce_refund_what_a_person_refunds() -> None:
    """`initiate` on a manual payment method records initiate then MANUAL_REFUND: Commerce
    gets the adjusted amounts and markManualRefund, never initiateRefund."""
    view = return_view()
    view["refundPlan"]["manualReasons"] = ["payment method invoice of pg1 is refunded by hand"]
    ops = [c.body["op"] for c in commerce_calls("ReturnRequest.RefundStep", "initiate_refund", view, "op")]
    assert ops == ["adjustRefundAmounts"]


def test_methods_commerce_holds_unreported_are_sent_back_as_it_holds_them() -> None:
    view = return_view()
    held = {
        "state": "PENDING_REFUND",
        "refundMethodList": [
            {"refundType": "manualRefund", "amount": 80.41, "maximumRefundAmount": -1},
            {"refundType": "giftCard", "amount": 5, "state": "INCOMPLETE", "maximumRefundAmount": 5},
        ],
    }
    merged = return_onto_held(classic_body(view), view, held, frozenset({"PENDING_REFUND"}))
    assert merged.body is not None
    assert merged.body["refundMethodList"] == [
        {"refundType": "manualRefund", "amount": D("80.41")},
        {"refundType": "giftCard", "state": "INCOMPLETE", "amount": D("5")},
    ]
    assert merged.problems and "split kept" in merged.problems[0]
    check_fields(merged.body, RETURN_REQUEST_FIELDS)
