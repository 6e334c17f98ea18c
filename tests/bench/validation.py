"""Return Request Validation latency: alone, and while Order Submit ingest load runs.

Commerce waits synchronously for this answer. The same wrk client measures a
bare aiohttp+orjson echo of the same bodies (the baseline), then the real
service answering Initiate_Return for shipped orders, then the same while a
second wrk drives Order Submit webhooks at full speed. Two deployments: one
`serve` process answering everything, and the recommended one where a second
process (`RETURNFLOW_ROLE=validation`, same store) answers Commerce's function
webhook so that it never queues behind ingest; and that again with the ingest
process at a lower CPU priority (`nice 10`, as `cpu_shares` gives the
validation service in docker-compose), since on a small machine the two
processes still share cores. Under load, the baseline that shares the
machine on the same terms is the echo as that second process, asked the same
questions while the same ingest load runs: its row and ratio are printed too.

Run: `python tests/bench/validation.py [--seconds 5]`.
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.harness import (
    API_TOKEN,
    SECRET,
    WrkResult,
    echo_server,
    returnflow_server,
    sign,
    write_requests,
    wrk,
)
from tests.bench.ingest import order_bodies

ORDERS = 200


def post(url: str, path: str, body: bytes, signed: bool = True) -> None:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {API_TOKEN}"}
    if signed:
        headers["X-Oracle-CC-WebHook-Signature"] = sign(body)
    request = urllib.request.Request(url + path, data=body, headers=headers, method="POST")
    urllib.request.urlopen(request).read()


def validation_bodies() -> list[tuple[str, bytes]]:
    return [
        (
            "/webhooks/return-request-validation",
            orjson.dumps(
                {
                    "context": "Initiate_Return",
                    "returnRequests": [
                        {
                            "orderId": f"v{n}",
                            "returnItemList": [
                                {
                                    "commerceItemId": "ci2000007",
                                    "shippingGroupId": "sg20005",
                                    "quantityToReturn": 0,
                                }
                            ],
                        }
                    ],
                }
            ),
        )
        for n in range(ORDERS)
    ]


def prepare(url: str) -> None:
    """Shipped orders, each asked once, so the measured questions are the common repeat case."""
    for path, body in order_bodies(ORDERS, "v"):
        post(url, path, body)
    for n in range(ORDERS):
        post(url, f"/orders/v{n}/shipments", orjson.dumps({"shippingGroupId": "sg20005"}), False)
    for path, body in validation_bodies():
        post(url, path, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    assert base64.b64decode(SECRET)
    with tempfile.TemporaryDirectory() as tmp:
        questions, orders = Path(tmp) / "questions.tsv", Path(tmp) / "orders.tsv"
        write_requests(questions, validation_bodies())
        write_requests(orders, order_bodies(60_000, "load"))
        runs = {
            name: deployment(
                Path(tmp) / str(n), questions, orders, args.seconds, args.connections, split, nice
            )
            for n, (name, split, nice) in enumerate(
                (
                    ("one process", False, 0),
                    ("validation process beside", True, 0),
                    ("beside, ingest at nice 10", True, 10),
                )
            )
        }
    print(f"{'':58}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    for label, r in [row for name, run in runs.items() for row in run.rows(name)]:
        print(f"{label:58}{r.requests_per_s:>9.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.non_2xx:>9}")
    for name, run in runs.items():
        print(
            f"{name}: p99 / echo p99: alone {run.alone.p99_ms / run.echo.p99_ms:.2f}, "
            f"under ingest load {run.loaded.p99_ms / run.echo_loaded.p99_ms:.2f} "
            f"(against the echo alone {run.loaded.p99_ms / run.echo.p99_ms:.2f}); target <= 2"
        )


@dataclass
class Run:
    """One deployment: the service's figures, and the echo's taken in its place just after."""

    alone: WrkResult
    loaded: WrkResult
    ingest: WrkResult
    echo: WrkResult
    echo_loaded: WrkResult
    echo_ingest: WrkResult

    def rows(self, name: str) -> list[tuple[str, WrkResult]]:
        return [
            (f"{name}: validation alone", self.alone),
            (f"{name}: during ingest load", self.loaded),
            ("  the ingest load itself", self.ingest),
            (f"{name}: echo alone (baseline)", self.echo),
            (f"{name}: echo in its place, same load", self.echo_loaded),
            ("  the ingest load itself", self.echo_ingest),
        ]


def deployment(
    store: Path, questions: Path, orders: Path, seconds: int, connections: int, split: bool, nice: int
) -> Run:
    """A fresh store each, so no deployment inherits the previous one's data or backlog; the
    echo is measured right after, on the same terms, so noise from the machine's neighbours
    falls on both alike."""
    store.mkdir()
    with returnflow_server(store, nice=nice) as url:
        prepare(url)
        if not split:
            measured = measure(url, url, questions, orders, seconds, connections)
        else:
            with returnflow_server(store, {"RETURNFLOW_ROLE": "validation"}) as validator:
                for path, body in validation_bodies():
                    post(validator, path, body)
                measured = measure(url, validator, questions, orders, seconds, connections)
    store = store.with_name(store.name + "-echo")
    store.mkdir()
    with returnflow_server(store, nice=nice) as url, echo_server() as echo:
        prepare(url)
        return Run(*measured, *measure(url, echo, questions, orders, seconds, connections))


def measure(
    url: str, validator: str, questions: Path, orders: Path, seconds: int, connections: int
) -> tuple[WrkResult, WrkResult, WrkResult]:
    """Questions to `validator`: alone, then while Order Submit load hits `url`."""
    wrk(validator, questions, seconds=1, connections=connections)
    alone = wrk(validator, questions, seconds=seconds, connections=connections)
    with ThreadPoolExecutor(2) as pool:
        load = pool.submit(wrk, url, orders, seconds=seconds + 2, connections=32)
        loaded = pool.submit(wrk, validator, questions, seconds=seconds, connections=connections).result()
        ingest = load.result()
    return alone, loaded, ingest


if __name__ == "__main__":
    main()
