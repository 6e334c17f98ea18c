"""What a Return Request Update keeps for the refund maths and for the calls back (issue 13 item 5).

Kept: refund methods' non-secret fields, item disposition and comments, surcharges,
isTaxIncluded, order-level adjustments, the exchange's replacement order. Never card data.
"""

from __future__ import annotations

from typing import Any

import orjson

from service.payloads import parse_return_update, settle_currency
from tests.commerce_sim.seeds import seed_return_request_update


def seed() -> dict[str, Any]:
    document = seed_return_request_update()
    ret = document["return"]
    ret["refundMethodList"] = [
        {"refundType": "manualRefund", "amount": 80.41, "maximumRefundAmount": -1, "state": "INCOMPLETE"},
        {
            "refundType": "creditCard",
            "paymentGroupId": "pg30412",
            "amount": 0,
            "state": "PENDING",
            "token": "9997000107329795",
            "creditCardNumber": "1111",
        },
    ]
    item = ret["returnItemList"][0]
    item.update(disposition={"id": "resell"}, comments="box dented")
    item["commerceItem"]["priceInfo"]["shippingSurcharge"] = 4.5
    order = ret["originatingOrder"]
    order["commerceItems"][0]["priceInfo"]["shippingSurcharge"] = 4.5
    order["taxPriceInfo"]["isTaxIncluded"] = True
    order["priceInfo"]["manualAdjustmentTotal"] = -2.5
    ret["replacementOrder"] = {
        "id": "o99",
        "state": "SUBMITTED",
        "priceInfo": {"total": 30},
        "commerceItems": [{"id": "ci9", "catalogRefId": "sku9", "productId": "p9", "quantity": 1}],
    }
    return document


def test_a_return_update_keeps_what_the_calls_back_and_the_maths_need() -> None:
    payload = parse_return_update(seed())
    snapshot = payload.snapshot
    methods = snapshot["refund"]["refundMethodList"]
    assert [(m["refundType"], m["paymentGroupId"], m["state"], m["amount"]) for m in methods] == [
        ("manualRefund", None, "INCOMPLETE", "80.41"),
        ("creditCard", "pg30412", "PENDING", "0.00"),
    ]
    item = snapshot["returnItemList"][0]
    assert (item["disposition"], item["comments"]) == ("resell", "box dented")
    assert (item["actualShippingRefundShare"], item["actualTaxRefundShare"]) == ("16.66", "3.75")
    details = snapshot["details"]
    assert details["replacementOrder"] == {
        "id": "o99",
        "state": "SUBMITTED",
        "total": "30.00",
        "items": [{"commerceItemId": "ci9", "catalogRefId": "sku9", "productId": "p9", "quantity": 1}],
    }
    assert payload.order is not None
    order = payload.order.snapshot
    assert order["isTaxIncluded"] is True
    assert order["priceInfo"]["manualAdjustmentTotal"] == "-2.50"
    (line,) = order["commerceItems"]
    assert (line["shippingSurcharge"], line["pricedQuantity"], line["quantity"]) == ("4.50", 3, 1)
    text = orjson.dumps(snapshot).decode() + orjson.dumps(order).decode()
    assert "9997000107329795" not in text and "creditCardNumber" not in text


def test_a_flat_return_without_a_currency_is_read_exactly_then_settled() -> None:
    document = seed()
    ret = document["return"]
    del ret["originatingOrder"]
    ret["originatingOrderId"] = "o30430"
    ret["returnItemList"][0]["refundAmount"] = 1234.5678
    snapshot = parse_return_update(document).snapshot
    assert snapshot["details"]["currency"] is None
    assert snapshot["returnItemList"][0]["refundAmount"] == "1234.5678", "no USD assumed"
    settled = settle_currency(snapshot, "KWD")
    assert settled["returnItemList"][0]["refundAmount"] == "1234.568"
    assert settled["refund"]["refundMethodList"][0]["amount"] == "80.410"
    assert settled["details"]["currency"] == "KWD"
