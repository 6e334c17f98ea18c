"""Bodies laid on what Commerce holds (issue 21): refund split, identity, split lines, logging."""

from __future__ import annotations

import io
import json
import logging
from decimal import Decimal

from projections.commerce_bodies import classic_body, refund_methods
from projections.sync import LoggingCommerce
from service.logs import configure
from tests.commerce_sim.server import RETURN_REQUEST_FIELDS, check_fields
from tests.unit.test_commerce_bodies import return_view

D = Decimal


def test_several_methods_keep_commerces_split_and_say_so() -> None:
    """Issue 21 item 4: the whole refund went to the first method, the agent's gift card was
    set to 0. Documented fields only: nothing says which payment each method refunds."""
    methods = [
        {"refundType": "manualRefund", "amount": "0", "maximumRefundAmount": "-1", "state": "INCOMPLETE"},
        {"refundType": "giftCard", "amount": "10.00", "maximumRefundAmount": "10.00"},
    ]
    view = return_view(methods=methods)
    assert refund_methods(view) == [
        {"refundType": "manualRefund", "state": "INCOMPLETE", "amount": D("0")},
        {"refundType": "giftCard", "amount": D("10.00")},
    ]
    from projections.commerce_merge import return_onto_held  # after what today's main can run

    merged = return_onto_held(classic_body(view), view, {"refundMethodList": methods}, frozenset())
    assert merged.problems == [
        "2 refund methods hold 10.00 of a 88.13 refund and the documents do not say which payment "
        "each refunds: Commerce's split kept"
    ]


def test_one_method_takes_the_refund_up_to_its_maximum() -> None:
    one = [{"refundType": "manualRefund", "amount": 0, "maximumRefundAmount": -1}]
    assert refund_methods(return_view(methods=one)) == [{"refundType": "manualRefund", "amount": D("88.13")}]
    capped = [{"refundType": "giftCard", "amount": 0, "maximumRefundAmount": 50}]
    assert refund_methods(return_view(methods=capped)) == [{"refundType": "giftCard", "amount": D("0")}]
    split = [{"refundType": "a", "amount": "80.00"}, {"refundType": "b", "amount": "8.13"}]
    assert [m["amount"] for m in refund_methods(return_view(methods=split)) or []] == [D("80.00"), D("8.13")]


def test_a_member_without_shipping_group_is_never_sent_with_null() -> None:
    """Issue 21 item 5: `shippingGroupId: null` matched nothing at Commerce, which created a new
    item and dropped the original."""
    view = return_view()
    view["returnItemList"][0]["shippingGroupId"] = None
    body = classic_body(view)
    assert all(m.get("shippingGroupId") is not None for m in body["returnItemList"])
    assert body["returnItemList"] == []
    from projections.commerce_merge import return_onto_held  # after what today's main can run

    held = {"returnItemList": [{"commerceItem": {"id": "ci1"}, "shippingGroupId": "sg1", "quantity": 2}]}
    merged = return_onto_held(body, view, held, frozenset())
    assert merged.body is not None
    (member,) = merged.body["returnItemList"]
    assert (member["commerceItemId"], member["shippingGroupId"]) == ("ci1", "sg1"), "Commerce's identity"
    assert member["quantityReceived"] == 2, "ours"
    orphan = {"returnItemList": [{"commerceItemId": "ci1", "state": "INITIAL"}]}
    unidentified = return_onto_held(body, view, orphan, frozenset())
    assert unidentified.body is not None and "returnItemList" not in unidentified.body
    assert unidentified.problems, "logged, and the list not sent (it would delete the member)"


def test_a_line_returned_in_two_members_shares_its_refund() -> None:
    """Issue 21 item 6: the first member got the line's whole share, the second none."""
    view = return_view()
    first = view["returnItemList"][0]
    view["returnItemList"] = [
        {**first, "returnItemId": "ri1", "quantityToReturn": 1, "quantityReceived": 1},
        {
            **first,
            "returnItemId": "ri2",
            "shippingGroupId": "sg2",
            "quantityToReturn": 1,
            "quantityReceived": 1,
        },
    ]
    members = classic_body(view)["returnItemList"]
    assert [m["refundAmount"] for m in members] == [D("30.00"), D("30.00")]
    assert [m["actualTaxRefundShare"] for m in members] == [D("1.88"), D("1.87")]
    assert sum(m["actualShippingRefundShare"] for m in members) == D("17.71") - D("1.04")
    assert [m["actualShippingSurchargeRefundShare"] for m in members] == [D("3.34"), D("3.33")]
    check_fields(classic_body(view), RETURN_REQUEST_FIELDS)


def test_credit_is_commerces_figure_plus_ours_not_applied() -> None:
    from projections.commerce_merge import credit_onto_held

    held = {"paymentGroups": [{"id": "pg1", "amountCredited": 5}, {"id": "pg2"}]}
    merged = credit_onto_held(held, {"pg1": D("88.13")}, "USD")
    assert merged.body == {
        "paymentGroups": [
            {"id": "pg1", "amountCredited": D("93.13")},
            {"id": "pg2", "amountCredited": D("0.00")},
        ]
    }
    assert credit_onto_held(held, {}, "USD").body is None, "nothing owed: no PUT"


async def test_the_logged_body_shows_amounts_as_sent() -> None:
    """Issue 21 item 8: the logged body went through float (`0.0`); the wire says `0.00`."""
    stream = io.StringIO()
    configure("json", logging.INFO, stream)
    try:
        await LoggingCommerce().update_return_request(
            "R1", {"returnFee": D("0.00"), "otherRefund": D("12.50")}
        )
    finally:
        configure("json", logging.INFO)
    line = next(line for line in stream.getvalue().splitlines() if "commerce_call_not_sent" in line)
    assert '"returnFee":0.00' in line and '"otherRefund":12.50' in line
    assert json.loads(line)["body"]["returnFee"] == 0
