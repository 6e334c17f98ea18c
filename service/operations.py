"""Service-layer commands: what each inbound message does to the aggregates.

Each command runs on the writer thread inside a unit of work and returns a
small primitive answer for the HTTP layer; it raises DomainError, having
changed nothing, when the domain refuses.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.identity import order_uuid, return_uuid
from domain.orders import Order
from domain.returns import ReturnRequest
from domain.states import COMMERCE_WEBHOOK_ACTOR
from service.payloads import OrderPayload, ReturnPayload
from service.store import UnitOfWork


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
    order = uow.get(order_uuid(commerce_id), Order)
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


def receive_return_update(uow: UnitOfWork, payload: ReturnPayload, cause: str) -> Receipt:
    """The embedded originating order is our copy of the order when Order Submit never came."""
    commerce_id = payload.snapshot["id"]
    existing = uow.get(return_uuid(commerce_id), ReturnRequest)
    if existing is None:
        ret = ReturnRequest.receive_request(
            payload.snapshot,
            version_key=payload.version_key,
            fingerprint=payload.fingerprint,
            actor=COMMERCE_WEBHOOK_ACTOR,
            cause=cause,
        )
        outcome = "created"
    else:
        ret = existing
        outcome = ret.apply_commerce_update(
            payload.snapshot,
            version_key=payload.version_key,
            fingerprint=payload.fingerprint,
            actor=COMMERCE_WEBHOOK_ACTOR,
            cause=cause,
        )
    if payload.order is not None:
        receive_order(uow, payload.order, cause, origin="return-request-update")
    order = uow.get(order_uuid(ret.order_id), Order)
    if order is not None:
        order.link_return(commerce_id, actor=COMMERCE_WEBHOOK_ACTOR, cause=cause)
    if existing is None:
        uow.add(ret)
    return Receipt("return", commerce_id, outcome, ret.version)
