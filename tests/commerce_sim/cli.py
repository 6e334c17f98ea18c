"""`python -m tests.commerce_sim serve|seed|agent`: the simulator as a program, for trying Returnflow by hand.

- `serve --port 9080 [--app-key KEY] [--flavour classic|op] [--latency-ms MS]`: runs it, prints its URL.
- `seed --commerce URL --returnflow URL [--secret B64] FILE...`: stores each document at the
  simulator (an Order Submit body: its order; a Return Request Update body: its return request
  and originating order), then delivers it to Returnflow as Commerce's webhook, signed with
  `--secret` if given. FILE is a path, or the name of a seed sample (`order-submit-webhook`).
- `agent --commerce URL [--returnflow URL [--secret B64]] ACTION ...`: an agent's edit over
  `/_sim/agent/...` (`credit ORDER PG AMOUNT`, `set-state RETURN STATE`, `set-order-state ORDER
  STATE`, `add-item RETURN JSON`, `add-refund-method RETURN JSON`, `change-refund-method RETURN
  INDEX JSON`); with `--returnflow`, the Return Request Update that follows an edit of a return
  is delivered too. `show returnRequests/ID|orders/ID` prints what Commerce holds; `edits` and
  `lost` list the agent's edits and those Commerce no longer holds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

import orjson
from aiohttp import ClientSession

from tests.commerce_sim.agent import RETURN_UPDATE_PATH
from tests.commerce_sim.seeds import drop_trailing_commas, load_seed, outermost_object
from tests.commerce_sim.server import CommerceSimulator
from tests.commerce_sim.webhook_sender import WebhookSender

ORDER_SUBMIT_PATH = "/webhooks/order-submit"


def read_document(name: str) -> dict[str, Any]:
    """A JSON file, a documentation page holding one sample, or a seed sample's name."""
    path = Path(name)
    if not path.exists():
        return load_seed(name)
    text = path.read_text(encoding="utf-8").replace("\u00a0", " ")
    document = orjson.loads(drop_trailing_commas(outermost_object(text)))
    if not isinstance(document, dict):
        raise SystemExit(f"{name}: not a JSON object")
    return document


def what_commerce_holds(document: dict[str, Any]) -> tuple[str, dict[str, list[Any]]]:
    """The webhook path a document goes to, and what Commerce holds once it was sent."""
    if isinstance(document.get("return"), dict):
        held = document["return"]
        order = held.get("originatingOrder")
        return RETURN_UPDATE_PATH, {"orders": [order] if isinstance(order, dict) else [], "returns": [held]}
    if isinstance(document.get("order"), dict):
        return ORDER_SUBMIT_PATH, {"orders": [document["order"]], "returns": []}
    raise SystemExit("a document must be an Order Submit ({order}) or Return Request Update ({return}) body")


async def _post(http: ClientSession, url: str, body: Any) -> tuple[int, Any]:
    async with http.post(url, json=body) as response:
        return response.status, await response.json(content_type=None)


async def seed(args: argparse.Namespace) -> int:
    failures = 0
    async with ClientSession() as http, WebhookSender(args.returnflow, args.secret, args.algo) as sender:
        for name in args.files:
            document = read_document(name)
            path, held = what_commerce_holds(document)
            status, answer = await _post(http, f"{args.commerce.rstrip('/')}/_sim/seed", held)
            if status != 201:
                raise SystemExit(f"{name}: the simulator refused the seed: {answer}")
            delivery = (await sender.deliver(path, document, max_attempts=args.attempts))[-1]
            failures += not delivery.ok
            answer_text = delivery.body.decode(errors="replace")[:200]
            print(f"{name}: Commerce holds it; {path} answered {delivery.status} {answer_text}")
    return 1 if failures else 0


def _edit_spec(action: str, values: list[str]) -> dict[str, Any]:
    shapes: dict[str, tuple[str, ...]] = {
        "credit": ("order", "paymentGroup", "amount"),
        "set-state": ("return", "state"),
        "set-order-state": ("order", "state"),
        "add-item": ("return", "item"),
        "add-refund-method": ("return", "method"),
        "change-refund-method": ("return", "index", "changes"),
    }
    names = shapes[action]
    if len(values) != len(names):
        raise SystemExit(f"agent {action} takes {' '.join(n.upper() for n in names)}")
    spec: dict[str, Any] = dict(zip(names, values, strict=True))
    for key in ("item", "method", "changes"):
        if key in spec:
            spec[key] = orjson.loads(spec[key])
    return spec


async def agent(args: argparse.Namespace) -> int:
    base = f"{args.commerce.rstrip('/')}/_sim/"
    async with ClientSession() as http:
        if args.action in ("show", "edits", "lost"):
            target = args.values[0] if args.action == "show" and args.values else f"agent/{args.action}"
            async with http.get(base + target) as response:
                print(orjson.dumps(await response.json(), option=orjson.OPT_INDENT_2).decode())
                return 0 if response.status == 200 else 1
        spec = _edit_spec(args.action, args.values)
        status, answer = await _post(http, f"{base}agent/{args.action}", spec)
        print(answer.get("text") or answer)
        if status != 201:
            return 1
        if args.returnflow and "return" in spec:
            async with http.get(f"{base}returnRequests/{spec['return']}/webhook") as response:
                body = await response.json()
            async with WebhookSender(args.returnflow, args.secret, args.algo) as sender:
                delivery = (await sender.deliver(RETURN_UPDATE_PATH, body, max_attempts=1))[-1]
            print(f"Return Request Update delivered: {delivery.status}")
    return 0


async def _serve(simulator: CommerceSimulator) -> None:
    await simulator.start()
    print(f"Commerce simulator at {simulator.url} (app key {simulator.app_key!r})", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await simulator.stop()


def serve(args: argparse.Namespace) -> int:
    """Prints the URL once it answers (`--port 0`: a free port), then serves until stopped."""
    simulator = CommerceSimulator(
        app_key=args.app_key, latency_ms=args.latency_ms, host=args.host, port=args.port, flavour=args.flavour
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(simulator))
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m tests.commerce_sim", description=__doc__.split("\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the simulator")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=9080)
    run.add_argument("--app-key", default="sim-app-key")
    run.add_argument("--flavour", choices=["classic", "op"], default="classic")
    run.add_argument("--latency-ms", type=float, default=0.0)
    for name in ("seed", "agent"):
        sub = commands.add_parser(name, help=f"{name} (see the module docstring)")
        sub.add_argument("--commerce", default="http://127.0.0.1:9080")
        sub.add_argument("--returnflow", required=name == "seed", default=None)
        sub.add_argument("--secret", default=None, help="the webhook secret (base64), to sign with")
        sub.add_argument("--algo", choices=["sha512", "sha1"], default="sha512")
        if name == "seed":
            sub.add_argument("--attempts", type=int, default=1, help="deliveries until a 2xx (Commerce: 5)")
            sub.add_argument("files", nargs="+")
        else:
            sub.add_argument("action", choices=[*_ACTIONS, "show", "edits", "lost"])
            sub.add_argument("values", nargs="*")
    return top


_ACTIONS = ("credit", "set-state", "set-order-state", "add-item", "add-refund-method", "change-refund-method")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return asyncio.run(seed(args) if args.command == "seed" else agent(args))


if __name__ == "__main__":
    sys.exit(main())
