"""An order and its returns, seen the way the policy and the refund maths need them.

Quantity available = shipped - returned - in open returns, where returned counts
what our returns received (or, for items that need no shipment back, what
they take) and what Commerce already reported as returned, whichever is more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from domain.orders import Order
from domain.policy import ItemFacts
from domain.refunds import OrderLine, OrderMoney, PaymentShare, ShippingCharge, allocate_order_discount
from domain.returns import ReturnRequest

CLOSED_RETURN_STATES = frozenset({"COMPLETE", "INCOMPLETE"})


@dataclass(frozen=True)
class ReturnCounts:
    returned: dict[str, int]
    in_open_returns: dict[str, int]


def count_returns(returns: Sequence[ReturnRequest], exclude: str | None = None) -> ReturnCounts:
    """Per commerce item: units returned and units still expected back in open returns."""
    returned: dict[str, int] = {}
    open_: dict[str, int] = {}
    for ret in returns:
        if ret.commerce_id == exclude or ret.state == "INCOMPLETE":
            continue
        for item in ret.items:
            ci = item["commerceItemId"]
            if item["state"] == "RETURN_NOT_REQUIRED":
                returned[ci] = returned.get(ci, 0) + item["quantityToReturn"]
                continue
            returned[ci] = returned.get(ci, 0) + item["quantityReceived"]
            if ret.state not in CLOSED_RETURN_STATES:
                pending = max(0, item["quantityToReturn"] - item["quantityReceived"])
                open_[ci] = open_.get(ci, 0) + pending
    return ReturnCounts(returned, open_)


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def item_facts(order: Order, counts: ReturnCounts) -> dict[str, ItemFacts]:
    """ItemFacts per commerce item of the order, shipments summed over its groups."""
    shipped: dict[str, int] = {}
    ship_dates: dict[str, datetime] = {}
    commerce_returned: dict[str, int] = {}
    for group in order.snapshot["shippingGroups"]:
        date = _time(order.ship_date(group))
        for link in group["items"]:
            ci = link["commerceItemId"]
            qty = order.shipped_quantity(group, link)
            shipped[ci] = shipped.get(ci, 0) + qty
            commerce_returned[ci] = commerce_returned.get(ci, 0) + link["returnedQuantity"]
            if qty and date and (ci not in ship_dates or date > ship_dates[ci]):
                ship_dates[ci] = date
    facts: dict[str, ItemFacts] = {}
    submitted = _time(order.snapshot.get("submittedDate"))
    for item in order.snapshot["commerceItems"]:
        ci = item["id"]
        reported = max(item["returnedQuantity"], commerce_returned.get(ci, 0))
        facts[ci] = ItemFacts(
            sku=item.get("catalogRefId") or "",
            product_id=item.get("productId") or "",
            quantity_ordered=max(0, item["quantity"]),
            quantity_shipped=max(0, min(shipped.get(ci, 0), item["quantity"])),
            quantity_returned=max(reported, counts.returned.get(ci, 0)),
            quantity_in_open_returns=counts.in_open_returns.get(ci, 0),
            ship_date=ship_dates.get(ci),
            submitted_date=submitted,
        )
    return facts


def priced_quantity(item: dict[str, Any]) -> int:
    """The units the line was priced for: its quantity, or more where Commerce's own price
    details (currentPriceDetailsSorted) price more units than `quantity` says (seen in the
    seed return: quantity 1, three units priced at 30, two of them returned)."""
    return max(int(item["quantity"]), int(item.get("pricedQuantity") or 0))


def order_money(order: Order) -> OrderMoney:
    """The order's money for refund maths; payments are capped at the order total.

    Order-level reductions (promotions' `discountAmount`, and a manual adjustment
    credit: a negative `manualAdjustmentTotal`) are spread over the lines when
    Commerce did not give each line its share.
    """
    snap = order.snapshot
    currency = snap["currency"]
    group_of: dict[str, str] = {}
    for group in snap["shippingGroups"]:
        for link in group["items"]:
            group_of.setdefault(link["commerceItemId"], group["id"])
    lines = tuple(
        OrderLine(
            commerce_item_id=item["id"],
            shipping_group_id=group_of.get(item["id"], ""),
            quantity=priced_quantity(item),
            amount=Decimal(item["amount"]),
            order_discount_share=Decimal(item["orderDiscountShare"]),
            tax=Decimal(item["tax"]),
            surcharge=Decimal(item.get("shippingSurcharge") or "0"),
        )
        for item in snap["commerceItems"]
        if priced_quantity(item) > 0
    )
    price = snap["priceInfo"]
    discount = Decimal(price.get("discountAmount", "0")) + max(
        Decimal(0), -Decimal(price.get("manualAdjustmentTotal") or "0")
    )
    if discount > 0 and all(line.order_discount_share == 0 for line in lines):
        lines = allocate_order_discount(lines, discount, currency)
    shipping = tuple(
        ShippingCharge(g["id"], Decimal(g["amount"]), Decimal(g["shippingTax"]))
        for g in snap["shippingGroups"]
    )
    tax_included = bool(snap.get("isTaxIncluded", False))
    unpaid = OrderMoney(currency=currency, lines=lines, shipping=shipping, tax_included=tax_included)
    payments = tuple(
        PaymentShare(p["id"], p.get("paymentMethod") or "unknown", min(Decimal(p["amount"]), unpaid.total))
        for p in snap["paymentGroups"]
    )
    return OrderMoney(
        currency=currency, lines=lines, shipping=shipping, payments=payments, tax_included=tax_included
    )
