"""The returns console under /console/: server-rendered pages over the same commands and reads.

Pages are Jinja2 templates rendered on the server, with no JavaScript at all (the
"state as of" slider is a plain GET form). Actions post forms that run the same
service-layer commands as the operator API, on the writer thread, with the signed-in
operator as the actor; the page then shows the resource as that commit left it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from aiohttp import web

from domain.errors import DomainError
from domain.identity import order_uuid, return_uuid
from domain.states import operator_actor
from projections.audit import NotFound
from projections.sync import SyncLedger
from service import operations, operator_log
from service.console_auth import COOKIE, Operator, Sessions, set_session, valid_name
from service.console_data import answers_of, return_page
from service.context import SERVICES
from service.payloads import body_hash

HERE = Path(__file__).parent
ACTION_LABELS = {
    "authorize": "Authorize",
    "receive": "Receive",
    "refund_initiate": "Initiate refund",
    "refund_manual": "Manual refund",
    "refund_settle": "Settle refund",
    "close": "Close",
}


class Reply(Exception):
    """Answer this response now: the service's middleware turns aiohttp's HTTP exceptions
    into errorModel JSON, which a browser must not get for a redirect or a refused form."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def replies(
    handler: Callable[[web.Request], Awaitable[web.Response]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except Reply as reply:
            return reply.response

    return handle


class Console:
    def __init__(self, app: web.Application) -> None:
        services = app[SERVICES]
        self.services = services
        self.sessions = Sessions(services.settings.api_token, services.settings.session_seed)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates" / "console"), autoescape=True
        )
        self.ledger: SyncLedger | None = None

    def page(self, name: str, operator: Operator | None, **context: Any) -> web.Response:
        html = self.templates.get_template(name).render(
            operator=operator,
            csrf=self.sessions.csrf(operator) if operator else "",
            labels=ACTION_LABELS,
            **context,
        )
        return web.Response(
            text=html,
            content_type="text/html",
            headers={
                "Cache-Control": "no-store",
                "X-Frame-Options": "DENY",
                "Content-Security-Policy": "default-src 'self'; style-src 'self'; img-src 'self' data:",
            },
        )

    def who(self, request: web.Request) -> Operator:
        operator = self.sessions.operator(request)
        if operator is None:
            raise Reply(see_other("/console/login"))
        return operator

    async def form(self, request: web.Request) -> tuple[Operator, Any, bytes]:
        """A posted form from a signed-in operator with the right CSRF token."""
        operator = self.who(request)
        raw = await request.read()
        data = await request.post()
        if not self.sessions.csrf_ok(operator, str(data.get("csrf", ""))):
            raise Reply(web.Response(status=403, text="CSRF token missing or wrong; reload the page"))
        return operator, data, raw


CONSOLE: web.AppKey[Console] = web.AppKey("console", Console)


async def login_page(request: web.Request) -> web.Response:
    return request.app[CONSOLE].page(
        "login.html", None, error=None, token_needed=request.app[CONSOLE].sessions.api_token is not None
    )


async def login(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    data = await request.post()
    name, token = str(data.get("operator", "")).strip(), str(data.get("token", ""))
    if not valid_name(name) or not console.sessions.token_ok(token):
        response = console.page(
            "login.html",
            None,
            error="Unknown operator token, or no name given.",
            token_needed=console.sessions.api_token is not None,
        )
        response.set_status(401)
        return response
    response = see_other("/console/")
    set_session(response, console.sessions.issue(name), request.secure)
    return response


async def logout(request: web.Request) -> web.Response:
    await request.app[CONSOLE].form(request)
    response = see_other("/console/login")
    response.del_cookie(COOKIE, path="/console/")
    return response


def _exists(console: Console, kind: str, commerce_id: str) -> bool:
    uuid = return_uuid(commerce_id) if kind == "return" else order_uuid(commerce_id)
    return any(True for _ in console.services.store.events.get(uuid, limit=1))


async def to_console(request: web.Request) -> web.Response:
    return see_other("/console/")


async def home(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    operator = console.who(request)
    wanted = request.query.get("q", "").strip()
    if wanted:
        for kind in ("return", "order"):
            if await asyncio.to_thread(_exists, console, kind, wanted):
                return see_other(f"/console/{kind}s/{quote(wanted, safe='')}")
    return console.page("search.html", operator, wanted=wanted, missing=bool(wanted))


async def return_view(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    operator = console.who(request)
    rid = request.match_info["id"]
    raw_version = request.query.get("version", "")
    version = int(raw_version) if raw_version.isdigit() else None
    try:
        page = await asyncio.to_thread(return_page, console.services.store, console.ledger, rid, version)
    except NotFound:
        response = console.page("search.html", operator, wanted=rid, missing=True)
        response.set_status(404)
        return response
    return console.page(
        "return.html",
        operator,
        page=page,
        line=page.line,
        state=page.line.state,
        done=request.query.get("done"),
        error=request.query.get("error"),
    )


async def order_view(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    operator = console.who(request)
    oid = request.match_info["id"]
    order = await asyncio.to_thread(console.services.queries.order, oid)
    if order is None:
        response = console.page("search.html", operator, wanted=oid, missing=True)
        response.set_status(404)
        return response
    history = await asyncio.to_thread(console.services.queries.order_history, oid)
    answers = await asyncio.to_thread(answers_of, console.services.store, oid, None)
    return console.page("order.html", operator, order=order, events=history or [], answers=answers)


def _quantity(data: Any, key: str) -> int:
    raw = str(data.get(key, "")).strip()
    return int(raw) if raw.isdigit() else 0


def _amounts(data: Any) -> dict[str, Any] | None:
    """Amounts typed per payment group override the calculated refund (none typed: calculated)."""
    given = {
        key.removeprefix("amount:"): str(data[key]).strip()
        for key in data
        if key.startswith("amount:") and str(data[key]).strip()
    }
    return {"paymentGroups": given} if given else None


def _command(action: str, rid: str, data: Any, policy: Any) -> Callable[..., str]:
    """The service-layer command a console form asks for (actor and cause added by the caller)."""
    if action == "authorize":
        text = {k: (str(data.get(k, "")).strip() or None) for k in ("rma", "trackingNumber")}
        request = operations.Authorization(
            rma=text["rma"], tracking_number=text["trackingNumber"], return_label=None, items=None
        )
        return partial(operations.authorize, return_id=rid, request=request)
    if action == "receive":
        items = [
            ({"returnItemId": key.removeprefix("qty:"), "commerceItemId": None}, _quantity(data, key))
            for key in data
            if key.startswith("qty:") and _quantity(data, key) > 0
        ]
        if not items:
            raise DomainError("enter the quantity received of at least one item", code="INVALID_INPUT")
        return partial(operations.receive, return_id=rid, items=items, terms=policy)
    if action.startswith("refund_"):
        return partial(
            operations.refund,
            return_id=rid,
            action=action.removeprefix("refund_"),
            amounts=_amounts(data),
            policy=policy,
        )
    if action == "close":
        reason = str(data.get("reason", "")).strip()
        if not reason:
            raise DomainError("a reason is needed to close a return", code="INVALID_INPUT")
        return partial(operations.close, return_id=rid, reason=reason)
    raise Reply(web.Response(status=404, text="no such action"))


async def act(request: web.Request) -> web.Response:
    """Run an action for the signed-in operator; the return page shows the outcome."""
    console = request.app[CONSOLE]
    operator, data, raw = await console.form(request)
    rid, action = request.match_info["id"], request.match_info["action"]
    if action not in ACTION_LABELS:
        raise Reply(web.Response(status=404, text="no such action"))
    actor = operator_actor(operator.name)
    try:
        command = _command(action, rid, data, console.services.policy)
        await console.services.write(partial(command, actor=actor, cause=body_hash(raw)))
        outcome = {"done": ACTION_LABELS[action]}
        operator_log.record(actor, action, rid)
    except DomainError as exc:
        outcome = {"error": str(exc)}
        operator_log.record(actor, action, rid, refused=exc.code)
    return see_other(f"/console/returns/{quote(rid, safe='')}?{urlencode(outcome)}")


def add_routes(app: web.Application) -> None:
    """Mount the console; its read of the Commerce call log opens with the app."""
    console = app[CONSOLE] = Console(app)
    app.router.add_get("/console", replies(to_console))
    app.router.add_get("/console/", replies(home))
    app.router.add_get("/console/login", replies(login_page))
    app.router.add_post("/console/login", replies(login))
    app.router.add_post("/console/logout", replies(logout))
    app.router.add_get("/console/returns/{id}", replies(return_view))
    app.router.add_get("/console/orders/{id}", replies(order_view))
    app.router.add_post("/console/returns/{id}/{action}", replies(act))
    app.router.add_static("/console/static/", HERE / "static" / "console")

    async def open_ledger(_: web.Application) -> None:
        console.ledger = await asyncio.to_thread(SyncLedger, console.services.settings.projections_database)

    async def close_ledger(_: web.Application) -> None:
        if console.ledger is not None:
            console.ledger.close()

    app.on_startup.append(open_ledger)
    app.on_cleanup.append(close_ledger)
