"""Judging a Return Request Validation question: per item, per request, and the refund.

Pure: given the stored order, its returns, the policy and the time, answer what
Commerce asked. The service layer turns the verdict into Commerce's JSON and
records it on the order's lifecycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from domain.eligibility import count_returns, item_facts, order_money
from domain.orders import Order
from domain.policy import ItemVerdict, Kind, NonReturnableReason, ReturnPolicy, evaluate_item, not_found
from domain.refunds import RefundCalculation, ReturnSelection, calculate_refund
from domain.returns import ReturnRequest, receipt_facts

SUBMIT_CONTEXTS = frozenset({"Submit_Return", "Submit_Exchange", "CalculateRefund_Return"})
RECEIVED_STATES = frozenset({"FULL_RETURN", "PENDING_REFUND", "MANUAL_REFUND", "COMPLETE"})


@dataclass(frozen=True)
class AskedItem:
    commerce_item_id: str
    shipping_group_id: str | None
    quantity: int


@dataclass(frozen=True)
class ItemAnswer:
    commerce_item_id: str
    shipping_group_id: str | None
    quantity: int
    verdict: ItemVerdict


@dataclass(frozen=True)
class RequestVerdict:
    order_id: str
    items: list[ItemAnswer]
    refusal: str | None = None
    refusal_code: NonReturnableReason | None = None
    refund: RefundCalculation | None = None
    lifecycle_facts: dict[str, Any] = field(default_factory=dict)
    rma: str | None = None
    """The return authorization the answer carries: the one an operator recorded on the return,
    else the one the policy issues for this context."""
    tracking_number: str | None = None
    return_label: str | None = None

    @property
    def nonreturnable(self) -> bool:
        return self.refusal is not None or not any(a.verdict.returnable for a in self.items)

    @property
    def reason(self) -> tuple[NonReturnableReason | None, str | None]:
        if self.refusal is not None:
            return self.refusal_code, self.refusal
        if self.nonreturnable:
            first = next((a.verdict for a in self.items if not a.verdict.returnable), None)
            if first is None:
                return NonReturnableReason.OTHER, "Nothing in this request can be returned"
            return first.reason, first.text
        return None, None


def judge(
    context: str,
    order_id: str,
    order: Order | None,
    returns: Sequence[ReturnRequest],
    asked: Sequence[AskedItem] | None,
    policy: ReturnPolicy,
    now: datetime,
    return_id: str | None = None,
    rma: str | None = None,
) -> RequestVerdict:
    """`asked` None means Commerce truncated the list: answer for every item of the order.

    `rma`: the authorization number Commerce already holds for this request, if any.
    """
    if order is None:
        items = [
            ItemAnswer(a.commerce_item_id, a.shipping_group_id, a.quantity, not_found(a.commerce_item_id))
            for a in asked or []
        ]
        return RequestVerdict(
            order_id, items, f"Order {order_id} was not found", NonReturnableReason.NOT_FOUND
        )
    counts = count_returns(returns, exclude=return_id)
    facts = item_facts(order, counts)
    kind: Kind = "exchange" if context.endswith("_Exchange") else "return"
    wanted = list(asked) if asked is not None else [AskedItem(ci, None, 0) for ci in facts]
    answers = []
    for item in wanted:
        fact = facts.get(item.commerce_item_id)
        verdict = (
            evaluate_item(policy, fact, now, kind) if fact is not None else not_found(item.commerce_item_id)
        )
        answers.append(ItemAnswer(item.commerce_item_id, item.shipping_group_id, item.quantity, verdict))
    refusal, code = _over_asked(context, answers)
    refund = None
    if refusal is None and context == "CalculateRefund_Return":
        selection = {a.commerce_item_id: a.quantity for a in answers if a.quantity > 0}
        if selection:
            refund = calculate_refund(
                order_money(order),
                ReturnSelection(
                    quantities=selection,
                    already_returned={
                        ci: max(0, min(f.quantity_returned, f.quantity_ordered - selection.get(ci, 0)))
                        for ci, f in facts.items()
                    },
                    already_credited=order.credited_amounts(),
                ),
                policy,
            )
    lifecycle_facts: dict[str, Any] = {}
    if context == "Process_Exchange":
        lifecycle_facts["goods_received"] = goods_received(returns, return_id)
    result = RequestVerdict(order_id, answers, refusal, code, refund, lifecycle_facts)
    if result.nonreturnable:
        return result
    recorded = _authorized(returns, return_id)
    issued = policy.return_authorization(context, order_id, return_id, len(order.return_ids) + 1)
    held = rma or recorded.get("rma") or (issued[0] if issued else None)
    label = recorded.get("returnLabel") or (
        policy.label_for(held, order_id) if issued is not None and held else None
    )
    return replace(result, rma=held, tracking_number=recorded.get("trackingNumber"), return_label=label)


def _authorized(returns: Sequence[ReturnRequest], return_id: str | None) -> dict[str, str]:
    """What an operator's authorize recorded on this return (RMA, carrier tracking number,
    label): every later answer about it repeats them, whatever the policy issues."""
    for ret in returns:
        if return_id is not None and ret.commerce_id == return_id:
            return {
                k: str(ret.details[k]) for k in ("rma", "trackingNumber", "returnLabel") if ret.details.get(k)
            }
    return {}


def _over_asked(context: str, answers: Sequence[ItemAnswer]) -> tuple[str | None, NonReturnableReason | None]:
    """Submitting more than is available (or a non-returnable item) is refused outright."""
    if context not in SUBMIT_CONTEXTS:
        return None, None
    for answer in answers:
        if answer.quantity <= 0:
            continue
        if not answer.verdict.returnable:
            return (
                f"{answer.commerce_item_id}: {answer.verdict.text}",
                answer.verdict.reason or NonReturnableReason.OTHER,
            )
        if answer.quantity > answer.verdict.quantity_available:
            return (
                f"{answer.commerce_item_id}: asked for {answer.quantity}, "
                f"only {answer.verdict.quantity_available} can be returned",
                NonReturnableReason.OTHER,
            )
    return None, None


def goods_received(returns: Sequence[ReturnRequest], return_id: str | None) -> bool:
    """The exchange's returned goods are in: by its id, else any exchange of the order."""
    candidates = [r for r in returns if return_id is None or r.commerce_id == return_id]
    if return_id is None:
        candidates = [r for r in candidates if r.process_name.lower() == "exchange"]
    return any(r.state in RECEIVED_STATES or receipt_facts(r.items)["all_received"] for r in candidates)
