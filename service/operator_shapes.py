"""The declared shapes of the operator API's bodies (SPEC section 7): ids, quantities, amounts, times.

As for the webhooks (`service/shapes.py`), a key not declared here is dropped before the
command sees it, and a body is refused with every problem listed. Leaf types and their
bounds: `service/inbound_types.py`.
"""

from __future__ import annotations

from typing import Annotated, Literal, Required

from pydantic import Field
from typing_extensions import TypedDict

from service.conform import one_of, shape_of
from service.inbound_types import (
    ID_MAX_LENGTH,
    TEXT_MAX_LENGTH,
    DecimalAmount,
    Flag,
    Ident,
    OptIdent,
    PositiveQuantity,
    Text,
    Time,
)

ItemKey = Annotated[str, Field(min_length=1, max_length=ID_MAX_LENGTH)]


class ShippedItem(TypedDict, total=False):
    commerceItemId: Required[Ident]
    quantity: Required[PositiveQuantity]


class Shipment(TypedDict, total=False):
    shippingGroupId: Required[Ident]
    items: list[ShippedItem] | None
    trackingNumber: Text | None
    shipDate: Time


class ItemChoice(TypedDict, total=False):
    returnItemId: OptIdent
    commerceItemId: OptIdent
    shipmentRequired: Flag | None


class Authorization(TypedDict, total=False):
    rma: Text | None
    trackingNumber: Text | None
    returnLabel: Text | None
    items: list[Annotated[ItemChoice, one_of("commerceItemId", "returnItemId")]] | None


class ReceivedItem(TypedDict, total=False):
    returnItemId: OptIdent
    commerceItemId: OptIdent
    quantity: Required[PositiveQuantity]


class Receipt(TypedDict, total=False):
    items: Required[
        Annotated[
            list[Annotated[ReceivedItem, one_of("commerceItemId", "returnItemId")]], Field(min_length=1)
        ]
    ]


class RefundAmounts(TypedDict, total=False):
    paymentGroups: Required[Annotated[dict[ItemKey, DecimalAmount], Field(min_length=1)]]
    """Payment group id -> amount (a number or a decimal string)."""


class Refund(TypedDict, total=False):
    action: Required[Literal["initiate", "manual", "settle"]]
    amounts: RefundAmounts | None


class Closing(TypedDict, total=False):
    reason: Required[Annotated[str, Field(max_length=TEXT_MAX_LENGTH, pattern=r"\S")]]


SHIPMENT = shape_of(Shipment)
AUTHORIZATION = shape_of(Authorization)
RECEIPT = shape_of(Receipt)
REFUND = shape_of(Refund)
CLOSING = shape_of(Closing)
