"""`returnflow reconcile` over 10,000 returns against the Commerce simulator: duration and GETs/s.

The store is generated through the real aggregates (whole lifecycles, as the replay
benchmark makes them); Commerce (the simulator, its own process) is seeded directly
with what it would hold after the sync (its own PUT semantics applied to the bodies
the sync builds), and the sync ledger with what the sync applied. One return in 100
then gets an agent's state edit, so there is drift to find and fix. `reconcile` runs
as its own process, as an operator would run it:

1. every return, the rate limit lifted (`--rate 0`);
2. a sample at the default rate (20 GETs/s; the whole set would take 1,000 s);
3. every return with `--fix`, then once more, which must find no drift.

Run: `python tests/bench/reconcile.py [--returns 10000] [--sample 500]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from aiohttp import ClientSession

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from domain.orders import Order
from domain.returns import ReturnRequest
from domain.views import order_view, return_view
from projections.commerce_bodies import classic_body, credit_body, shipment_body
from projections.commerce_client import to_json_bytes
from projections.positions import side_database
from projections.sync import SyncLedger, body_hash
from service.store import open_store
from tests.bench.harness import free_port, wait_for_port
from tests.bench.replay import lifecycle
from tests.commerce_sim.server import merge_properties

APP_KEY = "bench-app-key"
DRIFT_EVERY = 100


def held_before(n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """What Commerce holds of order n and return n before Returnflow says anything."""
    order = {
        "id": f"o{n}",
        "state": "SUBMITTED",
        "shippingGroups": [{"id": "sg1", "state": "INITIAL", "shippingMethod": "ground"}],
        "paymentGroups": [
            {"id": "pg1", "paymentMethod": "tokenizedCreditCard", "amount": 268.4, "amountCredited": 0}
        ],
    }
    ret = {
        "id": f"R{n}",
        "authorizationNumber": f"R{n}",
        "state": "PENDING_CUSTOMER_ACTION",
        "returnItemList": [
            {
                "id": f"R{n}-1",
                "commerceItemId": "ci1",
                "shippingGroupId": "sg1",
                "state": "INITIAL",
                "quantityToReturn": 2,
            }
        ],
    }
    return order, ret


def json(body: dict[str, Any]) -> dict[str, Any]:
    """A body as Commerce receives it (numbers, not Decimals)."""
    result: dict[str, Any] = orjson.loads(to_json_bytes(body))
    return result


def generate(db: Path, returns: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Store the lifecycles; answer what Commerce holds after the sync, with the ledger written."""
    store = open_store(f"sqlite:///{db}")
    ledger = SyncLedger(side_database(f"sqlite:///{db}"))
    orders, held_returns = [], []
    batch: list[Order | ReturnRequest] = []
    for n in range(returns):
        order, ret = lifecycle(n)
        batch += [order, ret]
        if len(batch) >= 400:
            store.save(*batch)
            batch.clear()
        held_order, held_return = held_before(n)
        ret_body, ship, credit = (
            classic_body(return_view(ret)),
            shipment_body(order_view(order)),
            credit_body(order_view(order)),
        )
        held_return = merge_properties(held_return, json(ret_body))
        held_order = merge_properties(merge_properties(held_order, json(ship)), json(credit))
        if n % DRIFT_EVERY == 0:
            held_return["state"] = "PENDING_REFUND"  # an agent's edit no webhook reported
        orders.append(held_order)
        held_returns.append(held_return)
        _ledger(ledger, ret, order, ret_body, ship, credit)
    if batch:
        store.save(*batch)
    store.close()
    ledger.close()
    return orders, held_returns


def _ledger(ledger: SyncLedger, ret: ReturnRequest, order: Order, *bodies: dict[str, Any]) -> None:
    """The rows the sync would have written (directly: 30,000 rows, one transaction each is slow)."""
    db: sqlite3.Connection = ledger._db  # a benchmark seeding the table
    now = "2026-01-01T00:00:00Z"
    rows = [
        (ret.commerce_id, "updateReturnRequest", ret.version, body_hash(bodies[0]), now),
        (order.commerce_id, "updateOrder:shipment", order.version, body_hash(bodies[1]), now),
        (order.commerce_id, "updateOrder:credit", order.version, body_hash(bodies[2]), now),
    ]
    db.executemany("INSERT OR REPLACE INTO rf_sync_ledger VALUES (?, ?, ?, ?, ?)", rows)


async def seed(url: str, orders: list[dict[str, Any]], returns: list[dict[str, Any]]) -> None:
    async with ClientSession() as http:
        for first in range(0, len(orders), 1000):
            async with http.post(
                f"{url}/__sim/seed",
                data=orjson.dumps(
                    {
                        "orders": orders[first : first + 1000],
                        "returns": returns[first : first + 1000],
                    }
                ),
            ) as response:
                assert response.status == 201, await response.text()


def reconcile(env: dict[str, str], *args: str) -> tuple[dict[str, Any], float]:
    started, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "reconcile", "--format", "json", *args],
        env=env,
        capture_output=True,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise RuntimeError(done.stderr.decode()[-2000:])
    report: dict[str, Any] = orjson.loads(done.stdout)
    report["cpu"] = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    return report, wall


def line(name: str, report: dict[str, Any], wall: float) -> str:
    drift = sum(1 for f in report["findings"] if f["verdict"] == "drift")
    fixed = sum(1 for f in report["findings"] if f["fixed"])
    return (
        f"{name}: {report['checked']:,} returns, {report['gets']:,} GETs in "
        f"{report['seconds']:.1f} s = {report['gets'] / report['seconds']:,.0f} GETs/s "
        f"({report['checked'] / report['seconds']:,.0f} returns/s; process {wall:.1f} s, "
        f"its CPU {report['cpu']:.1f} s); "
        f"{len(report['findings'])} findings, drift {drift}, fixed {fixed}"
    )


def run(returns: int, sample: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="rf-reconcile-bench-"))
    db = tmp / "rf.db"
    started = time.perf_counter()
    orders, held = generate(db, returns)
    print(f"generated {returns:,} returns in {time.perf_counter() - started:.1f} s ({tmp})")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp / "commerce.log").open("wb")
    commerce = subprocess.Popen(
        [sys.executable, "-m", "tests.commerce_sim.server", "--port", str(port), "--app-key", APP_KEY],
        stdout=log,
        stderr=log,
    )
    env = {
        **os.environ,
        "RETURNFLOW_STORE": f"sqlite:///{db}",
        "RETURNFLOW_COMMERCE_URL": url,
        "RETURNFLOW_COMMERCE_APP_KEY": APP_KEY,
        "RETURNFLOW_LOG_FORMAT": "json",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    try:
        wait_for_port(port)
        asyncio.run(seed(url, orders, held))
        print(line("lifted (--rate 0)", *reconcile(env, "--rate", "0")))
        if sample:
            ids = [a for n in range(sample) for a in ("--id", f"R{n}")]
            print(line(f"default rate (20 GETs/s), first {sample}", *reconcile(env, *ids)))
        print(line("lifted, --fix", *reconcile(env, "--rate", "0", "--fix")))
        print(line("lifted, after the fix", *reconcile(env, "--rate", "0")))
    finally:
        commerce.terminate()
        commerce.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--returns", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=500, help="returns checked at the default rate")
    args = parser.parse_args()
    run(args.returns, args.sample)


if __name__ == "__main__":
    main()
