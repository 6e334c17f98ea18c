"""`GET /openapi.json`: the HTTP API's OpenAPI 3.1 document, as kept in service/contracts/.

The document is written by hand and kept honest by tests (tests/integration/
test_openapi.py): it must validate, name every route the service has, and describe
every answer the service gives in them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from aiohttp import web

CONTRACTS = Path(__file__).parent / "contracts"


@cache
def document(name: str) -> bytes:
    return (CONTRACTS / name).read_bytes()


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=document("openapi.json"), content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/openapi.json", openapi)
