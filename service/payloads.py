"""Commerce webhook bodies -> PCI-free, primitive snapshots the aggregates store.

Everything we keep is named here (an allow-list by construction): card data,
addresses and whatever else Commerce adds never reach the event store. Money
becomes Decimal strings in the currency's digits; time becomes UTC ISO-8601.
Any type error names its JSON path in the errorModel.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

import orjson

from domain.money import quantize
from domain.states import (
    PAYMENT_GROUP_STATES,
    SHIPPING_GROUP_STATES,
    ReturnItemState,
    ReturnState,
    state_name,
)
from service.conform import conform
from service.errors import BadRequest
from service.redaction import PAYMENT_GROUP_FIELDS, REFUND_METHOD_FIELDS, allow
from service.shapes import ORDER_SUBMIT, RETURN_REQUEST_UPDATE

Json = dict[str, Any]


@dataclass(frozen=True)
class OrderPayload:
    snapshot: Json
    last_modified: int
    fingerprint: str


@dataclass(frozen=True)
class ReturnPayload:
    snapshot: Json
    version_key: int
    fingerprint: str
    order: OrderPayload | None
    replacement: OrderPayload | None = None
    """An exchange's replacement order, stored as an order of its own."""


def parse_json(body: bytes) -> Json:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc.msg}", code="MALFORMED_JSON") from None
    if not isinstance(document, dict):
        raise BadRequest("body must be a JSON object", path="$")
    return document


def body_hash(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def fingerprint(snapshot: Json) -> str:
    return hashlib.sha256(orjson.dumps(snapshot, option=orjson.OPT_SORT_KEYS)).hexdigest()


class JsonReader:
    """Typed access to one JSON object that reports the path of whatever is wrong."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise BadRequest(f"{path} must be an object", path=path)
        self.data: Json = data
        self.path = path

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def obj(self, key: str, *, required: bool = True) -> JsonReader | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise BadRequest(f"{self._at(key)} is required", path=self._at(key))
            return None
        return JsonReader(value, self._at(key))

    def objects(self, key: str, *, required: bool = False) -> list[JsonReader]:
        value = self.data.get(key)
        if value is None:
            if required:
                raise BadRequest(f"{self._at(key)} is required", path=self._at(key))
            return []
        if not isinstance(value, list):
            raise BadRequest(f"{self._at(key)} must be a list", path=self._at(key))
        return [JsonReader(v, f"{self._at(key)}[{i}]") for i, v in enumerate(value)]

    def ident(self, *keys: str) -> str:
        """The first of `keys` present, as a non-empty id string (Commerce ids are strings)."""
        for key in keys:
            value = self.data.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise BadRequest(f"{self._at(key)} must be a string id", path=self._at(key))
            text = str(value).strip()
            if not text:
                raise BadRequest(f"{self._at(key)} must not be empty", path=self._at(key))
            return text
        raise BadRequest(f"{self._at(keys[0])} is required", path=self._at(keys[0]))

    def opt_ident(self, *keys: str) -> str | None:
        if all(self.data.get(k) is None for k in keys):
            return None
        return self.ident(*keys)

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise BadRequest(f"{self._at(key)} must be a string", path=self._at(key))
        return value

    def integer(self, key: str, default: int = 0) -> int:
        value = self.data.get(key, default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise BadRequest(f"{self._at(key)} must be an integer", path=self._at(key))
        return int(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise BadRequest(f"{self._at(key)} must be true or false", path=self._at(key))
        return value

    def money(self, key: str, currency: str | None) -> str:
        """In the currency's digits; exact while the currency is not known yet (settle_currency)."""
        value = self.decimal(key)
        return str(quantize(value, currency)) if currency else str(value)

    def decimal(self, key: str) -> Decimal:
        value = self.data.get(key)
        if value is None:
            return Decimal(0)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRequest(f"{self._at(key)} must be a number", path=self._at(key))
        try:
            return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        except InvalidOperation:
            raise BadRequest(f"{self._at(key)} must be a finite number", path=self._at(key)) from None

    def time(self, key: str) -> str | None:
        """Commerce sends epoch millis, `{"time": millis}` or ISO strings; we keep UTC ISO."""
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, dict):
            value = value.get("time")
        try:
            if isinstance(value, int | float) and not isinstance(value, bool):
                moment = datetime.fromtimestamp(value / 1000, tz=UTC)
            elif isinstance(value, str):
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=UTC)
            else:
                raise ValueError
        except (ValueError, OverflowError, OSError):
            raise BadRequest(f"{self._at(key)} must be a time", path=self._at(key)) from None
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_order_submit(document: Json) -> OrderPayload:
    root = JsonReader(conform(ORDER_SUBMIT, document), "$")
    order = root.obj("order")
    assert order is not None
    return _order(order)


def _order(order: JsonReader) -> OrderPayload:
    order_id = order.ident("id")
    price = order.obj("priceInfo", required=False)
    currency = (price.text("currencyCode") if price else None) or "USD"
    items = [_commerce_item(i, currency) for i in order.objects("commerceItems")]
    groups = [_shipping_group(g, currency) for g in order.objects("shippingGroups")]
    _attach_relationships(order, groups, items)
    snapshot: Json = {
        "id": order_id,
        "state": state_name(order.data.get("state"), {}) or "SUBMITTED",
        "siteId": order.text("siteId"),
        "profileId": order.opt_ident("profileId"),
        "currency": currency,
        "submittedDate": order.time("submittedDate") or order.time("creationTime"),
        "priceInfo": {
            key: price.money(key, currency) if price else "0"
            for key in ("total", "amount", "shipping", "tax", "discountAmount", "manualAdjustmentTotal")
        },
        "isTaxIncluded": _tax_included(order),
        "commerceItems": items,
        "shippingGroups": groups,
        "paymentGroups": [_payment_group(p, currency) for p in order.objects("paymentGroups")],
    }
    return OrderPayload(
        snapshot=snapshot,
        last_modified=order.integer("lastModifiedTime"),
        fingerprint=fingerprint(snapshot),
    )


def _tax_included(order: JsonReader) -> bool:
    """VAT sites: prices already hold the tax (taxPriceInfo.isTaxIncluded)."""
    tax = order.obj("taxPriceInfo", required=False)
    return tax.boolean("isTaxIncluded", False) if tax else False


def _commerce_item(item: JsonReader, currency: str) -> Json:
    price = item.obj("priceInfo", required=False)
    details = price.objects("currentPriceDetailsSorted") if price else []
    tax = sum((d.decimal("tax") for d in details), Decimal(0))
    discount_share = sum((d.decimal("orderDiscountShare") for d in details), Decimal(0))
    priced = sum((d.integer("quantity") for d in details), 0)
    return {
        "id": item.ident("id"),
        "productId": item.opt_ident("productId"),
        "catalogRefId": item.opt_ident("catalogRefId"),
        "displayName": item.text("productDisplayName"),
        "quantity": item.integer("quantity"),
        "returnedQuantity": item.integer("returnedQuantity"),
        "amount": price.money("amount", currency) if price else "0",
        "listPrice": price.money("listPrice", currency) if price else "0",
        "tax": str(quantize(tax, currency)),
        "orderDiscountShare": str(quantize(abs(discount_share), currency)),
        "pricedQuantity": priced,
        "shippingSurcharge": price.money("shippingSurcharge", currency) if price else "0",
    }


def _shipping_group(group: JsonReader, currency: str) -> Json:
    price = group.obj("priceInfo", required=False)
    return {
        "id": group.ident("id"),
        "state": state_name(group.data.get("state"), SHIPPING_GROUP_STATES) or "INITIAL",
        "shippingMethod": group.text("shippingMethod"),
        "trackingNumber": group.text("trackingNumber"),
        "actualShipDate": group.time("actualShipDate"),
        "amount": price.money("amount", currency) if price else "0",
        "shippingTax": price.money("shippingTax", currency) if price else "0",
        "items": [
            {
                "commerceItemId": rel.ident("commerceItemId"),
                "quantity": rel.integer("quantity"),
                "returnedQuantity": rel.integer("returnedQuantity"),
            }
            for rel in group.objects("commerceItemRelationships")
        ],
    }


def _attach_relationships(order: JsonReader, groups: list[Json], items: list[Json]) -> None:
    """Order Submit lists item-to-group links at order level; the return's order nests them."""
    by_id = {g["id"]: g for g in groups}
    for rel in order.objects("relationships"):
        group_id = rel.opt_ident("shippingGroupId")
        if group_id is None or rel.data.get("commerceItemId") is None:
            continue
        group = by_id.get(group_id)
        if group is None:
            raise BadRequest(
                f"{rel.path}.shippingGroupId names no shipping group of the order",
                path=f"{rel.path}.shippingGroupId",
            )
        link = {
            "commerceItemId": rel.ident("commerceItemId"),
            "quantity": rel.integer("quantity"),
            "returnedQuantity": rel.integer("returnedQuantity"),
        }
        if all(x["commerceItemId"] != link["commerceItemId"] for x in group["items"]):
            group["items"].append(link)
    if len(groups) == 1:
        linked = {x["commerceItemId"] for x in groups[0]["items"]}
        for item in items:
            if item["id"] not in linked:
                groups[0]["items"].append(
                    {
                        "commerceItemId": item["id"],
                        "quantity": item["quantity"],
                        "returnedQuantity": item["returnedQuantity"],
                    }
                )


def _payment_group(group: JsonReader, currency: str) -> Json:
    kept = allow(group.data, PAYMENT_GROUP_FIELDS)
    group_currency = group.text("currencyCode") or currency
    return {
        "id": group.ident("id", "paymentId"),
        "paymentMethod": group.text("paymentMethod"),
        "currencyCode": group_currency,
        "state": state_name(kept.get("state"), PAYMENT_GROUP_STATES),
        "amount": group.money("amount", group_currency),
        "amountAuthorized": group.money("amountAuthorized", group_currency),
        "amountCredited": group.money("amountCredited", group_currency),
    }


def parse_return_update(document: Json) -> ReturnPayload:
    root = JsonReader(conform(RETURN_REQUEST_UPDATE, document), "$")
    ret = root.obj("return")
    assert ret is not None
    origin = ret.obj("originatingOrder", required=False)
    order = _order(origin) if origin is not None else None
    order_id = order.snapshot["id"] if order else ret.ident("originatingOrderId", "orderId")
    # None when neither the return nor an embedded order names one: the stored order's is
    # taken then (`settle_currency`), never an assumed USD
    currency = _return_currency(ret) or (order.snapshot["currency"] if order else None)
    items = [_return_item(i, currency) for i in ret.objects("returnItemList", required=True)]
    seen: set[str] = set()
    for index, item in enumerate(items):
        if item["returnItemId"] in seen:
            raise BadRequest("return item ids must be unique", path=f"$.return.returnItemList[{index}].id")
        seen.add(item["returnItemId"])
    process = ret.text("processName") or "Return"
    replacement = _replacement_payload(ret, currency)
    if replacement is not None and replacement.snapshot["id"] == order_id:
        raise BadRequest(
            "$.return.replacementOrder.id: an exchange's replacement order cannot be its own order",
            path="$.return.replacementOrder.id",
        )
    snapshot: Json = {
        "id": ret.opt_ident("requestId") or ret.ident("authorizationNumber", "id"),
        "orderId": order_id,
        "processName": process,
        "state": _vocabulary(ret, "state", ReturnState, ReturnState.PENDING_CUSTOMER_ACTION),
        "returnItemList": items,
        "refund": _refund(ret, currency),
        "details": {
            "rma": ret.text("rma"),
            "authorizationNumber": ret.opt_ident("authorizationNumber"),
            "trackingNumber": ret.text("trackingNumber"),
            "returnLabel": ret.text("returnLabel"),
            "agentId": ret.text("agentId"),
            "originOfReturn": ret.text("originOfReturn"),
            "authorizationDate": ret.time("authorizationDate"),
            "returnPaymentState": ret.text("returnPaymentState"),
            "replacementOrderId": _replacement_order_id(ret),
            "replacementOrder": _replacement_order(ret, currency),
            "relatedReplacementOrders": _related_orders(ret),
            "comments": ret.text("comments"),
            "currency": currency,
            **({"replacementPriced": _priced(ret)} if replacement is not None else {}),
        },
    }
    version_key = ret.integer("lastModifiedTime") or (order.last_modified if order else 0)
    return ReturnPayload(
        snapshot=snapshot,
        version_key=version_key,
        fingerprint=fingerprint(snapshot),
        order=order,
        replacement=replacement,
    )


def _replacement_payload(ret: JsonReader, currency: str | None) -> OrderPayload | None:
    """The replacement order read as any order (its items named by `id` or `commerceItemId`, in
    the return's currency when it names none); None when it has no id to be stored under."""
    replacement = ret.obj("replacementOrder", required=False)
    if replacement is None or replacement.opt_ident("id") is None:
        return None
    document = dict(replacement.data)
    document["commerceItems"] = [
        {**i, "id": i.get("id") or i.get("commerceItemId")} if isinstance(i, dict) else i
        for i in document.get("commerceItems") or []
    ]
    price = dict(document.get("priceInfo") or {})
    if not price.get("currencyCode") and currency:
        document["priceInfo"] = {**price, "currencyCode": currency}
    return _order(JsonReader(document, replacement.path))


def _priced(ret: JsonReader) -> bool:
    """Whether the replacement order prices its items (else Commerce's figures stand)."""
    replacement = ret.obj("replacementOrder", required=False)
    return replacement is not None and any(
        i.data.get("priceInfo") is not None for i in replacement.objects("commerceItems")
    )


def _return_currency(ret: JsonReader) -> str | None:
    price = ret.obj("priceInfo", required=False)
    return ret.text("currencyCode") or (price.text("currencyCode") if price else None)


RETURN_ITEM_MONEY = (
    "refundAmount",
    "actualTaxRefundShare",
    "actualShippingRefundShare",
    "actualShippingSurchargeRefundShare",
    "orderDiscountAdjustment",
    "manualAdjustmentShare",
)
REFUND_MONEY = (
    "totalRefundAmount",
    "refundSubtotal",
    "totalItemRefund",
    "actualShippingRefund",
    "actualTaxRefund",
    "shippingTaxRefund",
    "actualShippingSurchargeRefund",
    "returnFee",
    "otherRefund",
    "adjustmentAmount",
    "totalOrderPromotionValueAdjustmentChange",
    "nonReturnItemSubtotalAdjustment",
)


def settle_currency(snapshot: Json, currency: str) -> Json:
    """A flat return's amounts, read before its currency was known, in that currency's digits."""

    def q(value: Any) -> Any:
        return None if value is None else str(quantize(Decimal(value), currency))

    items = [{**i, **{k: q(i.get(k)) for k in RETURN_ITEM_MONEY}} for i in snapshot["returnItemList"]]
    refund = dict(snapshot["refund"])
    refund.update({k: q(refund.get(k)) for k in REFUND_MONEY})
    refund["refundMethodList"] = [
        {**m, "amount": q(m.get("amount"))} for m in refund.get("refundMethodList", [])
    ]
    return {
        **snapshot,
        "returnItemList": items,
        "refund": refund,
        "details": {**snapshot["details"], "currency": currency},
    }


def _replacement_order_id(ret: JsonReader) -> str | None:
    replacement = ret.data.get("replacementOrder")
    if isinstance(replacement, dict):
        return JsonReader(replacement, "$.return.replacementOrder").opt_ident("id")
    return ret.opt_ident("replacementOrderId")


def _replacement_order(ret: JsonReader, currency: str | None) -> Json | None:
    """An exchange's replacement order: what was sent in place of the returned goods."""
    replacement = ret.obj("replacementOrder", required=False)
    if replacement is None:
        return None
    price = replacement.obj("priceInfo", required=False)
    return {
        "id": replacement.opt_ident("id"),
        "state": state_name(replacement.data.get("state"), {}),
        "total": price.money("total", currency) if price else None,
        "items": [
            {
                "commerceItemId": i.ident("id", "commerceItemId"),
                "catalogRefId": i.opt_ident("catalogRefId"),
                "productId": i.opt_ident("productId"),
                "quantity": i.integer("quantity"),
            }
            for i in replacement.objects("commerceItems")
        ],
    }


def _related_orders(ret: JsonReader) -> list[str]:
    related = ret.data.get("relatedReplacementOrders")
    if not isinstance(related, list):
        return []
    return [str(o.get("id")) if isinstance(o, dict) else str(o) for o in related if o is not None]


def _return_item(item: JsonReader, currency: str | None) -> Json:
    nested = item.obj("commerceItem", required=False)
    commerce_item_id = nested.ident("id") if nested else item.ident("commerceItemId")
    quantity_to_return = item.integer("quantityToReturn")
    quantity_received = item.integer("quantityReceived")
    if quantity_to_return < 0 or quantity_received < 0:
        raise BadRequest(f"{item.path}: quantities must not be negative", path=item.path)
    return {
        "returnItemId": item.ident("returnItemId", "id"),
        "commerceItemId": commerce_item_id,
        "shippingGroupId": item.opt_ident("shippingGroupId"),
        "productId": nested.opt_ident("productId") if nested else item.opt_ident("productId"),
        "catalogRefId": (nested.opt_ident("catalogRefId") if nested else item.opt_ident("catalogRefId")),
        "state": _vocabulary(item, "state", ReturnItemState, ReturnItemState.INITIAL),
        "quantityToReturn": quantity_to_return,
        "quantityReceived": quantity_received,
        "quantityToExchange": item.integer("quantityToExchange"),
        "returnShipmentRequired": item.boolean("returnShipmentRequired", True),
        **{key: item.money(key, currency) for key in RETURN_ITEM_MONEY},
        "returnReason": item.text("returnReason"),
        "disposition": _text_or_id(item, "disposition"),
        "comments": item.text("comments"),
    }


def _vocabulary(reader: JsonReader, key: str, names: type[StrEnum], default: StrEnum) -> str:
    """A state Commerce documents (oms-integration-overview.txt:434-435), else a 400: an unknown
    one could be neither judged nor recorded as an override."""
    value = reader.text(key) or default.value
    if value not in names.__members__.values():
        raise BadRequest(
            f"{reader.path}.{key} must be one of {', '.join(m.value for m in names.__members__.values())}",
            path=f"{reader.path}.{key}",
        )
    return value


def _text_or_id(reader: JsonReader, key: str) -> str | None:
    """Commerce writes some reasons as a plain string, some as an object with an id."""
    value = reader.data.get(key)
    if isinstance(value, dict):
        return JsonReader(value, f"{reader.path}.{key}").opt_ident("id", "name")
    return reader.text(key)


def _refund(ret: JsonReader, currency: str | None) -> Json:
    """Commerce's own refund methods (never card data), kept to be sent back as they were."""
    methods = []
    for method in ret.objects("refundMethodList"):
        kept = allow(method.data, REFUND_METHOD_FIELDS)
        methods.append(
            {
                "refundType": method.text("refundType") or method.text("type"),
                "paymentGroupId": method.opt_ident("paymentGroupId", "PaymentId"),
                "state": method.text("state"),
                "amount": method.money("amount", currency),
                "maximumRefundAmount": str(method.decimal("maximumRefundAmount"))
                if "maximumRefundAmount" in kept
                else None,
            }
        )
    return {**{f: ret.money(f, currency) for f in REFUND_MONEY}, "refundMethodList": methods}
