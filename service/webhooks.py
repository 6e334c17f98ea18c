"""Inbound Commerce event webhooks: verify, parse, redact, record once, acknowledge.

Commerce retries any non-2xx up to five times, so a duplicate or a stale
update is answered 200 (it was received; it simply changes nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import orjson
import structlog
from aiohttp import web

from domain.errors import DomainError
from domain.machines import IllegalTransition
from service.context import SERVICES, Services
from service.errors import ApiError
from service.operations import Receipt, receive_order, receive_return_update
from service.payloads import body_hash, parse_json, parse_order_submit, parse_return_update

log = structlog.get_logger(__name__)
T = TypeVar("T")


async def signed_body(request: web.Request, services: Services) -> bytes:
    """The raw body, only if its signature holds (or the service runs in development mode)."""
    body = await request.read()
    if services.verifier.enabled and not services.verifier.verify(body, request.headers):
        services.counters[("webhook_unauthorized", request.path)] += 1
        raise ApiError(401, "UNAUTHORIZED", "webhook signature missing or invalid")
    return body


def refused_logged(request: web.Request, cause: str, parse: Callable[[], T]) -> T:
    """Parse; a refusal is logged with the body's hash and the problems' paths, never the body."""
    try:
        return parse()
    except ApiError as exc:
        request.app[SERVICES].counters[("webhook_invalid", request.path)] += 1
        problems = exc.extra.get("errors") or [{"o:errorPath": exc.path}]
        log.warning(
            "webhook_invalid",
            path=request.path,
            cause=cause,
            code=exc.code,
            problems=len(problems),
            paths=[p.get("o:errorPath") for p in problems[:10]],
        )
        raise


def domain_refusal(exc: DomainError) -> ApiError:
    extra: dict[str, Any] = {}
    if isinstance(exc, IllegalTransition):
        extra = {"state": exc.state, "allowedTriggers": exc.allowed}
    return ApiError(409, exc.code, str(exc), extra=extra)


async def _ingest(
    request: web.Request,
    parse: Callable[[dict[str, Any]], Any],
    command: Callable[..., Receipt],
) -> web.Response:
    services = request.app[SERVICES]
    body = await signed_body(request, services)
    cause = body_hash(body)
    payload = refused_logged(request, cause, lambda: parse(parse_json(body)))
    try:
        receipt = await services.write(partial(command, payload=payload, cause=cause))
    except DomainError as exc:
        services.counters[("webhook_refused", request.path)] += 1
        log.warning("webhook_refused", path=request.path, cause=cause, reason=str(exc))
        raise domain_refusal(exc) from None
    services.counters[(f"webhook_{receipt.outcome}", request.path)] += 1
    log.info(
        "webhook_received",
        path=request.path,
        resource=receipt.resource,
        id=receipt.id,
        outcome=receipt.outcome,
        version=receipt.version,
        cause=cause,
    )
    return web.Response(
        body=orjson.dumps(
            {
                "status": receipt.outcome,
                "resource": receipt.resource,
                "id": receipt.id,
                "version": receipt.version,
            }
        ),
        content_type="application/json",
    )


async def order_submit(request: web.Request) -> web.Response:
    return await _ingest(request, parse_order_submit, receive_order)


async def return_request_update(request: web.Request) -> web.Response:
    terms = request.app[SERVICES].policy
    return await _ingest(request, parse_return_update, partial(receive_return_update, terms=terms))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/webhooks/order-submit", order_submit)
    app.router.add_post("/webhooks/return-request-update", return_request_update)
