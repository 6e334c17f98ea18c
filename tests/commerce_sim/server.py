"""A faithful stand-in for Oracle Commerce's Admin API, for tests and benchmarks.

- `POST /ccadmin/v1/login` (client_credentials, `Authorization: Bearer <app key>`) and
  `POST /ccadmin/v1/refresh`; tokens expire (configurable), expired tokens get 401.
- `PUT /ccadmin/v1/returnRequests/{id}` and `PUT /ccadmin/v1/orders/{id}` with
  Commerce's list semantics: a list in the body replaces the stored list; members
  are matched by id and merged, members left out are deleted, [] deletes all.
- `GET` of both to inspect; every request is recorded in `calls`.
- Faults: the next N calls answer 429 (with Retry-After), 5xx or a 4xx errorModel,
  optionally only under a path prefix; fixed or per-call latency.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

LIST_KEYS = {"id", "returnItemId", "paymentGroupId", "commerceItemId"}


def _error(status: int, code: str, message: str) -> web.Response:
    return web.Response(status=status, content_type="application/json",
                        body=orjson.dumps({"errorCode": code, "message": message,
                                           "status": str(status)}))


def _key(member: Any) -> Any:
    if not isinstance(member, dict):
        return None
    for key in ("id", "returnItemId", "paymentGroupId"):
        if member.get(key) is not None:
            return (key if key != "returnItemId" else "id", member[key])
    return None


def merge(stored: Any, update: Any) -> Any:
    """Commerce PUT semantics: scalars overwrite, maps merge, lists replace (matched members merge)."""
    if isinstance(update, dict) and isinstance(stored, dict):
        merged = dict(stored)
        for key, value in update.items():
            merged[key] = merge(stored.get(key), value)
        return merged
    if isinstance(update, list):
        old = {_key(m): m for m in stored or [] if _key(m) is not None} if isinstance(stored, list) else {}
        return [merge(old.get(_key(m)), m) if _key(m) in old else copy.deepcopy(m) for m in update]
    return copy.deepcopy(update)


@dataclass
class Fault:
    status: int
    remaining: int
    prefix: str = ""
    retry_after: float | None = None
    code: str = "SIM_FAULT"


@dataclass
class Call:
    method: str
    path: str
    body: Any
    status: int
    at: float


@dataclass
class CommerceSimulator:
    app_key: str = "sim-app-key"
    token_ttl_s: float = 300.0
    latency_ms: float = 0.0
    calls: list[Call] = field(default_factory=list)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    returns: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    logins: int = 0
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self) -> None:
        self._tokens: dict[str, float] = {}
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- test controls -------------------------------------------------------------------------

    def seed_order(self, order: dict[str, Any]) -> None:
        self.orders[str(order["id"])] = copy.deepcopy(order)

    def seed_return(self, ret: dict[str, Any]) -> None:
        self.returns[str(ret.get("authorizationNumber") or ret["id"])] = copy.deepcopy(ret)

    def fail_next(self, status: int, times: int = 1, *, prefix: str = "",
                  retry_after: float | None = None, code: str = "SIM_FAULT") -> None:
        self.faults.append(Fault(status, times, prefix, retry_after, code))

    def expire_tokens(self) -> None:
        self._tokens = {token: 0.0 for token in self._tokens}

    def puts(self, prefix: str = "/ccadmin/v1/") -> list[Call]:
        return [c for c in self.calls if c.method == "PUT" and c.path.startswith(prefix)
                and 200 <= c.status < 300]

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> CommerceSimulator:
        app = web.Application()
        app.router.add_post("/ccadmin/v1/login", self._login)
        app.router.add_post("/ccadmin/v1/refresh", self._refresh)
        app.router.add_put("/ccadmin/v1/orders/{id}", self._put)
        app.router.add_put("/ccadmin/v1/returnRequests/{id}", self._put)
        app.router.add_get("/ccadmin/v1/orders/{id}", self._get)
        app.router.add_get("/ccadmin/v1/returnRequests/{id}", self._get)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        if not self.port:
            with socket.socket() as s:
                s.bind((self.host, 0))
                self.port = s.getsockname()[1]
        await web.TCPSite(self._runner, self.host, self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> CommerceSimulator:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # --- handlers ------------------------------------------------------------------------------

    async def _before(self, request: web.Request) -> tuple[Any, web.Response | None]:
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        body: Any = None
        raw = await request.read()
        if raw and request.content_type == "application/json":
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return None, _error(400, "INVALID_JSON", "body is not JSON")
        for fault in self.faults:
            if fault.remaining > 0 and request.path.startswith(fault.prefix or "/ccadmin/v1/"):
                if request.path.endswith(("/login", "/refresh")) and not fault.prefix:
                    continue
                fault.remaining -= 1
                response = _error(fault.status, fault.code, f"simulated {fault.status}")
                if fault.retry_after is not None:
                    response.headers["Retry-After"] = str(fault.retry_after)
                return body, response
        return body, None

    def _record(self, request: web.Request, body: Any, status: int) -> None:
        self.calls.append(Call(request.method, request.path, body, status, time.time()))

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expiry = self._tokens.get(token.strip())
        return scheme.lower() == "bearer" and expiry is not None and expiry > time.monotonic()

    def _issue(self) -> web.Response:
        token = secrets.token_urlsafe(24)
        self._tokens[token] = time.monotonic() + self.token_ttl_s
        return web.json_response({"access_token": token, "token_type": "bearer",
                                  "expires_in": self.token_ttl_s})

    async def _login(self, request: web.Request) -> web.Response:
        _, fault = await self._before(request)
        form = await request.post()
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if fault is None and (scheme.lower() != "bearer" or key.strip() != self.app_key
                              or form.get("grant_type") != "client_credentials"):
            fault = _error(401, "UNAUTHORIZED", "invalid application key")
        response = fault or self._issue()
        if fault is None:
            self.logins += 1
        self._record(request, dict(form), response.status)
        return response

    async def _refresh(self, request: web.Request) -> web.Response:
        body, fault = await self._before(request)
        if fault is None and not self._authorized(request):
            fault = _error(401, "UNAUTHORIZED", "token expired")
        response = fault or self._issue()
        self._record(request, body, response.status)
        return response

    def _store(self, request: web.Request) -> dict[str, dict[str, Any]]:
        return self.orders if "/orders/" in request.path else self.returns

    async def _put(self, request: web.Request) -> web.Response:
        body, fault = await self._before(request)
        response = fault
        if response is None and not self._authorized(request):
            response = _error(401, "UNAUTHORIZED", "missing or expired token")
        if response is None and not isinstance(body, dict):
            response = _error(400, "INVALID_INPUT", "body must be a JSON object")
        store, ident = self._store(request), request.match_info["id"]
        if response is None and ident not in store:
            response = _error(404, "NOT_FOUND", f"no resource {ident}")
        if response is None:
            store[ident] = merge(store[ident], body)
            response = web.json_response(store[ident])
        self._record(request, body, response.status)
        return response

    async def _get(self, request: web.Request) -> web.Response:
        store, ident = self._store(request), request.match_info["id"]
        if ident not in store:
            return _error(404, "NOT_FOUND", f"no resource {ident}")
        return web.json_response(store[ident])
