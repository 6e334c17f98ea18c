"""Durable Order Submit webhooks/s and p99 latency, next to a bare aiohttp+orjson echo.

Both servers run in their own process and are driven by the same wrk client
with the same pre-signed bodies (distinct order ids, so every request is a
real creation). Each server's CPU time per request is read from /proc. Then,
in this process, what each stage of a durable Order Submit costs on its own
(signature, parse and redaction, the domain command, the event store's save,
the read models, the embedded Commerce projection's reading of the log), against
the CPU time the target ratio leaves per order.
Beside them the naive design (`naive_server.py`: the same checks and command,
one synchronous save per request on the event loop) on the same store, and
Returnflow with `--workers N` processes; `--store postgresql` adds a run of each
on a durable PostgreSQL server the bench starts.
Run: `python tests/bench/ingest.py [--seconds 5] [--connections 32] [--workers N]
[--store sqlite|postgresql]`.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from eventsourcing.domain import Aggregate, event

from projections.cloudevents import StateFolder
from projections.read_models import ReadModels
from projections.relay import cloudevents_page
from projections.replay import ReadModelFollower
from projections.sync import SYNCED_EVENTS
from service.aggregate_cache import AggregateCache, PrivateCopies
from service.operations import receive_order
from service.payloads import body_hash, parse_json, parse_order_submit
from service.signatures import SHA512_HEADER, SignatureVerifier
from service.store import open_store
from service.unit_of_work import Mode, UnitOfWork
from tests.bench.harness import (
    API_TOKEN,
    SECRET,
    WrkResult,
    cpu_seconds,
    echo_server,
    naive_server,
    returnflow_server,
    sign,
    write_requests,
    wrk,
)
from tests.commerce_sim.seeds import seed_order_submit
from tests.postgres.server import PostgresServer, wait_ready

TARGET = 0.40
BATCH = 32
"""Orders per transaction in the stage timings: what the writer's group commit sees under
the bench's 32 connections."""


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
                counts[outcome] += int(float(line.rsplit(" ", 1)[1]))
    return counts["created"], counts["duplicate"]


class Bare(Aggregate):
    """The cheapest aggregate the event store can save: one event, one small attribute."""

    @event("Created")
    def __init__(self, n: int) -> None:
        self.n = n


def _per_order(count: int, work: Callable[[], object]) -> float:
    """CPU microseconds per order (waits for the disk excluded, as the budget is CPU)."""
    started = time.process_time()
    work()
    return (time.process_time() - started) / count * 1e6


def stage_costs(bodies: list[bytes], directory: Path) -> dict[str, float]:
    """CPU microseconds per order for each stage alone, one thread, real SQLite."""
    directory.mkdir()
    count = len(bodies)
    verifier = SignatureVerifier([SECRET])
    signed = [(body, {SHA512_HEADER: sign(body)}) for body in bodies]

    def loads() -> None:
        for body in bodies:
            orjson.loads(body)

    costs = {"(orjson.loads alone)": _per_order(count, loads)}
    costs["signature (HMAC-SHA512)"] = _per_order(
        count, lambda: [verifier.verify(body, headers) for body, headers in signed]
    )
    parsed: list[tuple[object, str]] = []
    costs["parse, validate, redact, hash"] = _per_order(
        count,
        lambda: parsed.extend((parse_order_submit(parse_json(body)), body_hash(body)) for body in bodies),
    )
    store = open_store(f"sqlite:///{directory / 'stages.db'}")
    batches = [parsed[i : i + BATCH] for i in range(0, count, BATCH)]
    copies = PrivateCopies(store, AggregateCache())
    units: list[UnitOfWork] = []

    def commands() -> None:
        for batch in batches:
            uow = UnitOfWork(store, Mode.BATCH, copies=copies)
            for payload, cause in batch:
                receive_order(uow, payload=payload, cause=cause)  # type: ignore[arg-type]
            units.append(uow)

    costs["domain command"] = _per_order(count, commands)
    costs["event store save"] = _per_order(count, lambda: [store.save(*uow.pending()) for uow in units])
    models = ReadModels(str(directory / "stages-models.db"))
    follower = ReadModelFollower(store, models)

    def catch_up() -> None:
        while follower.step():
            pass

    costs["read models"] = _per_order(count, catch_up)
    folder = StateFolder(store)

    def project() -> None:
        position = 0
        while (page := cloudevents_page(store, folder, position, 200, SYNCED_EVENTS)).read:
            position = page.position

    costs["Commerce projection: read and fold the log"] = _per_order(count, project)
    bare = open_store(f"sqlite:///{directory / 'bare.db'}")
    costs["(library alone: create and save a bare aggregate)"] = _per_order(
        count, lambda: [bare.save(*(Bare(n) for n in range(BATCH))) for _ in batches]
    )
    for closing in (models, store, bare):
        closing.close()
    return costs


@dataclass
class Served:
    name: str
    result: WrkResult
    cpu_us: float
    naive: str | None = None
    """The name of the naive run on the same store, for the ratios."""


def servers(args: argparse.Namespace, tmp: Path, requests_file: Path) -> list[Served]:
    runs: list[Served] = []
    stores = [("SQLite", None)]
    server: PostgresServer | None = None
    if args.store == "postgresql":
        server = PostgresServer(durable=True)
        server.start()
        wait_ready(server)
        stores.append(("PostgreSQL", server))
    try:
        for label, pg in stores:

            def store(name: str, pg: PostgresServer | None = pg) -> str:
                return pg.create_database(name) if pg else f"sqlite:///{tmp / (name + '.db')}"

            naive = f"naive ({label})"
            with naive_server(store("naive")) as url:
                runs.append(Served(naive, *measured(url, requests_file, args)[:2]))
            counts = [1, args.workers] if pg is None and args.workers > 1 else [args.workers]
            for workers in counts:
                with returnflow_server(tmp, store=store(f"rf{workers}"), workers=workers) as url:
                    name = f"returnflow ({label}, {workers} worker{'s' if workers > 1 else ''})"
                    runs.append(Served(name, *measured(url, requests_file, args)[:2], naive=naive))
    finally:
        if server is not None:
            server.stop()
            server.remove()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--bodies", type=int, default=60_000, help="distinct orders to cycle through")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        requests_file = Path(tmp) / "orders.tsv"
        write_requests(requests_file, order_bodies(args.bodies, "bench-o"))
        with echo_server() as url:
            wrk(url, requests_file, seconds=1, connections=args.connections)
            echo, echo_cpu, client_cpu = measured(url, requests_file, args)
        runs = servers(args, Path(tmp), requests_file)
        durable = next(r for r in runs if r.name.startswith("returnflow (SQLite, 1"))
        for warm in (True, False):
            costs = stage_costs(
                [body for _, body in order_bodies(3_000, f"stage-{warm}-o")],
                Path(tmp) / ("warm-up" if warm else "measured"),
            )
    report_runs(Served("echo (aiohttp+orjson)", echo, echo_cpu), runs, args)
    report_stages(echo, echo_cpu, client_cpu, durable.result, durable.cpu_us, costs)


def report_runs(echo: Served, runs: list[Served], args: argparse.Namespace) -> None:
    print(f"{args.connections} connections, {args.seconds} s each, distinct orders {args.bodies}")
    print(f"{'':34}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}{'CPU us/req':>12}")
    for run in (echo, *runs):
        r = run.result
        print(
            f"{run.name:34}{r.requests_per_s:>10.0f}{r.p50_ms:>10.2f}"
            f"{r.p99_ms:>10.2f}{r.non_2xx:>10}{run.cpu_us:>12.0f}"
        )
    by_name = {run.name: run for run in runs}
    for run in runs:
        if run.naive is None:
            continue
        naive = by_name[run.naive].result
        print(
            f"{run.name}: {run.result.requests_per_s / naive.requests_per_s:.2f} x the naive "
            f"design's throughput (target >= 2), p99 {run.result.p99_ms / naive.p99_ms:.2f} x "
            f"its p99 (target <= 1); {run.result.requests_per_s / echo.result.requests_per_s:.2f}"
            f" x the echo's (target >= {TARGET:.2f})"
        )


def report_stages(
    echo: WrkResult,
    echo_cpu: float,
    client_cpu: float,
    durable: WrkResult,
    durable_cpu: float,
    costs: dict[str, float],
) -> None:
    budget = 1e6 / (TARGET * echo.requests_per_s)
    print(f"\nstages of one Order Submit, each alone in one thread (us per order, {BATCH} per commit):")
    for name, micros in costs.items():
        print(f"  {name:52}{micros:>8.1f}")
    stages = sum(v for k, v in costs.items() if not k.startswith("("))
    served = echo_cpu + stages - costs["(orjson.loads alone)"]
    ideal = echo_cpu + sum(
        costs[k] for k in ("signature (HMAC-SHA512)", "domain command", "event store save")
    )
    print(f"  {'stages together':52}{stages:>8.1f}")
    print(f"CPU per order the target leaves on one core (1 s / ({TARGET:.2f} x echo req/s)): {budget:.0f} us")
    print(
        f"  the echo's whole request + the stages (orjson.loads counted once): {served:.0f} us "
        f"= {served / budget:.2f} x that"
    )
    print(
        f"  the echo's whole request + signature + command + save, nothing else: "
        f"{ideal:.0f} us = {ideal / budget:.2f} x that"
    )
    print(
        f"  returnflow (SQLite, 1 worker) as served: {durable_cpu:.0f} us = {durable_cpu / budget:.2f} x that"
    )
    rate = TARGET * echo.requests_per_s
    print(
        f"cores needed at the target's {rate:,.0f} orders/s: the echo's request + the stages "
        f"{served * rate / 1e6:.2f}, wrk {client_cpu * rate / 1e6:.2f} "
        f"({client_cpu:.0f} us per request); returnflow as served "
        f"{durable_cpu * rate / 1e6:.2f}; this machine has {len(os.sched_getaffinity(0))}"
    )


def measured(url: str, requests_file: Path, args: argparse.Namespace) -> tuple[WrkResult, float, float]:
    """The wrk result, the server's and wrk's own CPU microseconds per answered request. The
    server's includes what it still does after wrk stops (followers catching up)."""
    before, client_before = cpu_seconds(url), _children_cpu()
    result = wrk(url, requests_file, seconds=args.seconds, connections=args.connections)
    client = _children_cpu() - client_before
    per_request = 1e6 / max(result.total, 1)
    return result, (_settled_cpu(url) - before) * per_request, client * per_request


def _settled_cpu(url: str, quiet_s: float = 0.01, within_s: float = 15.0) -> float:
    """The server's CPU seconds once a quarter second passes with under `quiet_s` more."""
    deadline = time.monotonic() + within_s
    previous = cpu_seconds(url)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = cpu_seconds(url)
        if now - previous < quiet_s:
            return now
        previous = now
    return previous


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
