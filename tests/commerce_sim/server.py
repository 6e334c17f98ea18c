"""A stand-in for Oracle Commerce's Admin API built from the documents, for tests and benchmarks.

- `POST /ccadmin/v1/login` (form `grant_type=client_credentials`, `Authorization: Bearer
  <app key>`) and `POST /ccadmin/v1/refresh`; tokens expire after `token_ttl_s`, and an
  expired or unknown token gets 401 on every API call.
- `PUT /ccadmin/v1/returnRequests/{id}` accepts only the fields of the one documented
  updateReturnRequest body (seed oms-integration-overview.txt:375-428); anything else is a 400
  naming its path. `PUT /ccadmin/v1/orders/{id}`: `state` and the shipping and payment groups.
  PUT semantics (oms-integration-overview.txt:232-236): properties left out are kept, scalars
  overwrite, a list or map in the body replaces the stored one; list members are matched as
  Commerce matches them (return items by `commerceItemId` + `shippingGroupId`, groups by `id`,
  refund methods by payment group else type) and merged; unmatched members are created, stored
  members left out are deleted, [] deletes all.
- `flavour="op"`: updateReturnRequest takes one `op` (`receiveReturns`, `initiateRefund`,
  `adjustRefundAmounts`, `markManualRefund`, `markAsComplete`) with that release's body.
- Agent-side edits between calls (`agent_credit`, `agent_set_state`, `agent_add_refund_method`),
  so tests show a call erases nothing Commerce or an agent recorded.
- `GET` of both, with a token like any API call; `order()`/`return_request()` for tests.
- Every request lands in `calls`; faults (429 with Retry-After, 5xx, a 4xx errorModel,
  latency, a dropped connection) for the next N calls, optionally under a path prefix, from
  Python or over `/__sim/faults`.
- Its own process for benchmarks (`python -m tests.commerce_sim.server --port P
  --latency-ms 20`), seeded over `POST /__sim/seed` and inspected over `GET /__sim/state`
  and `GET /__sim/calls`.
- errorCodes are the simulator's own, except 210105 (order not found), from the seeds.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

API = "/ccadmin/v1/"
LOGIN = "/ccadmin/v1/login"
REFRESH = "/ccadmin/v1/refresh"
SIM_PREFIX = "/__sim/"
FAULTS_PATH = "/__sim/faults"
CALLS_PATH = "/__sim/calls"
SEED_PATH = "/__sim/seed"
STATE_PATH = "/__sim/state"

ERROR_CODES = {
    400: "100001",
    401: "100002",
    404: "210105",
    405: "100005",
    429: "100029",
    500: "100050",
    502: "100052",
    503: "100053",
    504: "100054",
}


def error_model(status: int, message: str, code: str | None = None) -> dict[str, str]:
    """Commerce's errorModel: string errorCode and status, a human message."""
    return {
        "errorCode": code or ERROR_CODES.get(status, f"1000{status}"),
        "message": message,
        "status": str(status),
    }


def error_response(
    status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        content_type="application/json",
        headers=headers,
        body=orjson.dumps(error_model(status, message, code)),
    )


def _json(document: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, content_type="application/json", body=orjson.dumps(document))


# --- Commerce PUT semantics -----------------------------------------------------------------------
#
# Built from the documents, not from Returnflow's bodies. `oms-integration-overview.txt` is the
# seed `../shared/seeds/oms-integration-overview.txt`; line numbers are that file's.

RETURN_REQUEST_FIELDS = frozenset(
    {
        # seed oms-integration-overview.txt:376-427, the one documented updateReturnRequest body
        "shippingTaxRefund",
        "agentId",
        "secondaryCurrencyShippingTaxRefund",
        "actualShippingRefund",
        "actualTaxRefund",
        "otherRefund",
        "secondaryCurrencyActualTaxRefund",
        "refundMethodList",
        "returnLabel",
        "authorizationNumber",
        "returnFee",
        "requestId",
        "secondaryCurrencyActualShippingRefund",
        "links",
        "state",
        "additionalProperties",
        "originOfReturn",
        "trackingNumber",
        "returnItemList",
        "actualShippingSurchargeRefund",
        "secondaryCurrencyActualShippingSurchargeRefund",
    }
)
RETURN_ITEM_FIELDS = frozenset(
    {
        # seed oms-integration-overview.txt:409-423
        "secondaryCurrencyActualTaxRefundShare",
        "comments",
        "shippingGroupId",
        "secondaryCurrencyActualShippingSurchargeRefundShare",
        "quantityWithFractionReceived",
        "commerceItemId",
        "secondaryCurrencyActualShippingRefundShare",
        "actualShippingSurchargeRefundShare",
        "returnReason",
        "actualShippingRefundShare",
        "state",
        "additionalProperties",
        "actualTaxRefundShare",
        "quantityReceived",
        "refundAmount",
    }
)
REFUND_METHOD_FIELDS = frozenset(
    {
        # seed oms-integration-overview.txt:385-387; `paymentGroupId` is SPEC section 4's "payment
        # group reference" (the webhook's methods carry it; the documents do not show its name)
        "refundType",
        "amount",
        "state",
        "paymentGroupId",
    }
)
ORDER_FIELDS = frozenset(
    {
        # seed oms-integration-overview.txt:228 ({"state": ...}); the groups: SPEC section 4 and
        # oms-integration-overview.txt:221 ("components of the order, such as shipping groups") and
        # :456 ("the amountCredited in the payment group of the original order")
        "state",
        "shippingGroups",
        "paymentGroups",
    }
)
SHIPPING_GROUP_FIELDS = frozenset(
    {
        # names as the Order Submit sample spells them, oms-integration-overview.txt:44-58
        "id",
        "state",
        "trackingNumber",
        "actualShipDate",
    }
)
PAYMENT_GROUP_FIELDS = frozenset({"id", "amountCredited"})  # oms-integration-overview.txt:456
OPS = frozenset(
    {
        # seeds/README.md ("Newer Admin API releases add a required op field"), the casing sent;
        # oms-integration-overview.txt:454 ("the op value set to initiateRefund")
        "receiveReturns",
        "initiateRefund",
        "adjustRefundAmounts",
        "markManualRefund",
        "markAsComplete",
    }
)
OP_FIELDS = {
    # seeds/README.md: "returnItems with returnItemId, quantityReceived, dispositionReason;
    # adjustedTaxRefund, adjustedShippingRefund"
    "receiveReturns": frozenset({"op", "returnItems"}),
    "adjustRefundAmounts": frozenset({"op", "adjustedTaxRefund", "adjustedShippingRefund"}),
    "initiateRefund": frozenset({"op"}),
    "markManualRefund": frozenset({"op"}),
    "markAsComplete": frozenset({"op"}),
}
OP_RETURN_ITEM_FIELDS = frozenset({"returnItemId", "quantityReceived", "dispositionReason"})

_LISTS: dict[str, tuple[frozenset[str], Any]] = {}
"""List name -> (allowed member fields, member identity); filled below."""


class Refused(Exception):
    """A body Commerce would refuse: 400 with the path of what is wrong."""


def _return_item_key(member: dict[str, Any]) -> Any:
    """commerceItemId + shippingGroupId (oms-integration-overview.txt:411,414); a stored member
    may hold its commerce item nested, as the webhook shows it."""
    nested = member.get("commerceItem")
    item = member.get("commerceItemId") or (nested.get("id") if isinstance(nested, dict) else None)
    return None if item is None else (item, member.get("shippingGroupId"))


def _refund_method_key(member: dict[str, Any]) -> Any:
    """The documents are silent on how refund methods match: by payment group, else by type."""
    if member.get("paymentGroupId") is not None:
        return ("paymentGroup", member["paymentGroupId"])
    return None if member.get("refundType") is None else ("type", member["refundType"])


def _id_key(member: dict[str, Any]) -> Any:
    return member.get("id")


_LISTS.update(
    {
        "returnItemList": (RETURN_ITEM_FIELDS, _return_item_key),
        "refundMethodList": (REFUND_METHOD_FIELDS, _refund_method_key),
        "shippingGroups": (SHIPPING_GROUP_FIELDS, _id_key),
        "paymentGroups": (PAYMENT_GROUP_FIELDS, _id_key),
    }
)


def check_fields(body: dict[str, Any], allowed: frozenset[str], path: str = "$") -> None:
    """A field the documented body does not have is refused, as is a member of an unknown shape."""
    for key, value in body.items():
        where = f"{path}.{key}"
        if key not in allowed:
            raise Refused(f"{where} is not a property of this resource")
        if key in _LISTS:
            if not isinstance(value, list):
                raise Refused(f"{where} must be a list")
            fields, _ = _LISTS[key]
            for index, member in enumerate(value):
                if not isinstance(member, dict):
                    raise Refused(f"{where}[{index}] must be an object")
                check_fields(member, fields, f"{where}[{index}]")
        elif key == "additionalProperties" and not (
            isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        ):
            raise Refused(f"{where} must be a map of strings")


def replace_list(name: str, stored: Any, update: list[Any]) -> list[Any]:
    """oms-integration-overview.txt:234-236: the body's list becomes the list; a member matching
    a stored one is merged onto it, one matching none is created, stored members left out go."""
    _, key_of = _LISTS.get(name, (frozenset(), _id_key))
    pool = [m for m in stored if isinstance(m, dict)] if isinstance(stored, list) else []
    taken: set[int] = set()
    result: list[Any] = []
    for member in update:
        key = key_of(member)
        index = (
            None
            if key is None
            else next((i for i, old in enumerate(pool) if i not in taken and key_of(old) == key), None)
        )
        if index is None:
            result.append(copy.deepcopy(member))
            continue
        taken.add(index)
        result.append(merge_properties(pool[index], member))
    return result


def replace_map(stored: Any, update: dict[str, Any]) -> dict[str, Any]:
    """A map in the body replaces the stored map (oms-integration-overview.txt:234,236)."""
    return copy.deepcopy(update)


def merge_properties(stored: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """oms-integration-overview.txt:234: properties not in the body are kept."""
    merged = copy.deepcopy(stored)
    for key, value in update.items():
        if isinstance(value, list):
            merged[key] = replace_list(key, stored.get(key), value)
        elif isinstance(value, dict):
            merged[key] = replace_map(stored.get(key), value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def apply_op(stored: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The `op` flavour: one operation on the stored return (its body per seeds/README.md)."""
    op = body.get("op")
    if op not in OPS:
        raise Refused(f"$.op must be one of {', '.join(sorted(OPS))}")
    for key in body:
        if key not in OP_FIELDS[op]:
            raise Refused(f"$.{key} is not a property of the {op} operation")
    result = copy.deepcopy(stored)
    if op == "receiveReturns":
        _receive_returns(result, body.get("returnItems"))
    elif op == "adjustRefundAmounts":
        for ours, theirs in (
            ("adjustedTaxRefund", "actualTaxRefund"),
            ("adjustedShippingRefund", "actualShippingRefund"),
        ):
            if ours in body:
                result[theirs] = body[ours]
    else:
        result["state"] = {
            "initiateRefund": "PENDING_REFUND",
            "markManualRefund": "MANUAL_REFUND",
            "markAsComplete": "COMPLETE",
        }[op]
        if op == "initiateRefund":
            result["refundIssuedByCommerce"] = True
    return result


def _receive_returns(stored: dict[str, Any], items: Any) -> None:
    if not isinstance(items, list):
        raise Refused("$.returnItems must be a list")
    by_id = {str(i.get("id") or i.get("returnItemId")): i for i in stored.get("returnItemList", [])}
    for index, item in enumerate(items):
        where = f"$.returnItems[{index}]"
        if not isinstance(item, dict):
            raise Refused(f"{where} must be an object")
        check_fields(item, OP_RETURN_ITEM_FIELDS, where)
        target = by_id.get(str(item.get("returnItemId")))
        if target is None:
            raise Refused(f"{where}.returnItemId names no item of this return")
        target["quantityReceived"] = item.get("quantityReceived", 0)
        if item.get("dispositionReason") is not None:
            target["disposition"] = item["dispositionReason"]
        wanted = target.get("quantityToReturn") or 0
        target["state"] = "RETURNED" if target["quantityReceived"] >= wanted else "PARTIAL_RETURN"
    items_left = [i for i in by_id.values() if i.get("state") != "RETURN_NOT_REQUIRED"]
    done = all(i.get("state") == "RETURNED" for i in items_left)
    stored["state"] = "FULL_RETURN" if done else "PARTIAL_RETURN"


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
class CommerceSimulator:
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
        self.orders[str(order["id"])] = copy.deepcopy(order)

    def seed_return(self, return_request: dict[str, Any]) -> None:
        """Stored under the id Commerce's path uses: `id`, else authorizationNumber/requestId."""
        ident = (
            return_request.get("id")
            or return_request.get("authorizationNumber")
            or return_request["requestId"]
        )
        self.returns[str(ident)] = copy.deepcopy(return_request)

    def order(self, order_id: str) -> dict[str, Any]:
        return copy.deepcopy(self.orders[order_id])

    def return_request(self, return_id: str) -> dict[str, Any]:
        return copy.deepcopy(self.returns[return_id])

    def agent_credit(self, order_id: str, payment_group_id: str, amount: float) -> None:
        """An agent (or Commerce) records a credit on a payment group: amountCredited grows."""
        for group in self.orders[order_id].setdefault("paymentGroups", []):
            if group.get("id") == payment_group_id:
                group["amountCredited"] = round(float(group.get("amountCredited") or 0) + amount, 6)
                return
        raise KeyError(payment_group_id)

    def agent_set_state(self, return_id: str, state: str) -> None:
        """An agent changes the return's state in the Agent Console."""
        self.returns[return_id]["state"] = state

    def agent_add_return_item(self, return_id: str, item: dict[str, Any]) -> None:
        """An agent adds an item to the return in the Agent Console."""
        self.returns[return_id].setdefault("returnItemList", []).append(copy.deepcopy(item))

    def agent_add_refund_method(self, return_id: str, method: dict[str, Any]) -> None:
        """An agent adds a refund method (a gift card, a manual refund) to the return."""
        self.returns[return_id].setdefault("refundMethodList", []).append(copy.deepcopy(method))

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
        app.router.add_get(FAULTS_PATH, self._list_faults)
        app.router.add_post(FAULTS_PATH, self._add_fault)
        app.router.add_delete(FAULTS_PATH, self._clear_faults)
        app.router.add_get(CALLS_PATH, self._list_calls)
        app.router.add_post(SEED_PATH, self._seed)
        app.router.add_get(STATE_PATH, self._state)
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
        if request.path.startswith(SIM_PREFIX):
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
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return error_response(400, "The request body must be a JSON object.")
        store, ident = self._store(request), request.match_info["id"]
        if ident not in store:
            return error_response(404, f"No resource found with id {ident}.")
        try:
            store[ident] = self._apply(store is self.orders, store[ident], body)
        except Refused as exc:
            return error_response(400, str(exc))
        return _json(store[ident])

    def _apply(self, is_order: bool, stored: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        if is_order:
            check_fields(body, ORDER_FIELDS)
            return merge_properties(stored, body)
        if self.flavour == "op":
            return apply_op(stored, body)
        check_fields(body, RETURN_REQUEST_FIELDS)
        return merge_properties(stored, body)

    async def _get(self, request: web.Request) -> web.Response:
        if self._token(request) is None:
            return error_response(401, "The access token is missing, unknown or expired.")
        store, ident = self._store(request), request.match_info["id"]
        if ident not in store:
            return error_response(404, f"No resource found with id {ident}.")
        return _json(store[ident])

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
