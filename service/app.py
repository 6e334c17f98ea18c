"""The aiohttp application factory: middleware, routes, and the writer's lifetime."""

from __future__ import annotations

import asyncio
import hmac
import itertools
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import structlog
from aiohttp import web
from eventsourcing.persistence import InterfaceError, OperationalError

from service import api_description, console, operator_api, validation, webhooks
from service.answer_memo import AnswerMemo
from service.background import Background
from service.config import Settings, load_policy
from service.context import SERVICES, Services
from service.errors import ApiError, error_response
from service.metrics import METRICS, AppMetrics
from service.queries import Queries
from service.signatures import SignatureVerifier
from service.state_ages import ReturnAges
from service.store import EventStore, open_store
from service.worker_metrics import WorkerMetrics
from service.writer import StoreContended, Writer

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/console"})
_ID_PREFIX = secrets.token_hex(4)
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """Unique across processes (random prefix) without a getrandom syscall per request."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"


@web.middleware
async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request: a request id bound to its log lines and echoed back, the operator API's
    bearer token, errors in Commerce's errorModel, its latency in the route's histogram. One
    middleware for all four, since each layer is paid by every request, the function webhook
    Commerce waits on included."""
    request_id = request.headers.get("X-Request-Id") or new_request_id()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    try:
        _authorize(request)
        response = await handler(request)
    except ApiError as exc:
        response = error_response(exc)
    except web.HTTPException as exc:
        response = error_response(_http_error(exc))
    except (StoreContended, OperationalError, InterfaceError) as exc:
        response = _busy(exc)
    except Exception:
        log.exception("unhandled_error", path=request.path)
        response = error_response(ApiError(500, "INTERNAL_ERROR", "internal error"))
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    response.headers["X-Request-Id"] = request_id
    request.app[METRICS].requests.observe(request, response.status, time.perf_counter() - started)
    if response.status >= 400:
        log.info(
            "request_failed",
            request_id=request_id,
            method=request.method,
            path=request.path,
            status=response.status,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )
    return response


def _busy(exc: Exception) -> web.Response:
    """Contention or a store out of reach: nothing was recorded, and trying again is right
    (Commerce retries an event webhook on any non-2xx; an operator's client may too)."""
    if isinstance(exc, StoreContended):
        error = ApiError(
            503,
            "WRITE_CONTENDED",
            "other writers kept changing the same records; nothing was recorded, try again",
        )
    else:
        log.warning("store_unavailable", error=repr(exc))
        error = ApiError(
            503, "STORE_UNAVAILABLE", "the event store is unreachable; nothing was recorded, try again"
        )
    response = error_response(error)
    response.headers["Retry-After"] = "1"
    return response


def _http_error(exc: web.HTTPException) -> ApiError:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return ApiError(413, "PAYLOAD_TOO_LARGE", "request body exceeds the configured limit")
    if isinstance(exc, web.HTTPNotFound):
        return ApiError(404, "NOT_FOUND", "no such endpoint")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return ApiError(405, "METHOD_NOT_ALLOWED", f"{exc.method} is not allowed here")
    return ApiError(exc.status, exc.reason.upper().replace(" ", "_"), exc.reason)


def _authorize(request: web.Request) -> None:
    """Bearer token on the operator and query API; webhooks authenticate by signature."""
    if request.path.startswith(("/webhooks/", "/console/")) or request.path in OPEN_PATHS:
        return  # the console signs its operators in itself (service/console_auth.py)
    token = request.app[SERVICES].settings.api_token
    if token is None:
        return
    offered = request.headers.get("Authorization", "")
    scheme, _, credential = offered.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(credential.strip().encode(), token.encode()):
        raise ApiError(401, "UNAUTHORIZED", "missing or invalid bearer token")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _as_of(request: web.Request) -> datetime | None:
    raw = request.query.get("as_of")
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "INVALID_INPUT", "as_of must be an ISO-8601 time", path="as_of") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _found(document: Any, kind: str, commerce_id: str) -> web.Response:
    if document is None:
        raise ApiError(404, "NOT_FOUND", f"no {kind} {commerce_id}")
    return _json(document)


async def get_order(request: web.Request) -> web.Response:
    oid = request.match_info["id"]
    queries = request.app[SERVICES].queries
    return _found(await asyncio.to_thread(queries.order, oid), "order", oid)


async def get_return(request: web.Request) -> web.Response:
    rid = request.match_info["id"]
    queries = request.app[SERVICES].queries
    return _found(await asyncio.to_thread(queries.return_request, rid), "return", rid)


async def get_order_history(request: web.Request) -> web.Response:
    oid = request.match_info["id"]
    queries = request.app[SERVICES].queries
    events = await asyncio.to_thread(queries.order_history, oid, _as_of(request))
    return _found(None if events is None else {"events": events}, "order", oid)


async def get_return_history(request: web.Request) -> web.Response:
    rid = request.match_info["id"]
    queries = request.app[SERVICES].queries
    events = await asyncio.to_thread(queries.return_history, rid, _as_of(request))
    return _found(None if events is None else {"events": events}, "return", rid)


async def healthz(request: web.Request) -> web.Response:
    """`worker`: which of `serve --workers N` answered (its `pid` too)."""
    return _json({"status": "ok", "worker": request.app[SERVICES].settings.worker, "pid": os.getpid()})


async def readyz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        position = await asyncio.to_thread(services.store.recorder.max_notification_id)
    except Exception as exc:
        return _json({"status": "unavailable", "store": type(exc).__name__}, status=503)
    return _json({"status": "ready", "notificationId": position or 0})


def create_app(settings: Settings, store: EventStore | None = None) -> web.Application:
    """Build the service; the caller owns `store` if it passes one in."""
    settings.check()
    policy = load_policy(settings.policy_path)
    own_store = store is None
    store = store or open_store(settings.store)
    writer = Writer(store, cache_entries=settings.cache_entries)
    services = Services(
        settings=settings,
        store=store,
        writer=writer,
        queries=Queries(store),
        verifier=SignatureVerifier(settings.webhook_secrets, settings.webhook_basic_auth),
        answers=AnswerMemo(writer.committed, capacity=settings.cache_entries),
        policy=policy,
    )
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[edge],
    )
    app[SERVICES] = services
    app[METRICS] = AppMetrics(services.counters, lambda: writer.stats)
    shared = None
    if settings.metrics_dir is not None:
        shared = WorkerMetrics(Path(settings.metrics_dir), settings.worker, app[METRICS].text)
        app[METRICS].workers = shared
    validation.add_routes(app)
    if settings.role == "all":
        webhooks.add_routes(app)
        operator_api.add_routes(app)
        console.add_routes(app)
        app.router.add_get("/orders/{id}", get_order)
        app.router.add_get("/orders/{id}/history", get_order_history)
        app.router.add_get("/returns/{id}", get_return)
        app.router.add_get("/returns/{id}/history", get_return_history)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", app[METRICS].handler)
    api_description.add_routes(app)

    duties = settings.role == "all" and settings.worker == 0
    background = Background(settings, store, writer) if duties else None
    ages = ReturnAges(settings.projections_database) if duties else None
    if ages is not None:
        app[METRICS].registry.register(ages)

    stopping = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    async def start(_: web.Application) -> None:
        writer.start()
        if shared is not None:
            tasks.append(asyncio.create_task(shared.run(stopping)))
        if background is not None:
            await background.start()
        if settings.development_mode:
            log.warning(
                "DEVELOPMENT_MODE",
                unsigned_webhooks=not settings.webhook_secrets,
                open_api=not settings.api_token,
                host=settings.host,
                advice="set RETURNFLOW_WEBHOOK_SECRETS and RETURNFLOW_API_TOKEN in production",
            )

    async def stop(_: web.Application) -> None:
        stopping.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        if background is not None:
            await background.close()
        if ages is not None:
            ages.close()
        await asyncio.to_thread(writer.stop)
        if own_store:
            store.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app
