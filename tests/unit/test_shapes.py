"""The declared shapes: they keep everything the snapshots need, and nothing else."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from service import payloads
from service.conform import InvalidInput, conform
from service.shapes import ORDER_SUBMIT, PAYMENT_GROUP_FIELDS, RETURN_REQUEST_UPDATE
from tests.commerce_sim.seeds import seed_order_submit, seed_return_request_update
from tests.integration.test_operator_api import return_update

CARD_FIELDS = (
    "token",
    "creditCardNumber",
    "expirationMonth",
    "expirationYear",
    "authorizationStatus",
    "billingAddress",
)


def _documents() -> list[tuple[str, dict[str, Any]]]:
    order = seed_order_submit()
    ret = seed_return_request_update()
    ret["return"]["originatingOrder"]["paymentGroups"][0].update(
        {k: v for k, v in order["order"]["paymentGroups"][0].items() if k in CARD_FIELDS}
    )
    return [("order", order), ("return", ret), ("flat-return", return_update("R1"))]


def _parse(kind: str, document: dict[str, Any]) -> Any:
    if kind == "order":
        return payloads.parse_order_submit(document)
    return payloads.parse_return_update(document)


@pytest.mark.parametrize(("kind", "document"), _documents(), ids=lambda v: v if isinstance(v, str) else "")
def test_the_shape_loses_nothing_a_snapshot_keeps(
    monkeypatch: pytest.MonkeyPatch, kind: str, document: dict[str, Any]
) -> None:
    """A field the snapshot builders read but no shape declares would vanish: this catches it."""
    shaped = _parse(kind, document)
    monkeypatch.setattr(payloads, "conform", lambda _shape, raw: raw)
    assert _parse(kind, document) == shaped


@pytest.mark.parametrize(("kind", "document"), _documents()[:2], ids=["order", "return"])
def test_card_data_and_undeclared_fields_do_not_pass_the_shape(kind: str, document: dict[str, Any]) -> None:
    shaped = conform(ORDER_SUBMIT if kind == "order" else RETURN_REQUEST_UPDATE, document)
    text = orjson.dumps(shaped).decode()
    for field in (*CARD_FIELDS, "shippingAddress", "phoneNumber", "itemCostAdjustments", "site"):
        assert f'"{field}"' not in text
    order = shaped["order"] if kind == "order" else shaped["return"]["originatingOrder"]
    assert set(order["paymentGroups"][0]) <= PAYMENT_GROUP_FIELDS


@pytest.mark.parametrize("value", [2.0, "2", True, -1, 10**9 + 1, None])
def test_quantities_are_json_integers_in_range(value: Any) -> None:
    document = seed_order_submit()
    document["order"]["commerceItems"][0]["quantity"] = value
    if value is None:  # Commerce may send null: read as 0
        assert conform(ORDER_SUBMIT, document)["order"]["commerceItems"][0]["quantity"] is None
        return
    with pytest.raises(InvalidInput) as refused:
        conform(ORDER_SUBMIT, document)
    assert refused.value.path == "$.order.commerceItems[0].quantity"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (0, True),
        (9_999_999_999_999.99, True),
        (10**13, False),
        (-0.01, False),
        ("1.00", False),
        (False, False),
    ],
)
def test_amounts_are_finite_non_negative_numbers_below_ten_trillion(value: Any, ok: bool) -> None:
    document = seed_order_submit()
    document["order"]["priceInfo"]["total"] = value
    if ok:
        conform(ORDER_SUBMIT, document)
    else:
        with pytest.raises(InvalidInput):
            conform(ORDER_SUBMIT, document)


def test_commerce_sentinels_and_signed_amounts_are_accepted() -> None:
    """-1 means "not known" in quantityShipped and "no maximum" in maximumRefundAmount; discount
    shares and adjustments are negative in Commerce's own samples."""
    document = seed_return_request_update()
    ret = document["return"]
    assert ret["returnItemList"][0]["quantityShipped"] == -1
    assert ret["refundMethodList"][0]["maximumRefundAmount"] == -1
    ret["adjustmentAmount"] = -5
    ret["originatingOrder"]["commerceItems"][0]["priceInfo"]["currentPriceDetailsSorted"][0][
        "orderDiscountShare"
    ] = -2.5
    conform(RETURN_REQUEST_UPDATE, document)


@pytest.mark.parametrize("value", ["", "   ", "x" * 129, "a\u0000b", 1.5, True, [], {}])
def test_ids_are_printable_non_empty_and_short(value: Any) -> None:
    document = seed_order_submit()
    document["order"]["id"] = value
    with pytest.raises(InvalidInput) as refused:
        conform(ORDER_SUBMIT, document)
    assert refused.value.path == "$.order.id"


@pytest.mark.parametrize("value", ["yesterday", -1, 1e300, 253_402_300_800_000, {"time": "x"}, True])
def test_times_parse(value: Any) -> None:
    document = seed_order_submit()
    document["order"]["creationTime"] = value
    with pytest.raises(InvalidInput) as refused:
        conform(ORDER_SUBMIT, document)
    assert refused.value.path == "$.order.creationTime"


def test_a_return_without_any_id_names_the_first_alternative() -> None:
    document = seed_return_request_update()
    del document["return"]["authorizationNumber"]
    del document["return"]["returnItemList"][0]["id"]
    with pytest.raises(InvalidInput) as refused:
        conform(RETURN_REQUEST_UPDATE, document)
    (error,) = refused.value.extra["errors"]
    assert error["o:errorPath"] == "$.return.returnItemList[0].returnItemId", "the first of returnItemId | id"
    assert error["message"].endswith("Field required (or id)"), "and says what else would do"


def test_fields_the_commerce_contract_reads_are_declared() -> None:
    """Surcharges, VAT, adjustments, disposition, comments, refund method state, the return's own
    currency and an exchange's replacement orders pass the shape (issue 13 keeps them)."""
    document = seed_return_request_update()
    ret = document["return"]
    ret.update(
        currencyCode="EUR",
        comments="boxed",
        shippingTaxRefund=1.5,
        relatedReplacementOrders=[{"id": "o9", "state": "SUBMITTED"}, "o10"],
        replacementOrder={
            "id": "o9",
            "state": "SUBMITTED",
            "priceInfo": {"total": 12},
            "commerceItems": [{"id": "ci9", "quantity": 1, "catalogRefId": "s"}],
        },
    )
    ret["refundMethodList"][0]["state"] = "COMPLETE"
    ret["returnItemList"][0].update(
        disposition={"id": "DAMAGED", "label": "x"}, comments="torn", manualAdjustmentShare=-1.25
    )
    origin = ret["originatingOrder"]
    origin["taxPriceInfo"]["isTaxIncluded"] = True
    origin["commerceItems"][0]["priceInfo"]["shippingSurcharge"] = 2.5
    shaped = conform(RETURN_REQUEST_UPDATE, document)["return"]
    assert shaped["currencyCode"] == "EUR" and shaped["comments"] == "boxed"
    assert shaped["relatedReplacementOrders"] == [{"id": "o9"}, "o10"]
    assert shaped["replacementOrder"]["commerceItems"] == [{"id": "ci9", "quantity": 1, "catalogRefId": "s"}]
    assert shaped["refundMethodList"][0]["state"] == "COMPLETE"
    item = shaped["returnItemList"][0]
    assert item["disposition"] == {"id": "DAMAGED"} and item["manualAdjustmentShare"] == -1.25
    assert shaped["originatingOrder"]["taxPriceInfo"] == {"isTaxIncluded": True}
    assert shaped["originatingOrder"]["commerceItems"][0]["priceInfo"]["shippingSurcharge"] == 2.5
