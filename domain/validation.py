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
    exchange_id: str | None = None
    """Process_Exchange: the one exchange this answer approves (or would, once its goods are in)."""

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
    fulfilled: frozenset[str] = frozenset(),
) -> RequestVerdict:
    """`asked` None means Commerce truncated the list: answer for every item of the order.

    `rma`: the authorization number Commerce already holds for this request, if any.
    `fulfilled`: exchanges whose replacement orders have shipped (no longer open).
    """
    if order is None:
        items = [
            ItemAnswer(a.commerce_item_id, a.shipping_group_id, a.quantity, not_found(a.commerce_item_id))
            for a in asked or []
        ]
        return RequestVerdict(
            order_id, items, f"Order {order_id} was not found", NonReturnableReason.NOT_FOUND
        )
    chosen = (
        exchange_to_process(order, returns, return_id, fulfilled) if context == "Process_Exchange" else None
    )
    exclude = chosen.commerce_id if isinstance(chosen, ReturnRequest) else return_id
    counts = count_returns(returns, exclude=exclude)
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
    exchange_id = None
    if context == "Process_Exchange" and refusal is None:
        if isinstance(chosen, str):
            refusal, code = chosen, NonReturnableReason.OTHER
        else:
            exchange_id = chosen.commerce_id if chosen is not None else None
            lifecycle_facts["goods_received"] = chosen is not None and goods_in(chosen)
    result = RequestVerdict(
        order_id, answers, refusal, code, refund, lifecycle_facts, exchange_id=exchange_id
    )
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


def goods_in(ret: ReturnRequest) -> bool:
    """Every unit that has to come back has come back."""
    return ret.state in RECEIVED_STATES or receipt_facts(ret.items)["all_received"]


def is_exchange(ret: ReturnRequest) -> bool:
    return ret.process_name.strip().lower() == "exchange"


def exchange_to_process(
    order: Order, returns: Sequence[ReturnRequest], return_id: str | None, fulfilled: frozenset[str]
) -> ReturnRequest | str | None:
    """The exchange a Process_Exchange question is about, or why none can be approved.

    Named (by its id, authorization number or an RMA Returnflow issued): that exchange and no
    other. Unnamed: only when exactly one open exchange of the order (not closed incomplete,
    replacement not yet shipped) has its goods received; several is a refusal in words, none
    is None (the lifecycle then refuses: the goods are not in).
    """
    if return_id is not None:
        mapped = order.issued_rmas.get(return_id)
        named = [
            r
            for r in returns
            if return_id in (r.commerce_id, r.details.get("authorizationNumber"), r.details.get("rma"))
            or r.commerce_id == mapped
        ]
        if not named:
            return f"Order {order.commerce_id} has no exchange {return_id}"
        ret = named[0]
        if not is_exchange(ret):
            return f"{ret.commerce_id} is a return ({ret.process_name}), not an exchange: nothing to fulfil"
        if ret.state == "INCOMPLETE":
            return f"Exchange {ret.commerce_id} was closed incomplete: nothing to fulfil"
        return ret
    open_ = [
        r for r in returns if is_exchange(r) and r.state != "INCOMPLETE" and r.commerce_id not in fulfilled
    ]
    ready = [r for r in open_ if goods_in(r)]
    if len(ready) <= 1:
        return ready[0] if ready else None
    return (
        f"Order {order.commerce_id} has {len(ready)} exchanges with their goods received"
        f" ({', '.join(r.commerce_id for r in ready)}): name the one to fulfil"
    )
