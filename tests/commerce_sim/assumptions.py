"""Every behaviour the simulator has where Oracle's documents are silent, each with why.

The one place: code that rests on one of these names it (`# assumption A7`). Anything
the simulator does that is neither cited to a document (`documents.py`) nor listed
here is a bug in the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Assumption:
    key: str
    behaviour: str
    why: str


ASSUMPTIONS: tuple[Assumption, ...] = (
    Assumption(
        "A1",
        "Refund methods are matched by `refundType` and rank: the n-th method of a type in a body "
        "matches the n-th stored method of that type; `paymentGroupId` (or any other key) on a "
        "refund method is refused.",
        "The documented members carry only refundType, amount, maximumRefundAmount, state (OMS :384-388, "
        "RRU :196-200); refundType is the only one that can identify a member (OMS :235).",
    ),
    Assumption(
        "A2",
        "A refund method's `state` must be one of the return state names (OMS :434).",
        "The only refund method state shown is INCOMPLETE (OMS :387), itself a return state; the "
        "documents give no vocabulary of their own for refund methods.",
    ),
    Assumption(
        "A3",
        "A return item member without `commerceItemId` or `shippingGroupId` (or with null) is "
        "refused, as is a body naming the same pair twice (or the same group `id` twice).",
        "Both are in every documented member (OMS :411, :414) and nothing else identifies it; a "
        "member lacking one could match nothing, and two alike would match one stored member twice.",
    ),
    Assumption(
        "A4",
        "Money is checked by value: an amount must be a JSON number whose value fits the currency's "
        "digits (12.5 and 12.50 pass in USD, 1.005 does not). Digits are ISO 4217's (JPY, KRW 0; "
        "BHD, JOD, KWD, OMR, TND 3; otherwise 2). The currency is the order's "
        "`priceInfo.currencyCode` (a return: its originating order's), else USD.",
        "The documents give USD's 2 digits only (AGENT :650-651); JSON numbers carry no trailing "
        "zeros of their own. secondaryCurrency* figures are checked against the same digits: the "
        "documents name no secondary currency code.",
    ),
    Assumption(
        "A5",
        "Money is never negative, except `maximumRefundAmount`, which may be -1.",
        "Every documented amount is >= 0 but maximumRefundAmount: -1 (RRU :198), read as 'no limit'.",
    ),
    Assumption(
        "A6",
        "The return state never goes back: PENDING_CUSTOMER_ACTION, then PARTIAL_RETURN, then "
        "FULL_RETURN, then PENDING_REFUND or MANUAL_REFUND (either way between them), then COMPLETE; "
        "INCOMPLETE may come from any state but COMPLETE; COMPLETE and INCOMPLETE are final. A PUT "
        "(or op) that moves it back is refused with 400; an agent (`agent_set_state`) may still do it.",
        "The documents imply the order (authorized :368-401, received then refunded :430, :454-456) "
        "but give no transition table; whether Commerce refuses or accepts a step back is not said.",
    ),
    Assumption(
        "A7",
        "A return item's state never goes back: INITIAL, then AWAITING_RETURN or RETURN_NOT_REQUIRED, "
        "then PARTIAL_RETURN, then RETURNED; and its `quantityReceived` never decreases.",
        "Same reading as A6 for items (:419 at authorization, received later :430); goods received "
        "are not un-received.",
    ),
    Assumption(
        "A8",
        "An order never goes back to SUBMITTED and a shipping group never goes back to INITIAL; "
        "other order and shipping group moves are free.",
        "OMS :221 documents SUBMITTED -> PROCESSING only; README :24-26 lists names without an order.",
    ),
    Assumption(
        "A9",
        "Shipping groups: only state, stateDetail, trackingNumber, actualShipDate may change; the "
        "other documented keys are accepted only with the value Commerce holds (sent back as held); "
        "keys the documents never show are refused. Payment groups: only amountCredited may change, "
        "the same way. A group whose id matches none held is created (OMS :235) from its documented keys.",
        "OMS :221 says the OMS updates 'properties that store information about the state' of the "
        "order's components, and :456 the amountCredited; the rest is the shopper's order.",
    ),
    Assumption(
        "A10",
        "A state Commerce holds as a code (the Order Submit sample's shipping group `state: 0`, "
        "payment group `state: 1`) may be sent back unchanged; a changed state must be a documented name.",
        "The documents show both codes (OMS :55, :158) and names (RRU :24, :51) but no mapping.",
    ),
    Assumption(
        "A11",
        "`links` is accepted on updateReturnRequest (it is in the documented body, :395-400) and "
        "ignored; `requestId`, when sent, must be the return's own.",
        "Links are Commerce's to derive; a request id names the resource and cannot be renamed.",
    ),
    Assumption(
        "A12",
        "`actualShipDate` takes a string, a number (epoch ms) or null.",
        "Null in both samples; the documents show dates both as epoch ms (OMS :38) and ISO text (RRU :205).",
    ),
    Assumption(
        "A13",
        "The `op` flavour: every body needs `op` (README :31 'required'); each op takes only the "
        "fields README :36-38 pairs with it by name (receiveReturns: returnItems; "
        "adjustRefundAmounts: adjustedTaxRefund, adjustedShippingRefund; the others: nothing); "
        "receiveReturns needs at least one item, each naming an item of the return by its `id` "
        "(RRU :271) or `returnItemId` (README :27-30).",
        "README documents the field names, not which op takes which.",
    ),
    Assumption(
        "A14",
        "receiveReturns records a receipt: each `quantityReceived` is what arrived in this "
        "operation and is added to the item's received quantity; more than is still outstanding "
        "(quantityToReturn - quantityReceived) is refused. The item becomes PARTIAL_RETURN or "
        "RETURNED, the return PARTIAL_RETURN or FULL_RETURN (items RETURN_NOT_REQUIRED not counted); "
        "`dispositionReason` lands on the item's `disposition` (RRU :281).",
        "The documents do not say whether the figure is per receipt or a running total; an operation "
        "named for receiving is read as a receipt, as Oracle's ATG receiveReturnItems takes 'the "
        "quantity of the return items received'. So an op replayed receives twice, as a real one would.",
    ),
    Assumption(
        "A15",
        "adjustRefundAmounts sets actualTaxRefund and actualShippingRefund; initiateRefund moves the "
        "return to PENDING_REFUND and records, in `CommerceSimulator.issued_refunds`, a refund of "
        "Commerce's own refund method amounts (the payment groups' amountCredited are not touched); "
        "markManualRefund -> MANUAL_REFUND; markAsComplete -> COMPLETE. A6 applies to each.",
        "The op names say what they do; how Commerce books its own refund on the order is not "
        "documented (OMS :454 says only that Commerce then calculates and issues it).",
    ),
    Assumption(
        "A16",
        "A return request is stored under `requestId`, else `id`, else `authorizationNumber`; its "
        "GET renders `originatingOrder` from the order Commerce holds now.",
        "OMS :370 and :393 show the path id is the requestId; the webhook sample (RRU) has none, "
        "only authorizationNumber. One order, not a stale copy per return.",
    ),
    Assumption(
        "A17",
        "A quantity in an op body or `quantityReceived` is a whole number; `quantityWithFractionReceived` "
        "may be fractional.",
        "The fractional one exists beside it (OMS :413, :422).",
    ),
    Assumption(
        "A19",
        "An agent's edit (`agent_*`, `/_sim/agent/*`) is checked like a PUT's values: documented "
        "states, reasons, refund method keys, amounts in the currency's digits; a refused edit raises "
        "ValueError (400 over HTTP) and changes nothing. Items an agent adds may carry the webhook's "
        "keys (`id`, `quantityToReturn`, ...), as Commerce holds them (RRU :223-316); one without an "
        "`id` gets one, as an item Commerce creates has (RRU :271).",
        "An agent works inside Commerce, so Commerce never holds what the documents do not show; "
        "a test that seeds such a thing would test a world that cannot happen.",
    ),
    Assumption(
        "A18",
        "errorCodes are the simulator's own (100001 for a refused body), except 210105 for an unknown "
        "order (AGENT :713); every 400 names the JSON path in `o:errorPath` (AGENT errorModel :732-734).",
        "The Admin API's own codes for these cases are not in the documents.",
    ),
)

BY_KEY = {a.key: a for a in ASSUMPTIONS}

# --- the values the assumptions fix ----------------------------------------------------------------

CURRENCY_DIGITS = {"JPY": 0, "KRW": 0, "BHD": 3, "JOD": 3, "KWD": 3, "OMR": 3, "TND": 3}  # A4
DEFAULT_DIGITS = 2  # A4
DEFAULT_CURRENCY = "USD"  # A4

RETURN_STATE_RANK = {  # A6
    "PENDING_CUSTOMER_ACTION": 0,
    "PARTIAL_RETURN": 1,
    "FULL_RETURN": 2,
    "PENDING_REFUND": 3,
    "MANUAL_REFUND": 3,
    "COMPLETE": 4,
    "INCOMPLETE": 4,
}
RETURN_FINAL_STATES = frozenset({"COMPLETE", "INCOMPLETE"})  # A6
RETURN_ITEM_STATE_RANK = {  # A7
    "INITIAL": 0,
    "AWAITING_RETURN": 1,
    "RETURN_NOT_REQUIRED": 1,
    "PARTIAL_RETURN": 2,
    "RETURNED": 3,
}


def return_state_may_move(held: object, wanted: object) -> bool:
    """A6: forward, sideways within a rank, to INCOMPLETE from anything open; never out of a final state."""
    if held == wanted or held not in RETURN_STATE_RANK:
        return True
    if held in RETURN_FINAL_STATES:
        return False
    if wanted == "INCOMPLETE":
        return True
    return RETURN_STATE_RANK[str(wanted)] >= RETURN_STATE_RANK[str(held)]


def item_state_may_move(held: object, wanted: object) -> bool:
    """A7: forward or sideways within a rank."""
    if held == wanted or held not in RETURN_ITEM_STATE_RANK:
        return True
    return RETURN_ITEM_STATE_RANK[str(wanted)] >= RETURN_ITEM_STATE_RANK[str(held)]


def currency_digits(code: object) -> int:
    """A4: ISO 4217's minor units for the few currencies that are not 2."""
    return CURRENCY_DIGITS.get(str(code), DEFAULT_DIGITS)
