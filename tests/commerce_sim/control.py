"""The simulator's control endpoints for an agent's edits and a look at what Commerce holds.

All under `/_sim/` (never `/ccadmin`), without a token: they stand for the Agent Console,
not for the Admin API.

- `POST /_sim/agent/credit` `{"order", "paymentGroup", "amount"}`
- `POST /_sim/agent/set-state` `{"return", "state"}`; `POST /_sim/agent/set-order-state` `{"order", "state"}`
- `POST /_sim/agent/add-item` `{"return", "item"}`
- `POST /_sim/agent/add-refund-method` `{"return", "method"}`
- `POST /_sim/agent/change-refund-method` `{"return", "index", "changes"}`
- `GET /_sim/agent/edits`, `GET /_sim/agent/lost`: every agent edit, and those Commerce no longer holds
- `GET /_sim/returnRequests/{id}`, `GET /_sim/orders/{id}`: what Commerce holds (as its GET shows it)
- `GET /_sim/returnRequests/{id}/webhook`: the Return Request Update body that would follow an edit
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from tests.commerce_sim.edits import Edit

if TYPE_CHECKING:
    from tests.commerce_sim.server import CommerceSimulator

PREFIX = "/_sim/"
Handler = Callable[[web.Request], Awaitable[web.Response]]


def _answer(document: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, content_type="application/json", body=orjson.dumps(document, default=str)
    )


def _problem(status: int, message: str) -> web.Response:
    return _answer({"errorCode": f"sim{status}", "message": message, "status": str(status)}, status)


def edit_json(edit: Edit) -> dict[str, Any]:
    return {**asdict(edit), "amount": str(edit.amount), "before": str(edit.before), "text": edit.describe()}


def _edit_route(sim: CommerceSimulator, action: Callable[[dict[str, Any]], Edit]) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        try:
            spec = orjson.loads(await request.read())
            if not isinstance(spec, dict):
                raise TypeError("the body must be a JSON object")
            edit = action(spec)
        except KeyError as exc:
            return _problem(
                404 if exc.args and isinstance(exc.args[0], str) else 400, f"unknown or missing {exc}"
            )
        except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
            return _problem(400, str(exc))
        return _answer(edit_json(edit), 201)

    return handle


def _held(sim: CommerceSimulator, resource: str) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        store = sim.orders if resource == "orders" else sim.returns
        ident = request.match_info["id"]
        if ident not in store:
            return _problem(404, f"Commerce holds no {resource}/{ident}")
        if request.path.endswith("/webhook"):
            return _answer(sim.webhook_body(ident))
        return _answer(sim._render(resource == "orders", store[ident]))

    return handle


def add_control_routes(app: web.Application, sim: CommerceSimulator) -> None:
    actions: dict[str, Callable[[dict[str, Any]], Edit]] = {
        "credit": lambda s: sim.agent_credit(str(s["order"]), str(s["paymentGroup"]), str(s["amount"])),
        "set-state": lambda s: sim.agent_set_state(str(s["return"]), s["state"]),
        "set-order-state": lambda s: sim.agent_set_order_state(str(s["order"]), s["state"]),
        "add-item": lambda s: sim.agent_add_return_item(str(s["return"]), s["item"]),
        "add-refund-method": lambda s: sim.agent_add_refund_method(str(s["return"]), s["method"]),
        "change-refund-method": lambda s: sim.agent_change_refund_method(
            str(s["return"]), int(s["index"]), **s["changes"]
        ),
    }
    for name, action in actions.items():
        app.router.add_post(f"{PREFIX}agent/{name}", _edit_route(sim, action))

    async def edits(_: web.Request) -> web.Response:
        return _answer([edit_json(e) for e in sim.agent_log])

    async def lost(_: web.Request) -> web.Response:
        return _answer([edit_json(e) for e in sim.lost_agent_edits()])

    app.router.add_get(f"{PREFIX}agent/edits", edits)
    app.router.add_get(f"{PREFIX}agent/lost", lost)
    for resource in ("orders", "returnRequests"):
        app.router.add_get(f"{PREFIX}{resource}/{{id}}", _held(sim, resource))
    app.router.add_get(f"{PREFIX}returnRequests/{{id}}/webhook", _held(sim, "returnRequests"))
