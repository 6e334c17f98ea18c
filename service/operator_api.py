"""The operator API (SPEC section 7): warehouse and customer-service actions as transitions.

Every action runs on the writer thread, so concurrent calls are applied one
after the other against the freshest aggregate; the answer is the resource as
that commit left it. A refused action answers 409 and records nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
from aiohttp import web
from pydantic import TypeAdapter

from domain.errors import DomainError
from domain.identity import order_uuid, return_uuid
from domain.orders import Order
from domain.returns import ReturnRequest
from domain.states import operator_actor
from domain.views import Json, order_view, return_view
from service import operations, operator_log
from service import operator_shapes as shapes
from service.conform import conform
from service.context import SERVICES
from service.errors import ApiError, BadRequest
from service.operator_log import SERVICE_ACTOR
from service.payloads import JsonReader, body_hash, parse_json
from service.unit_of_work import UnitOfWork
from service.webhooks import domain_refusal

STATUS_BY_CODE = {"NOT_FOUND": 404, "INVALID_INPUT": 400}


def _actor(request: web.Request) -> str:
    """`operator:<X-Operator>`, else the service credential itself (`service:api`)."""
    if "X-Operator" not in request.headers:
        return SERVICE_ACTOR
    name = request.headers["X-Operator"].strip()
    if not name or len(name) > 100 or not name.isprintable():
        raise BadRequest("X-Operator must be a printable name of at most 100 characters", path="X-Operator")
    return operator_actor(name)


async def _body(request: web.Request, shape: TypeAdapter[Any]) -> tuple[JsonReader, str]:
    """The body held to its declared shape: every problem listed, undeclared keys dropped."""
    raw = await request.read()
    return JsonReader(conform(shape, parse_json(raw or b"{}")), "$"), body_hash(raw)


def _order_then_view(command: Callable[[UnitOfWork], str]) -> Callable[[UnitOfWork], Json]:
    def run(uow: UnitOfWork) -> Json:
        order = uow.get(order_uuid(command(uow)), Order)
        assert order is not None
        return order_view(order)

    return run


def _return_then_view(command: Callable[[UnitOfWork], str]) -> Callable[[UnitOfWork], Json]:
    def run(uow: UnitOfWork) -> Json:
        ret = uow.get(return_uuid(command(uow)), ReturnRequest)
        assert ret is not None
        return return_view(ret)

    return run


async def _apply(request: web.Request, command: Callable[[UnitOfWork], Json]) -> web.Response:
    services = request.app[SERVICES]
    action = request.path.rsplit("/", 1)[-1]
    actor, subject = _actor(request), request.match_info["id"]
    try:
        view = await services.write(command)
    except DomainError as exc:
        operator_log.record(actor, action, subject, refused=exc.code)
        status = STATUS_BY_CODE.get(exc.code)
        if status is not None:
            raise ApiError(status, exc.code, str(exc)) from None
        raise domain_refusal(exc) from None
    resource = request.match_info.route.resource
    services.counters[("operator_ok", resource.canonical if resource else request.path)] += 1
    operator_log.record(actor, action, subject)
    return web.Response(body=orjson.dumps(view), content_type="application/json")


def _item_ref(item: JsonReader) -> dict[str, Any]:
    ref = {"returnItemId": item.opt_ident("returnItemId"), "commerceItemId": item.opt_ident("commerceItemId")}
    if ref["returnItemId"] is None and ref["commerceItemId"] is None:
        raise BadRequest(f"{item.path} needs commerceItemId or returnItemId", path=item.path)
    return ref


def _positive(item: JsonReader, key: str) -> int:
    value = item.integer(key, default=-1)
    if value <= 0:
        raise BadRequest(f"{item.path}.{key} must be a positive integer", path=f"{item.path}.{key}")
    return value


async def post_shipment(request: web.Request) -> web.Response:
    body, cause = await _body(request, shapes.SHIPMENT)
    items = None
    if body.data.get("items") is not None:
        items = {}
        for item in body.objects("items"):
            items[item.ident("commerceItemId")] = _positive(item, "quantity")
    shipment = operations.Shipment(
        shipping_group_id=body.ident("shippingGroupId"),
        items=items,
        tracking_number=body.text("trackingNumber"),
        ship_date=body.time("shipDate") or datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    )
    command = partial(
        operations.ship,
        order_id=request.match_info["id"],
        shipment=shipment,
        actor=_actor(request),
        cause=cause,
    )
    return await _apply(request, _order_then_view(command))


async def post_authorize(request: web.Request) -> web.Response:
    body, cause = await _body(request, shapes.AUTHORIZATION)
    items = None
    if body.data.get("items") is not None:
        items = [(_item_ref(i), i.boolean("shipmentRequired", True)) for i in body.objects("items")]
    authorization = operations.Authorization(
        rma=body.text("rma"),
        tracking_number=body.text("trackingNumber"),
        return_label=body.text("returnLabel"),
        items=items,
    )
    command = partial(
        operations.authorize,
        return_id=request.match_info["id"],
        request=authorization,
        actor=_actor(request),
        cause=cause,
    )
    return await _apply(request, _return_then_view(command))


async def post_receive(request: web.Request) -> web.Response:
    body, cause = await _body(request, shapes.RECEIPT)
    items = [(_item_ref(i), _positive(i, "quantity")) for i in body.objects("items", required=True)]
    if not items:
        raise BadRequest("$.items must name at least one item", path="$.items")
    command = partial(
        operations.receive,
        return_id=request.match_info["id"],
        items=items,
        actor=_actor(request),
        cause=cause,
        terms=request.app[SERVICES].policy,
    )
    return await _apply(request, _return_then_view(command))


async def post_refund(request: web.Request) -> web.Response:
    body, cause = await _body(request, shapes.REFUND)
    action = body.text("action")
    if action not in ("initiate", "manual", "settle"):
        raise BadRequest("$.action must be initiate, manual or settle", path="$.action")
    amounts = body.obj("amounts", required=False)
    command = partial(
        operations.refund,
        return_id=request.match_info["id"],
        action=action,
        amounts=amounts.data if amounts else None,
        policy=request.app[SERVICES].policy,
        actor=_actor(request),
        cause=cause,
    )
    return await _apply(request, _return_then_view(command))


async def post_close(request: web.Request) -> web.Response:
    body, cause = await _body(request, shapes.CLOSING)
    reason = body.text("reason")
    if not reason or not reason.strip():
        raise BadRequest("$.reason is required", path="$.reason")
    command = partial(
        operations.close,
        return_id=request.match_info["id"],
        reason=reason.strip(),
        actor=_actor(request),
        cause=cause,
    )
    return await _apply(request, _return_then_view(command))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/orders/{id}/shipments", post_shipment)
    app.router.add_post("/returns/{id}/authorize", post_authorize)
    app.router.add_post("/returns/{id}/receive", post_receive)
    app.router.add_post("/returns/{id}/refund", post_refund)
    app.router.add_post("/returns/{id}/close", post_close)
