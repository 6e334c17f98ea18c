"""What Oracle's documents say the Admin API takes: fields, types, vocabularies, each with its source.

A second, independent reading of Oracle's documents the project was built from (the seed
documents; their two webhook samples are kept in tests/fixtures/seeds/), never of
Returnflow's bodies. Every entry names its document, section and line; where the
documents are silent the simulator's choice lives in `assumptions.py`, not here.

Abbreviations in the sources:
- OMS: oms-integration-overview.txt
- SUBMIT: order-submit-webhook.txt, "Order Submit request example"
- RRU: return-request-update-webhook.txt, "Return Request Update request example"
- AGENT: agent-api-initiate-return.txt (the Agent API; cited only for shared shapes such as
  errorModel and currency digits, never for an Admin API rule)
- README: seeds/README.md, "Facts gathered beyond these documents"
"""

from __future__ import annotations

from dataclasses import dataclass

OMS_UPDATE = 'oms-integration-overview.txt, "Update the return request"'
OMS_REST = 'oms-integration-overview.txt, "Order Management REST APIs"'
OMS_SUBMIT = 'oms-integration-overview.txt, "Order Submit request example"'
OMS_REFUNDS = 'oms-integration-overview.txt, "Update refund amounts"'
OMS_VALIDATION = 'oms-integration-overview.txt, "Return Request Validation webhook"'
RRU = 'return-request-update-webhook.txt, "Return Request Update request example"'
SUBMIT = 'order-submit-webhook.txt, "Order Submit request example"'
AGENT_ERRORS = 'agent-api-initiate-return.txt, "Default Response" errorModel'
AGENT_CURRENCY = 'agent-api-initiate-return.txt, "Example application/json" priceListGroup.currency'
README = 'seeds/README.md, "Facts gathered beyond these documents"'


@dataclass(frozen=True)
class Field:
    """One documented property: its kind (how it is checked) and where the documents show it.

    Kinds: `money` (a JSON number in the currency's digits), `limit` (money that may be -1,
    "no limit"), `count` (a whole number >= 0), `quantity` (a number >= 0), `text`
    (a string), `text?` (a string or null), `when?` (string, number or null), `map`
    (a flat map of strings), `links`, `return_state`, `item_state`, `reason?`,
    `refund_state`, `order_state`, `group_state`, `list`.
    """

    kind: str
    source: str


# --- vocabularies ---------------------------------------------------------------------------------

RETURN_STATES = frozenset(
    # OMS "Update the return request" :434
    {
        "MANUAL_REFUND",
        "PENDING_REFUND",
        "INCOMPLETE",
        "COMPLETE",
        "FULL_RETURN",
        "PARTIAL_RETURN",
        "PENDING_CUSTOMER_ACTION",
    }
)
RETURN_ITEM_STATES = frozenset(
    # OMS "Update the return request" :435
    {"RETURN_NOT_REQUIRED", "AWAITING_RETURN", "PARTIAL_RETURN", "RETURNED", "INITIAL"}
)
RETURN_REASONS = frozenset(
    # OMS "Update the return request" :437 (the default reasons; the Reasons endpoints of :437-448
    # can change them, which the simulator models as `CommerceSimulator.return_reasons`)
    {"defective", "didNotLike", "didNotMeetExpectations", "incorrectColor", "incorrectItem", "incorrectSize"}
)
ORDER_STATES = frozenset(
    # OMS "Order Management REST APIs" :221 (SUBMITTED, PROCESSING); README :24-25 (the rest);
    # RRU :24 (NO_PENDING_ACTION)
    {
        "SUBMITTED",
        "PROCESSING",
        "PENDING_CUSTOMER_RETURN",
        "NO_PENDING_ACTION",
        "PENDING_MERCHANT_ACTION",
        "REMOVED",
        "FAILED",
    }
)
SHIPPING_GROUP_STATES = frozenset(
    # README :25-26; RRU :51 (INITIAL). SUBMIT :32 shows the state as a code (0): see assumptions
    {"INITIAL", "PROCESSING", "PENDING_SHIPMENT", "NO_PENDING_ACTION"}
)
REFUND_METHOD_TYPES_SEEN = frozenset({"manualRefund"})  # OMS "Update the return request" :385; RRU :199
OPS = (
    # README :31-35: "Newer Admin API releases add a required `op` field to updateReturnRequest",
    # values written in this casing. (OMS :454 names `op=initiateRefund` on the *Agent* API's
    # updateReturnRequest: not a source for the Admin API.)
    "receiveReturns",
    "initiateRefund",
    "adjustRefundAmounts",
    "markManualRefund",
    "markAsComplete",
)
CURRENCY_DIGITS_DOCUMENTED = {
    "USD": 2
}  # AGENT currency "fractionalDigits":2, "currencyCode":"USD" (:650-651)
ERROR_MODEL_FIELDS = frozenset(
    # AGENT errorModel (:715-741)
    {"devMessage", "errorCode", "errors", "message", "moreInfo", "o:errorPath", "status", "type"}
)
ORDER_NOT_FOUND = "210105"  # AGENT error codes (:713) "Specified order does not exist."

# --- updateReturnRequest, the one documented body (OMS "Update the return request" :375-428) --------

RETURN_REQUEST_FIELDS: dict[str, Field] = {
    "shippingTaxRefund": Field("money", f"{OMS_UPDATE}, :376"),
    "agentId": Field("text", f"{OMS_UPDATE}, :377"),
    "secondaryCurrencyShippingTaxRefund": Field("money", f"{OMS_UPDATE}, :378"),
    "actualShippingRefund": Field("money", f"{OMS_UPDATE}, :379"),
    "actualTaxRefund": Field("money", f"{OMS_UPDATE}, :380"),
    "otherRefund": Field("money", f"{OMS_UPDATE}, :381"),
    "secondaryCurrencyActualTaxRefund": Field("money", f"{OMS_UPDATE}, :382"),
    "refundMethodList": Field("list", f"{OMS_UPDATE}, :383-389"),
    "returnLabel": Field("text", f"{OMS_UPDATE}, :390"),
    "authorizationNumber": Field("text", f"{OMS_UPDATE}, :391"),
    "returnFee": Field("money", f"{OMS_UPDATE}, :392"),
    "requestId": Field("text", f"{OMS_UPDATE}, :393"),
    "secondaryCurrencyActualShippingRefund": Field("money", f"{OMS_UPDATE}, :394"),
    "links": Field("links", f"{OMS_UPDATE}, :395-400"),
    "state": Field("return_state", f"{OMS_UPDATE}, :401 and :434"),
    "additionalProperties": Field("map", f"{OMS_UPDATE}, :402-404; {OMS_VALIDATION}, :318-321"),
    "originOfReturn": Field("text", f"{OMS_UPDATE}, :405"),
    "trackingNumber": Field("text", f"{OMS_UPDATE}, :406"),
    "returnItemList": Field("list", f"{OMS_UPDATE}, :407-425"),
    "actualShippingSurchargeRefund": Field("money", f"{OMS_UPDATE}, :426"),
    "secondaryCurrencyActualShippingSurchargeRefund": Field("money", f"{OMS_UPDATE}, :427"),
}

RETURN_ITEM_FIELDS: dict[str, Field] = {
    "secondaryCurrencyActualTaxRefundShare": Field("money", f"{OMS_UPDATE}, :409"),
    "comments": Field("text?", f"{OMS_UPDATE}, :410 (null in the sample)"),
    "shippingGroupId": Field("text", f"{OMS_UPDATE}, :411"),
    "secondaryCurrencyActualShippingSurchargeRefundShare": Field("money", f"{OMS_UPDATE}, :412"),
    "quantityWithFractionReceived": Field("quantity", f"{OMS_UPDATE}, :413"),
    "commerceItemId": Field("text", f"{OMS_UPDATE}, :414"),
    "secondaryCurrencyActualShippingRefundShare": Field("money", f"{OMS_UPDATE}, :415"),
    "actualShippingSurchargeRefundShare": Field("money", f"{OMS_UPDATE}, :416"),
    "returnReason": Field("reason?", f"{OMS_UPDATE}, :417 and :437; null at {OMS_VALIDATION}, :284"),
    "actualShippingRefundShare": Field("money", f"{OMS_UPDATE}, :418"),
    "state": Field("item_state", f"{OMS_UPDATE}, :419 and :435"),
    "additionalProperties": Field("map", f"{OMS_UPDATE}, :420"),
    "actualTaxRefundShare": Field("money", f"{OMS_UPDATE}, :421"),
    "quantityReceived": Field("count", f"{OMS_UPDATE}, :422 (whole: :413 is the fractional one)"),
    "refundAmount": Field("money", f"{OMS_UPDATE}, :423"),
}
RETURN_ITEM_IDENTITY = ("commerceItemId", "shippingGroupId")
"""OMS "Update the return request" :411, :414: the only identifying keys a documented member
carries (it has no `id`), so they are what "enough data to match" (OMS :235) means for it."""

REFUND_METHOD_FIELDS: dict[str, Field] = {
    # The PUT sample (OMS :384-388) and the webhook's methods (RRU :196-200); nothing else,
    # in particular no payment group reference of any name.
    "refundType": Field("text", f"{OMS_UPDATE}, :385; {RRU}, :199"),
    "amount": Field("money", f"{OMS_UPDATE}, :386; {RRU}, :197"),
    "maximumRefundAmount": Field("limit", f"{RRU}, :198 (-1)"),
    "state": Field("refund_state", f"{OMS_UPDATE}, :387"),
}

# --- updateOrder (OMS "Order Management REST APIs" :221-236, "Update refund amounts" :456) --------

ORDER_FIELDS: dict[str, Field] = {
    "state": Field("order_state", f"{OMS_REST}, :221, :228"),
    "shippingGroups": Field("list", f"{OMS_REST}, :221 (components of the order, such as shipping groups)"),
    "paymentGroups": Field("list", f"{OMS_REFUNDS}, :456 (the amountCredited in the payment group)"),
}

SHIPPING_GROUP_WRITABLE: dict[str, Field] = {
    # OMS :221: the OMS changes "properties that store information about the state of ... components
    # of the order, such as shipping groups"; these are the sample's state-bearing properties.
    "state": Field("group_state", f"{OMS_SUBMIT}, :55; {RRU}, :51; {README}, :25-26"),
    "stateDetail": Field("text?", f"{OMS_SUBMIT}, :83"),
    "trackingNumber": Field("text?", f"{OMS_SUBMIT}, :46"),
    "actualShipDate": Field("when?", f"{OMS_SUBMIT}, :57"),
}
SHIPPING_GROUP_DOCUMENTED = frozenset(
    # every key of a shipping group in OMS :42-84 (= SUBMIT :19-61) and RRU :25-76
    {
        "specialInstructions",
        "id",
        "handlingInstructions",
        "trackingNumber",
        "priceInfo",
        "description",
        "state",
        "locationId",
        "actualShipDate",
        "submittedDate",
        "shipOnDate",
        "shippingMethod",
        "shippingAddress",
        "stateDetail",
        "shippingGroupClassType",
        "commerceItemRelationships",
    }
)
PAYMENT_GROUP_WRITABLE: dict[str, Field] = {
    "amountCredited": Field("money", f"{OMS_REFUNDS}, :456"),
}
PAYMENT_GROUP_DOCUMENTED = frozenset(
    # every key of a payment group in OMS :144-171 (= SUBMIT :121-148) and RRU :120-147, plus :456
    {
        "authorizationStatus",
        "currencyCode",
        "paymentId",
        "state",
        "amountAuthorized",
        "amount",
        "id",
        "phoneNumber",
        "token",
        "expirationYear",
        "expirationMonth",
        "submittedDate",
        "creditCardNumber",
        "paymentMethod",
        "billingAddress",
        "amountCredited",
    }
)
GROUP_IDENTITY = "id"
"""OMS :44, :161 (each group has an `id`); OMS :234-235: members are matched by enough data."""

# --- the `op` flavour (README :31-38) ---------------------------------------------------------------

OP_RETURN_ITEM_FIELDS: dict[str, Field] = {
    "returnItemId": Field("text", f"{README}, :36"),
    "quantityReceived": Field("count", f"{README}, :37"),
    "dispositionReason": Field("text?", f"{README}, :37"),
}
OP_ADJUST_FIELDS: dict[str, Field] = {
    "adjustedTaxRefund": Field("money", f"{README}, :37"),
    "adjustedShippingRefund": Field("money", f"{README}, :38"),
}
