"""Service-layer commands: what each inbound message does to the aggregates.

Each command runs on the writer thread inside a unit of work and returns a
small primitive answer for the HTTP layer; it raises DomainError, having
changed nothing, when the domain refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog

from domain.errors import DomainError
from domain.identity import order_uuid, return_uuid
from domain.machines import NoRefundOwed, allowed_triggers
from domain.orders import Order
from domain.policy import ReturnPolicy
from domain.refund_plan import is_exchange, needs_manual, no_refund_reason, nothing_owed, plan_refund
from domain.refunds import RefundTerms
from domain.returns import ReturnRequest
from domain.states import COMMERCE_AGENT_ACTOR, COMMERCE_WEBHOOK_ACTOR
from service.payloads import OrderPayload, ReturnPayload, settle_currency
from service.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Receipt:
    """How a webhook was taken: `created`, `updated`, `duplicate` or `stale`."""

    resource: str
    id: str
    outcome: str
    version: int


def receive_order(
    uow: UnitOfWork, payload: OrderPayload, cause: str, *, origin: str = "order-submit"
) -> Receipt:
    commerce_id = payload.snapshot["id"]
    order = uow.get(order_uuid(commerce_id), Order, expect_new=origin == "order-submit")
    if order is None:
        order = Order.submit(
            payload.snapshot,
            last_modified=payload.last_modified,
            fingerprint=payload.fingerprint,
            origin=origin,
            actor=COMMERCE_WEBHOOK_ACTOR,
            cause=cause,
        )
        uow.add(order)
        return Receipt("order", commerce_id, "created", order.version)
    if order.fingerprint == payload.fingerprint:
        return Receipt("order", commerce_id, "duplicate", order.version)
    changed = order.refresh_from_commerce(
        payload.snapshot,
        last_modified=payload.last_modified,
        fingerprint=payload.fingerprint,
        actor=COMMERCE_WEBHOOK_ACTOR,
        cause=cause,
    )
    return Receipt("order", commerce_id, "updated" if changed else "stale", order.version)


def receive_return_update(
    uow: UnitOfWork, payload: ReturnPayload, cause: str, terms: RefundTerms | None = None
) -> Receipt:
    """The embedded originating order is our copy of the order when Order Submit never came;
    an exchange's replacement order is stored as an order of its own, linked both ways.

    A return keyed by an RMA Returnflow issued is the return that RMA was issued for. With
    `terms`, an exchange Commerce reports fully received that credits nothing completes.
    """
    snapshot = _settled(uow, payload)
    existing = _known_return(uow, snapshot)
    if existing is None:
        ret = ReturnRequest.receive_request(
            snapshot,
            version_key=payload.version_key,
            fingerprint=payload.fingerprint,
            actor=COMMERCE_WEBHOOK_ACTOR,
            cause=cause,
        )
        outcome = "created"
    else:
        ret = existing
        outcome = ret.apply_commerce_update(
            snapshot,
            version_key=payload.version_key,
            fingerprint=payload.fingerprint,
            actor=COMMERCE_WEBHOOK_ACTOR,
            cause=cause,
        )
    if payload.order is not None:
        receive_order(uow, payload.order, cause, origin="return-request-update")
    order = uow.get(order_uuid(ret.order_id), Order)
    if order is not None:
        order.link_return(ret.commerce_id, actor=COMMERCE_WEBHOOK_ACTOR, cause=cause)
    if payload.replacement is not None:
        _link_replacement(uow, order, ret, payload.replacement, cause)
    if existing is None:
        uow.add(ret)
    if terms is not None and outcome in ("created", "updated"):
        complete_if_nothing_owed(uow, ret, terms, COMMERCE_WEBHOOK_ACTOR, cause)
    return Receipt("return", ret.commerce_id, outcome, ret.version)


def _link_replacement(
    uow: UnitOfWork, original: Order | None, ret: ReturnRequest, replacement: OrderPayload, cause: str
) -> None:
    """The replacement order as an order of its own (shippable, returnable), linked both ways
    (only `exchangeOf` while the original order is not known)."""
    receive_order(uow, replacement, cause, origin="exchange")
    stored = uow.get(order_uuid(replacement.snapshot["id"]), Order)
    assert stored is not None
    facts = {"return_id": ret.commerce_id, "actor": COMMERCE_WEBHOOK_ACTOR, "cause": cause}
    stored.link_exchange("exchangeOf", ret.order_id, **facts)
    if original is not None:
        original.link_exchange("replacementOrder", stored.commerce_id, **facts)


def _others(uow: UnitOfWork, order: Order) -> list[ReturnRequest]:
    return [r for r in (uow.get(return_uuid(i), ReturnRequest) for i in order.return_ids) if r is not None]


def _replacement(uow: UnitOfWork, ret: ReturnRequest) -> Order | None:
    replacement_id = ret.details.get("replacementOrderId")
    return uow.get(order_uuid(replacement_id), Order) if replacement_id else None


def complete_if_nothing_owed(
    uow: UnitOfWork, ret: ReturnRequest, terms: RefundTerms, actor: str, after: str
) -> None:
    """SPEC section 9: an exchange whose goods are all in and that credits nothing (even, or the
    shopper owes) goes to COMPLETE by itself; the transition's cause says why."""
    if ret.state != "FULL_RETURN" or not is_exchange(ret):
        return
    order = uow.get(order_uuid(ret.order_id), Order)
    if order is None:
        return
    try:
        plan = plan_refund(order, ret, _others(uow, order), terms, replacement=_replacement(uow, ret))
    except DomainError as exc:
        # the receipt stands (a refused event webhook would be lost); a person looks at the refund
        log.warning("exchange_not_planned", return_id=ret.commerce_id, reason=str(exc), cause=after)
        return
    if nothing_owed(plan):
        ret.complete_exchange(plan, no_refund_reason(ret, plan), actor=actor, after=after)


def _settled(uow: UnitOfWork, payload: ReturnPayload) -> dict[str, Any]:
    """The snapshot in its currency, each item with the shipping group it was shipped in.

    A flat return that names no currency takes the stored order's; with no stored
    order either it is refused in words (its amounts cannot be read).
    """
    snapshot = payload.snapshot
    stored = uow.get(order_uuid(snapshot["orderId"]), Order)
    if snapshot["details"].get("currency") is None:
        if stored is None:
            raise DomainError(
                f"return {snapshot['id']} names no currency and order {snapshot['orderId']} is "
                "not known yet, so its amounts cannot be read; send the order (Order Submit) "
                "first or include originatingOrder",
                code="CURRENCY_UNKNOWN",
            )
        snapshot = settle_currency(snapshot, stored.snapshot["currency"])
    order_snapshot = (
        payload.order.snapshot
        if payload.order is not None
        else (stored.snapshot if stored is not None else None)
    )
    if order_snapshot is not None and any(i["shippingGroupId"] is None for i in snapshot["returnItemList"]):
        group_of = {
            link["commerceItemId"]: g["id"] for g in order_snapshot["shippingGroups"] for link in g["items"]
        }
        items = [
            {**i, "shippingGroupId": i["shippingGroupId"] or group_of.get(i["commerceItemId"])}
            for i in snapshot["returnItemList"]
        ]
        snapshot = {**snapshot, "returnItemList": items}
    return snapshot


def _known_return(uow: UnitOfWork, snapshot: dict[str, Any]) -> ReturnRequest | None:
    """The return by its key, else by its authorization number (a return first seen without
    a requestId), else the return of the order that an RMA Returnflow issued names."""
    keys = list(
        dict.fromkeys(
            k for k in (snapshot["id"], snapshot["details"].get("authorizationNumber")) if k is not None
        )
    )
    for key in keys:
        ret = uow.get(return_uuid(key), ReturnRequest)
        if ret is not None:
            return ret
    order = uow.get(order_uuid(snapshot["orderId"]), Order)
    if order is None:
        return None
    for key in keys:
        mapped = order.issued_rmas.get(str(key))
        if mapped is not None and (found := uow.get(return_uuid(mapped), ReturnRequest)):
            return found
    for return_id in order.return_ids:
        other = uow.get(return_uuid(return_id), ReturnRequest)
        if other is not None and other.details.get("rma") in keys:
            return other
    return None


# Operator actions (SPEC section 7): each loads, decides through the aggregates, and answers the id.


def _order(uow: UnitOfWork, commerce_id: str) -> Order:
    order = uow.get(order_uuid(commerce_id), Order)
    if order is None:
        raise DomainError(f"no order {commerce_id}", code="NOT_FOUND")
    return order


def _return(uow: UnitOfWork, commerce_id: str) -> ReturnRequest:
    ret = uow.get(return_uuid(commerce_id), ReturnRequest)
    if ret is None:
        raise DomainError(f"no return {commerce_id}", code="NOT_FOUND")
    return ret


def ship(uow: UnitOfWork, order_id: str, shipment: Shipment, actor: str, cause: str) -> str:
    order = _order(uow, order_id)
    order.ship(
        shipping_group_id=shipment.shipping_group_id,
        items=shipment.items,
        tracking_number=shipment.tracking_number,
        ship_date=shipment.ship_date,
        actor=actor,
        cause=cause,
    )
    return order_id


def authorize(uow: UnitOfWork, return_id: str, request: Authorization, actor: str, cause: str) -> str:
    ret = _return(uow, return_id)
    required = None
    if request.items is not None:
        required = {ret.find_item(ref)["returnItemId"]: flag for ref, flag in request.items}
    ret.authorize(
        rma=request.rma,
        tracking_number=request.tracking_number,
        return_label=request.return_label,
        shipment_required=required,
        actor=actor,
        cause=cause,
    )
    return return_id


def receive(
    uow: UnitOfWork,
    return_id: str,
    items: list[tuple[dict[str, Any], int]],
    actor: str,
    cause: str,
    terms: RefundTerms | None = None,
) -> str:
    """Goods in; with `terms`, an exchange that credits nothing then completes by itself."""
    ret = _return(uow, return_id)
    ret.receive(items, actor=actor, cause=cause)
    if terms is not None:
        complete_if_nothing_owed(uow, ret, terms, actor, cause)
    return return_id


def refund(
    uow: UnitOfWork,
    return_id: str,
    action: str,
    amounts: dict[str, Any] | None,
    policy: ReturnPolicy,
    actor: str,
    cause: str,
) -> str:
    """initiate -> PENDING_REFUND (then MANUAL_REFUND if a person must pay it), manual, settle."""
    ret = _return(uow, return_id)
    order = _order(uow, ret.order_id)
    _refuse_when_nothing_owed(uow, ret, order, policy)
    if action == "settle":
        credited = ret.settle_refund(actor=actor, cause=cause)
        if any(Decimal(v) > 0 for v in credited.values()):
            order.credit(
                {k: v for k, v in credited.items() if Decimal(v) > 0},
                return_id=return_id,
                actor=actor,
                cause=cause,
            )
        return return_id
    plan = None
    if action == "initiate" or amounts is not None or ret.refund_plan is None:
        plan = plan_refund(order, ret, _others(uow, order), policy, amounts, _replacement(uow, ret))
    if action == "initiate":
        assert plan is not None
        ret.initiate_refund(plan, actor=actor, cause=cause)
        reasons = needs_manual(plan, policy.manual_refund_payment_methods, order)
        if reasons:
            ret.require_manual_refund(plan, "; ".join(reasons), actor=actor, cause=cause)
    elif action == "manual":
        ret.require_manual_refund(plan, "operator chose a manual refund", actor=actor, cause=cause)
    else:
        raise DomainError(f"unknown refund action {action!r}", code="INVALID_INPUT")
    return return_id


def _refuse_when_nothing_owed(uow: UnitOfWork, ret: ReturnRequest, order: Order, terms: RefundTerms) -> None:
    """A refund action on an exchange that credits nothing is a 409 that says why."""
    if not is_exchange(ret):
        return
    plan = ret.refund_plan if nothing_owed(ret.refund_plan) else None
    if plan is None and ret.refund_plan is None and ret.state not in ("COMPLETE", "INCOMPLETE"):
        try:
            candidate = plan_refund(
                order, ret, _others(uow, order), terms, replacement=_replacement(uow, ret)
            )
        except DomainError:
            return  # the action itself will say what is wrong
        plan = candidate if nothing_owed(candidate) else None
    if plan is not None:
        raise NoRefundOwed(
            no_refund_reason(ret, plan) + ": there is no refund to initiate, mark manual or settle",
            ret.state,
            allowed_triggers("return", ret.state),
        )


def commerce_changed_state(uow: UnitOfWork, return_id: str, state: str, ours: str | None, cause: str) -> bool:
    """The sync saw, on its GET before a PUT, a state someone else set at Commerce."""
    ret = uow.get(return_uuid(return_id), ReturnRequest)
    if ret is None:
        return False
    return ret.commerce_changed_state(state, ours=ours, actor=COMMERCE_AGENT_ACTOR, cause=cause)


def close(uow: UnitOfWork, return_id: str, reason: str, actor: str, cause: str) -> str:
    _return(uow, return_id).close(reason, actor=actor, cause=cause)
    return return_id


@dataclass(frozen=True)
class Shipment:
    shipping_group_id: str
    items: dict[str, int] | None
    tracking_number: str | None
    ship_date: str


@dataclass(frozen=True)
class Authorization:
    rma: str | None
    tracking_number: str | None
    return_label: str | None
    items: list[tuple[dict[str, Any], bool]] | None
