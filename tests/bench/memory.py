"""RSS of `returnflow serve` while it ingests 100,000 new orders: bounded caches keep it flat.

One `serve` (embedded default: SQLite, in-process read models and Commerce
projection, development mode) takes Order Submits with a fresh id each from wrk,
in rounds; after each round the bench reads the server's RSS from /proc and the
orders it created from /metrics, and prints the curve with the ingest rate. With
`--baseline DIR` the same runs first from another checkout (e.g. a git worktree
of an older commit), so the two curves come from one run on the same machine.
Run: `python tests/bench/memory.py [--orders 100000] [--baseline DIR]`.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.harness import _PIDS, HERE, free_port, local_url, process
from tests.commerce_sim.seeds import seed_order_submit


@dataclass
class Curve:
    label: str
    points: list[tuple[int, float, float]] = field(default_factory=list)
    """(orders created, RSS MB, seconds since start)"""
    idle_mb: float = 0.0
    after_idle_mb: float = 0.0

    @property
    def rate(self) -> float:
        orders, _, seconds = self.points[-1]
        return orders / seconds


def rss_mb(url: str) -> float:
    status = Path(f"/proc/{_PIDS[url]}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def created(url: str) -> int:
    text = urllib.request.urlopen(url + "/metrics").read().decode()
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith('returnflow_requests_total{outcome="webhook_created"')
    )


def template(directory: Path, items: int) -> Path:
    """The seed order with `items` lines (a real store's orders are rarely one jacket)."""
    seed = seed_order_submit()
    order = seed["order"]
    order["id"] = "__ID__"
    line, relation = order["commerceItems"][0], order["relationships"][0]
    order["commerceItems"], lines = [], []
    for n in range(items):
        order["commerceItems"].append({**copy.deepcopy(line), "id": f"ci{n}", "catalogRefId": f"sku{n}"})
        lines.append({**relation, "id": f"r{n}", "commerceItemId": f"ci{n}"})
    order["relationships"] = lines + [r for r in order["relationships"] if "paymentGroupId" in r]
    path = directory / "order.json"
    path.write_bytes(orjson.dumps(seed))
    return path


def run(label: str, source: Path, orders: int, round_s: int, connections: int, items: int) -> Curve:
    curve = Curve(label)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "service.cli",
            "serve",
            "--port",
            str(port),
            "--store",
            f"sqlite:///{directory / 'memory.db'}",
            "--log-format",
            "json",
        ]
        env = {"PYTHONPATH": str(source), "RETURNFLOW_LOG_FORMAT": "json"}
        with process(argv, port, env, cwd=source):
            url = local_url(port)
            time.sleep(1)
            curve.idle_mb = rss_mb(url)
            body = template(directory, items)
            started, n = time.monotonic(), 0
            while not curve.points or curve.points[-1][0] < orders:
                n += 1
                subprocess.run(
                    [
                        "wrk",
                        "-t",
                        "1",
                        "-c",
                        str(connections),
                        "-d",
                        f"{round_s}s",
                        "-s",
                        str(HERE / "unique_orders.lua"),
                        url,
                    ],
                    env={**os.environ, "TEMPLATE_FILE": str(body), "ID_PREFIX": f"r{n}-"},
                    capture_output=True,
                    check=True,
                )
                curve.points.append((created(url), rss_mb(url), time.monotonic() - started))
                print(
                    f"  {label}: {curve.points[-1][0]:>7,} orders  RSS {curve.points[-1][1]:6.1f} MB",
                    file=sys.stderr,
                    flush=True,
                )
            time.sleep(5)
            curve.after_idle_mb = rss_mb(url)
    return curve


def report(curves: list[Curve], orders: int, items: int) -> None:
    print(
        f"\nRSS of `returnflow serve` (SQLite, embedded) while ingesting {orders:,} new orders "
        f"of {items} lines"
    )
    for curve in curves:
        print(
            f"\n{curve.label}: idle {curve.idle_mb:.1f} MB; {curve.rate:,.0f} orders/s overall; "
            f"5 s after the load {curve.after_idle_mb:.1f} MB"
        )
        print("   orders    RSS MB")
        for count, mb, _ in curve.points:
            print(f"  {count:>7,}  {mb:8.1f}")
        peak = max(mb for _, mb, _ in curve.points)
        late = [mb for count, mb, _ in curve.points if count >= 20_000]
        growth = (max(late) - min(late)) if late else float("nan")
        print(f"  peak {peak:.1f} MB; from 20,000 orders on it moves within {growth:.1f} MB")
    if len(curves) == 2:
        base, new = curves
        print(
            f"\nrate {new.rate / base.rate:.2f} x the baseline's; peak RSS "
            f"{max(p[1] for p in new.points) / max(p[1] for p in base.points):.2f} x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--round-seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--items", type=int, default=8, help="lines per order")
    parser.add_argument("--baseline", type=Path, help="another checkout to run first, for comparison")
    args = parser.parse_args()
    here = Path(__file__).resolve().parents[2]
    runs = ([("baseline", args.baseline)] if args.baseline else []) + [("this checkout", here)]
    curves = [
        run(label, source, args.orders, args.round_seconds, args.connections, args.items)
        for label, source in runs
    ]
    report(curves, args.orders, args.items)


if __name__ == "__main__":
    main()
