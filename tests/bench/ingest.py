"""Durable Order Submit webhooks/s and p99 latency, next to a bare aiohttp+orjson echo.

Both servers run in their own process and are driven by the same wrk client
with the same pre-signed bodies (distinct order ids, so every request is a
real creation). Run: `python tests/bench/ingest.py [--seconds 5] [--connections 32]`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import urllib.request
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.harness import API_TOKEN, echo_server, returnflow_server, write_requests, wrk
from tests.commerce_sim.seeds import seed_order_submit


def order_bodies(count: int, prefix: str) -> list[tuple[str, bytes]]:
    seed = seed_order_submit()
    bodies = []
    for n in range(count):
        seed["order"]["id"] = f"{prefix}{n}"
        seed["order"]["lastModifiedTime"] = 1_700_000_000_000 + n
        bodies.append(("/webhooks/order-submit", orjson.dumps(seed)))
    return bodies


def created_count(url: str) -> tuple[int, int]:
    request = urllib.request.Request(url + "/metrics", headers={"Authorization": f"Bearer {API_TOKEN}"})
    text = urllib.request.urlopen(request).read().decode()
    counts = {"created": 0, "duplicate": 0}
    for line in text.splitlines():
        for outcome in counts:
            if line.startswith(f'returnflow_requests_total{{outcome="webhook_{outcome}"'):
                counts[outcome] += int(line.rsplit(" ", 1)[1])
    return counts["created"], counts["duplicate"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--bodies", type=int, default=60_000, help="distinct orders to cycle through")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        requests_file = Path(tmp) / "orders.tsv"
        write_requests(requests_file, order_bodies(args.bodies, "bench-o"))
        with echo_server() as url:
            wrk(url, requests_file, seconds=1, connections=args.connections)
            echo = wrk(url, requests_file, seconds=args.seconds, connections=args.connections)
        with returnflow_server(Path(tmp)) as url:
            durable = wrk(url, requests_file, seconds=args.seconds, connections=args.connections)
            created, duplicate = created_count(url)
    print(f"{'':24}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}")
    for name, result in (("echo (aiohttp+orjson)", echo), ("returnflow (durable)", durable)):
        print(f"{name:24}{result.requests_per_s:>10.0f}{result.p50_ms:>10.2f}"
              f"{result.p99_ms:>10.2f}{result.non_2xx:>10}")
    print(f"ratio durable/echo throughput: {durable.requests_per_s / echo.requests_per_s:.2f} "
          f"(target >= 0.40)")
    print(f"p99 ratio durable/echo: {durable.p99_ms / echo.p99_ms:.2f}")
    print(f"orders created {created}, duplicates {duplicate} (distinct bodies {args.bodies})")


if __name__ == "__main__":
    main()
