"""Commerce sync through a real Kafka broker: events/s and webhook -> Commerce PUT lag.

`returnflow serve` (inline relay) and `returnflow sync` run as their own processes
against a real broker; the Commerce simulator answers every call after 20 ms.
Returns are driven at a target event rate; for every operator action the lag is
the time from its HTTP 200 (event stored) to the first PUT carrying that state.
Baseline in the same run: the simulator's own round trip for one PUT.

Run: `python tests/bench/sync.py [--rate 1000] [--seconds 20]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import ClientSession

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from projections.commerce_client import CommerceClient
from tests.bench.harness import free_port, wait_for_port
from tests.commerce_sim.server import CommerceSimulator
from tests.e2e.scenario import SECRET, TOKEN, Driver, commerce_done, seed_commerce
from tests.kafka.broker import KafkaBroker

EVENTS_PER_RETURN = 15


class TimedDriver(Driver):
    """Remembers when each action's new state was stored."""

    def __init__(self, *args: object, marks: list[tuple[str, str, float]]) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.marks = marks

    async def act(self, path: str, body: object) -> object:
        view = await super().act(path, body)
        assert isinstance(view, dict)
        self.marks.append((str(view["id"]), str(view["state"]), time.time()))
        return view


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def baseline_put_ms(sim: CommerceSimulator) -> float:
    seed_commerce(sim, 0)
    client = CommerceClient(sim.url, sim.app_key)
    samples = []
    for _ in range(50):
        started = time.perf_counter()
        await client.update_order("o0", {"state": "PROCESSING"})
        samples.append((time.perf_counter() - started) * 1000)
    await client.close()
    return statistics.median(samples)


async def run(rate: int, seconds: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="rf-sync-bench-"))
    broker = KafkaBroker(tmp / "kafka")
    await asyncio.to_thread(broker.install)
    await asyncio.to_thread(broker.start)
    db = tmp / "rf.db"
    port = free_port()
    env = {**os.environ, "RETURNFLOW_STORE": f"sqlite:///{db}",
           "RETURNFLOW_KAFKA_BOOTSTRAP": broker.bootstrap, "RETURNFLOW_WEBHOOK_SECRETS": SECRET,
           "RETURNFLOW_API_TOKEN": TOKEN, "RETURNFLOW_PORT": str(port),
           "RETURNFLOW_LOG_FORMAT": "json"}
    returns = max(1, rate * seconds // EVENTS_PER_RETURN)
    async with CommerceSimulator(latency_ms=20) as sim:
        put_ms = await baseline_put_ms(sim)
        for n in range(1, returns + 1):
            seed_commerce(sim, n)
        env["RETURNFLOW_COMMERCE_URL"] = sim.url
        env["RETURNFLOW_COMMERCE_APP_KEY"] = sim.app_key
        logs = (tmp / "serve.log").open("wb"), (tmp / "sync.log").open("wb")
        serve = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=env,
                                 stdout=logs[0], stderr=logs[0])
        sync = subprocess.Popen([sys.executable, "-m", "service.cli", "sync"], env=env,
                                stdout=logs[1], stderr=logs[1])
        marks: list[tuple[str, str, float]] = []
        try:
            wait_for_port(port)
            async with ClientSession() as http:
                driver = TimedDriver(http, f"http://127.0.0.1:{port}", marks=marks)
                started = time.time()
                interval = EVENTS_PER_RETURN / rate
                tasks = []
                for n in range(1, returns + 1):
                    tasks.append(asyncio.create_task(driver.full(n)))
                    await asyncio.sleep(max(0.0, started + n * interval - time.time()))
                await asyncio.gather(*tasks)
                driven = time.time() - started
                deadline = time.time() + 120
                while time.time() < deadline and not all(
                    commerce_done(sim, n) for n in range(1, returns + 1)
                ):
                    await asyncio.sleep(0.2)
                drained = time.time() - started
        finally:
            for process in (serve, sync):
                process.terminate()
                process.wait(20)
            await asyncio.to_thread(broker.stop)
        with sqlite3.connect(db) as connection:
            events = connection.execute("SELECT MAX(rowid) FROM stored_events").fetchone()[0]
        lags = []
        puts = [(c.path.rsplit("/", 1)[-1], (c.body or {}).get("state"), c.at) for c in sim.puts()]
        for subject, state, at in marks:
            arrived = [t for s, st, t in puts if s == subject and st == state and t >= at]
            if arrived:
                lags.append((min(arrived) - at) * 1000)
        return_puts = [p for p in sim.puts("/ccadmin/v1/returnRequests/")]
        per_return = len(return_puts) / returns
        done = sum(commerce_done(sim, n) for n in range(1, returns + 1))
    print(f"returns {returns} ({done} settled in Commerce), events stored {events}")
    print(f"ingest rate {events / driven:.0f} events/s over {driven:.1f} s; "
          f"everything in Commerce after {drained:.1f} s")
    print(f"end-to-end throughput {events / drained:.0f} events/s")
    print(f"webhook->PUT lag ms: p50 {percentile(lags, 0.5):.1f}  p99 {percentile(lags, 0.99):.1f}"
          f"  (n={len(lags)}; target p99 <= 250)")
    print(f"baseline: one simulator PUT round trip {put_ms:.1f} ms (20 ms injected latency); "
          f"p99 lag / PUT = {percentile(lags, 0.99) / put_ms:.1f}x")
    print(f"updateReturnRequest calls per return {per_return:.2f} "
          f"(visible return states per return: 5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=1000, help="target events/s")
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(run(args.rate, args.seconds))


if __name__ == "__main__":
    main()
