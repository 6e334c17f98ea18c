"""The design to beat: aiohttp + eventsourcing, one synchronous save per request on the event loop.

What a first version of Returnflow would be: the same signature check, the same
parsing and redaction, the same domain command, then `store.save` right in the
handler, blocking the loop for the commit. No writer thread, no group commit, no
caches, no read models. Run: `python tests/bench/naive_server.py PORT STORE_URL`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
from aiohttp import web
from eventsourcing.persistence import IntegrityError

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from service.operations import receive_order
from service.payloads import body_hash, parse_json, parse_order_submit
from service.signatures import SignatureVerifier
from service.store import open_store
from service.unit_of_work import UnitOfWork
from tests.bench.harness import SECRET


def make_app(store_url: str) -> web.Application:
    store = open_store(store_url)
    verifier = SignatureVerifier([SECRET])

    async def order_submit(request: web.Request) -> web.Response:
        body = await request.read()
        if not verifier.verify(body, request.headers):
            return web.json_response({"status": "unauthorized"}, status=401)
        uow = UnitOfWork(store)
        receipt = receive_order(uow, payload=parse_order_submit(parse_json(body)), cause=body_hash(body))
        try:
            store.save(*uow.pending())
        except IntegrityError:
            return web.json_response({"status": "duplicate"})
        return web.Response(
            body=orjson.dumps({"status": receipt.outcome, "id": receipt.id}), content_type="application/json"
        )

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/webhooks/order-submit", order_submit)
    app.on_cleanup.append(lambda _: _close(store))
    return app


async def _close(store: object) -> None:
    store.close()  # type: ignore[attr-defined]


def main() -> None:
    port, store_url = int(sys.argv[1]), sys.argv[2]
    web.run_app(make_app(store_url), host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
