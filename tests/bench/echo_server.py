"""The baseline: bare aiohttp that parses the JSON body with orjson and answers. No store."""

from __future__ import annotations

import sys

import orjson
from aiohttp import web


async def echo(request: web.Request) -> web.Response:
    document = orjson.loads(await request.read())
    order = document.get("order") or document.get("return") or {}
    return web.Response(
        body=orjson.dumps({"status": "ok", "id": order.get("id")}), content_type="application/json"
    )


def main() -> None:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/{tail:.*}", echo)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
