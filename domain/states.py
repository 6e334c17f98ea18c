"""Commerce's own vocabularies, so every layer spells states the way Commerce does."""

from __future__ import annotations

from enum import StrEnum


class ReturnState(StrEnum):
    PENDING_CUSTOMER_ACTION = "PENDING_CUSTOMER_ACTION"
    PARTIAL_RETURN = "PARTIAL_RETURN"
    FULL_RETURN = "FULL_RETURN"
    PENDING_REFUND = "PENDING_REFUND"
    MANUAL_REFUND = "MANUAL_REFUND"
    COMPLETE = "COMPLETE"
    INCOMPLETE = "INCOMPLETE"


class ReturnItemState(StrEnum):
    INITIAL = "INITIAL"
    AWAITING_RETURN = "AWAITING_RETURN"
    RETURN_NOT_REQUIRED = "RETURN_NOT_REQUIRED"
    PARTIAL_RETURN = "PARTIAL_RETURN"
    RETURNED = "RETURNED"


class OrderState(StrEnum):
    SUBMITTED = "SUBMITTED"
    PROCESSING = "PROCESSING"
    PENDING_CUSTOMER_RETURN = "PENDING_CUSTOMER_RETURN"
    NO_PENDING_ACTION = "NO_PENDING_ACTION"
    PENDING_MERCHANT_ACTION = "PENDING_MERCHANT_ACTION"
    REMOVED = "REMOVED"
    FAILED = "FAILED"


class ValidationContext(StrEnum):
    INITIATE_RETURN = "Initiate_Return"
    CALCULATE_REFUND_RETURN = "CalculateRefund_Return"
    SUBMIT_RETURN = "Submit_Return"
    CUSTOM_RETURN = "Custom_Return"
    INITIATE_EXCHANGE = "Initiate_Exchange"
    SUBMIT_EXCHANGE = "Submit_Exchange"
    PROCESS_EXCHANGE = "Process_Exchange"


SHIPPING_GROUP_STATES: dict[int, str] = {
    0: "INITIAL",
    1: "PROCESSING",
    2: "PENDING_REMOVE",
    3: "REMOVED",
    4: "FAILED",
    5: "PENDING_SHIPMENT",
    6: "NO_PENDING_ACTION",
    7: "PENDING_MERCHANT_ACTION",
}
"""Order Submit sends shipping group states as ATG's integer codes; the Admin API uses names."""

PAYMENT_GROUP_STATES: dict[int, str] = {
    0: "INITIAL",
    1: "AUTHORIZED",
    2: "AUTHORIZE_FAILED",
    3: "SETTLED",
    4: "SETTLE_FAILED",
    5: "REMOVED",
    6: "CREDITED",
    7: "CREDIT_FAILED",
}


def state_name(value: object, codes: dict[int, str]) -> str | None:
    """Commerce mixes integer codes and names for the same field; keep names."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return codes.get(value, f"STATE_{value}")
    return str(value)


COMMERCE_WEBHOOK_ACTOR = "commerce-webhook"
COMMERCE_AGENT_ACTOR = "commerce:agent"
"""Someone at Commerce (an agent, the shopper) whose change we saw on a GET, not a webhook."""


def operator_actor(name: str) -> str:
    return f"operator:{name}"


def kafka_actor(topic: str) -> str:
    return f"kafka:{topic}"
