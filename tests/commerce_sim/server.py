"""A stand-in for Oracle Commerce's Admin API read from the documents, for tests and benchmarks.

- `POST /ccadmin/v1/login` (form `grant_type=client_credentials`, `Authorization: Bearer
  <app key>`) and `POST /ccadmin/v1/refresh` (seeds/README.md :21-23); tokens expire after
  `token_ttl_s`, and an expired or unknown token gets 401 on every API call.
- `PUT /ccadmin/v1/returnRequests/{id}` (updateReturnRequest) and `PUT /ccadmin/v1/orders/{id}`
  (updateOrder): what a body may hold and do is `rules.py` (classic) and `ops.py` (the `op`
  flavour), from `documents.py`; where the documents are silent, `assumptions.py`. A refused
  body is a 400 errorModel naming the JSON path, and changes nothing.
- `GET` of both, with a token like any API call: what Commerce holds now.
- An agent's edits between our calls (`agent_console.py`; over HTTP, `control.py` under `/_sim/`).
- Every request lands in `calls`; faults (429 with Retry-After, 5xx, a 4xx errorModel,
  latency, a dropped connection) for the next N calls, optionally under a path prefix, from
  Python or over `/_sim/faults` (also `/__sim/faults`).
- Its own process (`python -m tests.commerce_sim serve --port P`, or
  `python -m tests.commerce_sim.server --port P --latency-ms 20` for benchmarks), seeded over
  `POST /_sim/seed` and inspected over `GET /_sim/state` and `GET /_sim/calls` (or `/__sim/`).
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import secrets
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from tests.commerce_sim import documents as D
from tests.commerce_sim import ops, rules
from tests.commerce_sim.agent_console import AgentConsole
from tests.commerce_sim.control import add_control_routes
from tests.commerce_sim.edits import Edit
from tests.commerce_sim.ops import IssuedRefund, check_op_body
from tests.commerce_sim.rules import Json, Refused

API = "/ccadmin/v1/"
LOGIN = "/ccadmin/v1/login"
REFRESH = "/ccadmin/v1/refresh"
SIM_PREFIX = "/__sim/"
CONTROL_PREFIX = "/_sim/"
"""The simulator's own endpoints (never under /ccadmin): `/_sim/...`, and `/__sim/...` as before."""
FAULTS_PATH = "/__sim/faults"
CALLS_PATH = "/__sim/calls"
SEED_PATH = "/__sim/seed"
STATE_PATH = "/__sim/state"

ERROR_CODES = {
    400: "100001",
    401: "100002",
    404: "100404",
    405: "100005",
    429: "100029",
    500: "100050",
    502: "100052",
    503: "100053",
    504: "100054",
}


def error_model(
    status: int, message: str, code: str | None = None, path: str | None = None
) -> dict[str, str]:
    """Commerce's errorModel (AGENT :715-741): string errorCode and status, a message, and where
    the error is (`o:errorPath`) when a body is refused (A18)."""
    model = {
        "errorCode": code or ERROR_CODES.get(status, f"1000{status}"),
        "message": message,
        "status": str(status),
    }
    if path is not None:
        model["o:errorPath"] = path
    return model


def error_response(
    status: int,
    message: str,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    *,
    path: str | None = None,
) -> web.Response:
    return web.Response(
        status=status,
        content_type="application/json",
        headers=headers,
        body=orjson.dumps(error_model(status, message, code, path)),
    )


def _json(document: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, content_type="application/json", body=orjson.dumps(document))


# --- recording and faults -------------------------------------------------------------------------


@dataclass
class Fault:
    """The next `remaining` matching calls: `status` (errorModel) and/or extra latency.

    status 0 with no latency drops the connection without an answer.
    """

    status: int | None
    remaining: int = 1
    prefix: str = ""
    retry_after: float | None = None
    code: str | None = None
    message: str | None = None
    latency_ms: float = 0.0

    def applies(self, path: str) -> bool:
        if self.remaining <= 0:
            return False
        if self.prefix:
            return path.startswith(self.prefix)
        return path.startswith(API) and path not in (LOGIN, REFRESH)


@dataclass
class Call:
    """One request as the simulator saw it; `attempt` counts requests to the same method+path."""

    method: str
    path: str
    body: Any
    status: int
    at: float
    attempt: int = 1
    raw: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    fault: bool = False

    @property
    def time(self) -> float:
        return self.at


def _retry_after_header(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def _decode(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if content_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


SIMULATOR_KEY: web.AppKey[CommerceSimulator] = web.AppKey("commerce_simulator")


@dataclass
class CommerceSimulator(AgentConsole):
    """The simulated Commerce instance: state, tokens, recorded calls, faults; `start()` serves it."""

    app_key: str = "sim-app-key"
    flavour: str = "classic"
    token_ttl_s: float = 300.0
    latency_ms: float = 0.0
    host: str = "127.0.0.1"
    port: int = 0
    calls: list[Call] = field(default_factory=list)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    returns: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    logins: int = 0
    refreshes: int = 0
    agent_log: list[Edit] = field(default_factory=list)
    seeded_credits: dict[str, Decimal] = field(default_factory=dict)
    return_reasons: frozenset[str] = D.RETURN_REASONS
    issued_refunds: list[IssuedRefund] = field(default_factory=list)
    refusals: list[Json] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._tokens: dict[str, float] = {}
        self._attempts: Counter[tuple[str, str]] = Counter()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("the simulator is not started")
        return f"http://{self.host}:{self.port}"

    # --- test controls -----------------------------------------------------------------------

    def seed_order(self, order: dict[str, Any]) -> None:
        """What Commerce holds for an order (an Order Submit body's `order`, say)."""
        ident = str(order["id"])
        self.orders[ident] = copy.deepcopy(order)
        for group in order.get("paymentGroups") or []:
            if isinstance(group, dict) and group.get("id") is not None:
                credited = Decimal(str(group.get("amountCredited") or 0))
                self.seeded_credits[f"orders/{ident}/{group['id']}"] = credited

    def seed_return(self, return_request: dict[str, Any]) -> str:
        """Stored under `requestId`, else `id`, else `authorizationNumber` (A16); returns that id."""
        ident = str(
            return_request.get("requestId")
            or return_request.get("id")
            or return_request["authorizationNumber"]
        )
        self.returns[ident] = copy.deepcopy(return_request)
        return ident

    def order(self, order_id: str) -> dict[str, Any]:
        return copy.deepcopy(self.orders[order_id])

    def return_request(self, return_id: str) -> dict[str, Any]:
        return copy.deepcopy(self.returns[return_id])

    def fail_next(
        self,
        status: int,
        times: int = 1,
        *,
        prefix: str = "",
        retry_after: float | None = None,
        code: str | None = None,
        message: str | None = None,
        latency_ms: float = 0.0,
    ) -> Fault:
        """The next `times` API calls (under `prefix`, if given) answer `status` instead."""
        fault = Fault(status, times, prefix, retry_after, code, message, latency_ms)
        self.faults.append(fault)
        return fault

    def delay_next(self, latency_ms: float, times: int = 1, *, prefix: str = "") -> Fault:
        """The next `times` API calls are answered normally, `latency_ms` late."""
        fault = Fault(None, times, prefix, latency_ms=latency_ms)
        self.faults.append(fault)
        return fault

    def drop_next(self, times: int = 1, *, prefix: str = "") -> Fault:
        """The next `times` API calls lose their connection without an answer."""
        return self.fail_next(0, times, prefix=prefix)

    def clear_faults(self) -> None:
        self.faults.clear()

    @property
    def issued_tokens(self) -> list[str]:
        return list(self._tokens)

    def expire_tokens(self) -> None:
        self._tokens = dict.fromkeys(self._tokens, 0.0)

    def calls_to(self, prefix: str = API, method: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.path.startswith(prefix) and (method is None or c.method == method)]

    def puts(self, prefix: str = API) -> list[Call]:
        """The PUTs under `prefix` that Commerce accepted."""
        return [c for c in self.calls_to(prefix, "PUT") if 200 <= c.status < 300]

    # --- lifecycle ---------------------------------------------------------------------------

    def create_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app[SIMULATOR_KEY] = self
        app.router.add_post(LOGIN, self._login)
        app.router.add_post(REFRESH, self._refresh)
        for resource in ("orders", "returnRequests"):
            app.router.add_put(f"{API}{resource}/{{id}}", self._put)
            app.router.add_get(f"{API}{resource}/{{id}}", self._get)
        for prefix in (SIM_PREFIX, CONTROL_PREFIX):
            app.router.add_get(f"{prefix}faults", self._list_faults)
            app.router.add_post(f"{prefix}faults", self._add_fault)
            app.router.add_delete(f"{prefix}faults", self._clear_faults)
            app.router.add_get(f"{prefix}calls", self._list_calls)
            app.router.add_post(f"{prefix}seed", self._seed)
            app.router.add_get(f"{prefix}state", self._state)
        add_control_routes(app, self)
        return app

    async def start(self) -> CommerceSimulator:
        self._runner = web.AppRunner(self.create_app(), access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> CommerceSimulator:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # --- request pipeline --------------------------------------------------------------------

    def _take_fault(self, path: str) -> tuple[int | None, Fault | None, float]:
        """The first matching answer-fault, plus the latency of every matching fault before it."""
        latency = 0.0
        for fault in self.faults:
            if not fault.applies(path):
                continue
            fault.remaining -= 1
            latency += fault.latency_ms
            if fault.status is not None:
                return fault.status, fault, latency
        return None, None, latency

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith((SIM_PREFIX, CONTROL_PREFIX)):
            return await handler(request)
        raw = await request.read()
        self._attempts[request.method, request.path] += 1
        attempt = self._attempts[request.method, request.path]
        status, fault, latency = self._take_fault(request.path)
        delay = self.latency_ms + latency
        if delay:
            await asyncio.sleep(delay / 1000)
        response: web.StreamResponse
        if status == 0:
            self._record(request, raw, 0, attempt, fault=True)
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        if status is not None and fault is not None:
            headers = (
                {"Retry-After": _retry_after_header(fault.retry_after)}
                if fault.retry_after is not None
                else None
            )
            response = error_response(status, fault.message or f"simulated {status}", fault.code, headers)
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = error_response(exc.status, exc.reason)
        self._record(request, raw, response.status, attempt, fault=fault is not None)
        return response

    def _record(self, request: web.Request, raw: bytes, status: int, attempt: int, *, fault: bool) -> None:
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        self.calls.append(
            Call(
                request.method,
                request.path,
                _decode(raw, request.content_type),
                status,
                time.time(),
                attempt,
                raw,
                headers,
                fault,
            )
        )

    def _token(self, request: web.Request) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or self._tokens.get(token, 0.0) <= time.monotonic():
            return None
        return token

    def _issue(self) -> web.Response:
        token = secrets.token_urlsafe(24)
        self._tokens[token] = time.monotonic() + self.token_ttl_s
        ttl: float = int(self.token_ttl_s) if float(self.token_ttl_s).is_integer() else self.token_ttl_s
        return _json({"access_token": token, "token_type": "bearer", "expires_in": ttl})

    # --- handlers ----------------------------------------------------------------------------

    async def _login(self, request: web.Request) -> web.Response:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(key.strip(), self.app_key):
            return error_response(401, "The application key is not valid.")
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return error_response(400, "grant_type must be client_credentials")
        self.logins += 1
        return self._issue()

    async def _refresh(self, request: web.Request) -> web.Response:
        if self._token(request) is None:
            return error_response(401, "The access token is missing, unknown or expired.")
        self.refreshes += 1
        return self._issue()

    def _store(self, request: web.Request) -> dict[str, dict[str, Any]]:
        return self.orders if request.path.startswith(f"{API}orders/") else self.returns

    async def _put(self, request: web.Request) -> web.Response:
        if self._token(request) is None:
            return error_response(401, "The access token is missing, unknown or expired.")
        raw = await request.read()
        try:
            body, exact = orjson.loads(raw), json.loads(raw, parse_float=Decimal)
        except (orjson.JSONDecodeError, ValueError):
            body = exact = None
        if not isinstance(body, dict):
            return error_response(400, "The request body must be a JSON object.")
        store, ident = self._store(request), request.match_info["id"]
        if ident not in store:
            return self._not_found(store, ident)
        try:
            store[ident] = self._apply(store is self.orders, ident, store[ident], body, exact)
        except Refused as exc:
            self._refused(request, body, exc)
            return error_response(400, str(exc), path=exc.path)
        return _json(self._render(store is self.orders, store[ident]))

    def _apply(self, is_order: bool, ident: str, held: Json, body: Json, exact: Json) -> Json:
        """Check the exact body against the documents, then merge the body onto what is held."""
        if is_order:
            rules.check_order_body(exact, held, self._context_for_order(held))
            return rules.merge(held, body)
        ctx = self.return_context(held)
        if self.flavour == "op":
            check_op_body(exact, held, ctx)
            result, refund = ops.apply_op(held, body, ident)
            if refund is not None:
                self.issued_refunds.append(refund)
            return result
        rules.check_return_body(exact, held, ctx)
        return rules.apply_return_body(held, body)

    def _refused(self, request: web.Request, body: Json, exc: Refused) -> None:
        """Kept in `refusals`; also appended as a JSON line to `$COMMERCE_SIM_REFUSALS`, if set, so a
        test run can list every body refused and why."""
        refusal = {"path": request.path, "errorPath": exc.path, "message": str(exc), "body": body}
        self.refusals.append(refusal)
        log = os.environ.get("COMMERCE_SIM_REFUSALS")
        if log:
            with open(log, "ab") as out:
                out.write(orjson.dumps({**refusal, "test": os.environ.get("PYTEST_CURRENT_TEST")}) + b"\n")

    def _not_found(self, store: dict[str, Json], ident: str) -> web.Response:
        if store is self.orders:
            return error_response(404, f"Specified order does not exist: {ident}.", D.ORDER_NOT_FOUND)
        return error_response(404, f"No return request found with id {ident}.", "100404")

    def _render(self, is_order: bool, held: Json) -> Json:
        """A16: a return shows its originating order as Commerce holds it now."""
        if is_order or not isinstance(held.get("originatingOrder"), dict):
            return held
        order = self.originating_order(held)
        return {**held, "originatingOrder": order} if order is not None else held

    async def _get(self, request: web.Request) -> web.Response:
        if self._token(request) is None:
            return error_response(401, "The access token is missing, unknown or expired.")
        store, ident = self._store(request), request.match_info["id"]
        if ident not in store:
            return self._not_found(store, ident)
        return _json(self._render(store is self.orders, store[ident]))

    async def _list_faults(self, _: web.Request) -> web.Response:
        return _json([asdict(f) for f in self.faults if f.remaining > 0])

    async def _add_fault(self, request: web.Request) -> web.Response:
        """`{"status"?, "times"?, "prefix"?, "retry_after"?, "code"?, "message"?, "latency_ms"?}`."""
        try:
            spec = orjson.loads(await request.read())
            fault = Fault(
                spec.get("status"),
                int(spec.get("times", 1)),
                str(spec.get("prefix", "")),
                spec.get("retry_after"),
                spec.get("code"),
                spec.get("message"),
                float(spec.get("latency_ms", 0)),
            )
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            return error_response(400, "fault must be a JSON object of known fields")
        self.faults.append(fault)
        return _json(asdict(fault), status=201)

    async def _clear_faults(self, _: web.Request) -> web.Response:
        self.clear_faults()
        return web.Response(status=204)

    async def _list_calls(self, _: web.Request) -> web.Response:
        return _json(
            [
                {
                    "method": c.method,
                    "path": c.path,
                    "body": c.body,
                    "status": c.status,
                    "at": c.at,
                    "attempt": c.attempt,
                }
                for c in self.calls
            ]
        )

    async def _seed(self, request: web.Request) -> web.Response:
        """`{"orders": [...], "returns": [...]}`: what Commerce already holds."""
        try:
            spec = orjson.loads(await request.read())
            orders, returns = spec.get("orders", []), spec.get("returns", [])
            for order in orders:
                self.seed_order(order)
            for return_request in returns:
                self.seed_return(return_request)
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
            return error_response(400, "seed must be {orders: [...], returns: [...]} of objects")
        return _json({"orders": len(orders), "returns": len(returns)}, status=201)

    async def _state(self, _: web.Request) -> web.Response:
        return _json({"orders": self.orders, "returns": self.returns})


def create_app(simulator: CommerceSimulator | None = None) -> web.Application:
    """The simulator as a plain aiohttp application (the simulator is `app[SIMULATOR_KEY]`)."""
    return (simulator or CommerceSimulator()).create_app()


def main() -> None:
    """Serve the simulator in its own process, as Commerce would be (benchmarks)."""
    import argparse

    parser = argparse.ArgumentParser(description="Oracle Commerce Admin API simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--app-key", default="sim-app-key")
    parser.add_argument("--flavour", choices=["classic", "op"], default="classic")
    args = parser.parse_args()
    simulator = CommerceSimulator(
        app_key=args.app_key, latency_ms=args.latency_ms, host=args.host, port=args.port, flavour=args.flavour
    )
    web.run_app(simulator.create_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()


# --- the names earlier tests and benchmarks import ---------------------------------------------------

RETURN_REQUEST_FIELDS = D.RETURN_REQUEST_FIELDS
ORDER_FIELDS = D.ORDER_FIELDS


def check_fields(body: Json, fields: dict[str, D.Field]) -> None:
    """A classic updateReturnRequest or an updateOrder body, checked as a PUT of it would be
    against an empty resource (raises `Refused`)."""
    if fields is D.ORDER_FIELDS:
        rules.check_order_body(rules.exact(body), {}, rules.Context())
    else:
        rules.check_return_body(rules.exact(body), {}, rules.Context())


def apply_op(stored: Json, body: Json) -> Json:
    """One `op` body checked and applied to `stored` (see `ops.py`)."""
    check_op_body(rules.exact(body), stored, rules.Context())
    return ops.apply_op(stored, body, str(stored.get("id", "")))[0]


merge_properties = rules.merge
