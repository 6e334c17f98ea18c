"""The declared shapes of Commerce's three webhooks: every field we keep, with its type and range.

A field is either declared here or dropped at the edge (`service.conform.conform`), so this
file is also the PCI allow-list: a payment group or refund method keeps only what its shape
declares (ids, method, amounts, currency, state), and card numbers, tokens, expiry dates,
authorization details and addresses never get past it. Declaring one more field is one line
in the TypedDict it belongs to; a field the snapshot builders read but no shape declares is
always absent (tests/unit/test_shapes.py checks the seeds lose nothing).

Most fields are optional and may be null, as Commerce sends them; which ids are required
is declared with `Required` or, where Commerce names an id either way, `one_of`.
Leaf types and their bounds: `service/inbound_types.py`.
"""

from __future__ import annotations

from typing import Annotated, Required

from pydantic import Field
from typing_extensions import TypedDict

from service.conform import one_of, shape_of
from service.inbound_types import (
    CountOrUnknown,
    CurrencyCode,
    EpochMillis,
    Flag,
    Ident,
    Money,
    MoneyOrUnknown,
    OptIdent,
    Quantity,
    Reference,
    SignedMoney,
    State,
    Text,
    Time,
)


class OrderPriceInfo(TypedDict, total=False):
    currencyCode: CurrencyCode | None
    total: Money
    amount: Money
    shipping: Money
    tax: Money
    discountAmount: Money
    manualAdjustmentTotal: SignedMoney


class PriceDetail(TypedDict, total=False):
    amount: Money
    quantity: Quantity | None
    tax: Money
    orderDiscountShare: SignedMoney
    """Commerce reports an item's share of an order discount as a negative amount."""


class ItemPriceInfo(TypedDict, total=False):
    amount: Money
    listPrice: Money
    shippingSurcharge: Money
    currentPriceDetailsSorted: list[PriceDetail] | None


class CommerceItem(TypedDict, total=False):
    id: Required[Ident]
    productId: OptIdent
    catalogRefId: OptIdent
    productDisplayName: Text | None
    quantity: Quantity | None
    returnedQuantity: Quantity | None
    priceInfo: ItemPriceInfo | None


class ItemLink(TypedDict, total=False):
    """An item's quantity in a shipping group, nested in the group or listed at order level."""

    commerceItemId: OptIdent
    shippingGroupId: OptIdent
    quantity: Quantity | None
    returnedQuantity: Quantity | None
    amount: Money


class ShippingPriceInfo(TypedDict, total=False):
    amount: Money
    shippingTax: Money


class ShippingGroup(TypedDict, total=False):
    id: Required[Ident]
    state: State
    shippingMethod: Text | None
    trackingNumber: Text | None
    actualShipDate: Time
    priceInfo: ShippingPriceInfo | None
    commerceItemRelationships: list[Annotated[ItemLink, one_of("commerceItemId")]] | None


class PaymentGroup(TypedDict, total=False):
    """The PCI allow-list of a payment group: what refunds need, nothing a card carries."""

    id: OptIdent
    paymentId: OptIdent
    paymentMethod: Text | None
    amount: Money
    amountAuthorized: Money
    amountCredited: Money
    currencyCode: CurrencyCode | None
    state: State
    type: Text | None
    paymentGroupClassType: Text | None


class TaxPriceInfo(TypedDict, total=False):
    isTaxIncluded: Flag | None
    """VAT sites: prices already hold the tax."""


class Order(TypedDict, total=False):
    id: Required[Ident]
    state: State
    siteId: Text | None
    profileId: OptIdent
    submittedDate: Time
    creationTime: Time
    lastModifiedTime: EpochMillis | None
    priceInfo: OrderPriceInfo | None
    taxPriceInfo: TaxPriceInfo | None
    commerceItems: list[CommerceItem] | None
    shippingGroups: list[ShippingGroup] | None
    relationships: list[ItemLink] | None
    paymentGroups: list[Annotated[PaymentGroup, one_of("id", "paymentId")]] | None


class OrderSubmit(TypedDict, total=False):
    order: Required[Order]


class ItemRef(TypedDict, total=False):
    id: Required[Ident]
    productId: OptIdent
    catalogRefId: OptIdent


class ReturnItem(TypedDict, total=False):
    returnItemId: OptIdent
    id: OptIdent
    commerceItem: ItemRef | None
    commerceItemId: OptIdent
    shippingGroupId: OptIdent
    productId: OptIdent
    catalogRefId: OptIdent
    state: Text | None
    quantityToReturn: Quantity | None
    quantityReceived: Quantity | None
    quantityToExchange: Quantity | None
    quantityShipped: CountOrUnknown | None
    """Not kept; checked because Commerce's -1 ("not known") is its only negative."""
    returnShipmentRequired: Flag | None
    refundAmount: Money
    actualTaxRefundShare: Money
    actualShippingRefundShare: Money
    actualShippingSurchargeRefundShare: Money
    orderDiscountAdjustment: SignedMoney
    manualAdjustmentShare: SignedMoney
    returnReason: Text | None
    disposition: Reference
    """A plain string, or an object with an `id` or `name`."""
    comments: Text | None


class RefundMethod(TypedDict, total=False):
    """The PCI allow-list of a refund method."""

    refundType: Text | None
    type: Text | None
    paymentGroupId: OptIdent
    PaymentId: OptIdent
    state: Text | None
    amount: Money
    maximumRefundAmount: MoneyOrUnknown | None
    """-1 is Commerce's "no maximum"."""


class ReplacementItem(TypedDict, total=False):
    id: OptIdent
    commerceItemId: OptIdent
    catalogRefId: OptIdent
    productId: OptIdent
    productDisplayName: Text | None
    quantity: Quantity | None
    returnedQuantity: Quantity | None
    priceInfo: ItemPriceInfo | None


class ReplacementOrder(TypedDict, total=False):
    """An exchange's replacement order ("the new order data from the exchange"): an order of
    its own, kept as an Order is (its payment groups through the same PCI allow-list)."""

    id: OptIdent
    state: State
    siteId: Text | None
    profileId: OptIdent
    submittedDate: Time
    creationTime: Time
    lastModifiedTime: EpochMillis | None
    priceInfo: OrderPriceInfo | None
    taxPriceInfo: TaxPriceInfo | None
    commerceItems: list[Annotated[ReplacementItem, one_of("id", "commerceItemId")]] | None
    shippingGroups: list[ShippingGroup] | None
    relationships: list[ItemLink] | None
    paymentGroups: list[Annotated[PaymentGroup, one_of("id", "paymentId")]] | None


class ReturnPriceInfo(TypedDict, total=False):
    currencyCode: CurrencyCode | None


class Return(TypedDict, total=False):
    authorizationNumber: OptIdent
    requestId: OptIdent
    id: OptIdent
    originatingOrder: Order | None
    originatingOrderId: OptIdent
    orderId: OptIdent
    processName: Text | None
    state: Text | None
    lastModifiedTime: EpochMillis | None
    returnItemList: Required[
        list[Annotated[ReturnItem, one_of("returnItemId", "id"), one_of("commerceItemId", "commerceItem")]]
    ]
    refundMethodList: list[RefundMethod] | None
    totalRefundAmount: Money
    refundSubtotal: Money
    totalItemRefund: Money
    actualShippingRefund: Money
    actualTaxRefund: Money
    shippingTaxRefund: Money
    actualShippingSurchargeRefund: Money
    returnFee: Money
    otherRefund: Money
    adjustmentAmount: SignedMoney
    """An agent's adjustment may lower the refund."""
    totalOrderPromotionValueAdjustmentChange: SignedMoney
    nonReturnItemSubtotalAdjustment: SignedMoney
    currencyCode: CurrencyCode | None
    priceInfo: ReturnPriceInfo | None
    comments: Text | None
    rma: Text | None
    trackingNumber: Text | None
    returnLabel: Text | None
    agentId: Text | None
    originOfReturn: Text | None
    authorizationDate: Time
    returnPaymentState: Text | None
    replacementOrder: ReplacementOrder | None
    replacementOrderId: OptIdent
    relatedReplacementOrders: list[Reference] | None


ReturnRequestUpdate = TypedDict(
    "ReturnRequestUpdate",
    {
        "return": Required[
            Annotated[
                Return,
                one_of("authorizationNumber", "requestId", "id"),
                one_of("originatingOrder", "originatingOrderId", "orderId"),
            ]
        ]
    },
    total=False,
)
"""Functional form: `return` is a Python keyword."""


class AskedItem(TypedDict, total=False):
    commerceItemId: Required[Ident]
    shippingGroupId: OptIdent
    quantityToReturn: Quantity | None
    quantityToExchange: Quantity | None


class AskedRequest(TypedDict, total=False):
    """Validated only: the answer mirrors Commerce's own request, undeclared keys included."""

    orderId: OptIdent
    authorizationNumber: OptIdent
    requestId: OptIdent
    id: OptIdent
    rma: OptIdent
    trackingNumber: Text | None
    returnLabel: Text | None
    returnItemListIsTruncated: Flag | None
    returnItemList: list[AskedItem] | None


class ReturnRequestValidation(TypedDict, total=False):
    context: Required[Text]
    orderId: OptIdent
    returnRequests: Required[Annotated[list[AskedRequest], Field(min_length=1)]]


ORDER_SUBMIT = shape_of(OrderSubmit)
RETURN_REQUEST_UPDATE = shape_of(ReturnRequestUpdate)
RETURN_REQUEST_VALIDATION = shape_of(ReturnRequestValidation)

PAYMENT_GROUP_FIELDS = frozenset(PaymentGroup.__annotations__)
REFUND_METHOD_FIELDS = frozenset(RefundMethod.__annotations__)
