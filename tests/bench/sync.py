"""Commerce sync through a real Kafka broker: events/s, webhook -> Commerce PUT lag, and the
Commerce calls per return (GETs and PUTs apart: every PUT is built on a GET, SPEC section 8).

`returnflow serve`, `returnflow relay`, `returnflow sync` and the Commerce
simulator run as their own processes against a real broker; the simulator answers every
call after 20 ms. Returns are driven at a target event rate; for every operator
action the lag is the time from its HTTP 200 (event stored) to the moment the
simulator answered the first PUT carrying that state (so it includes the 20 ms).
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
from collections import defaultdict
from pathlib import Path

import orjson
from aiohttp import ClientSession

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from projections.commerce_client import CommerceClient
from tests.bench.harness import free_port, wait_for_port
from tests.e2e.scenario import SECRET, TOKEN, Driver, commerce_holds, settled_in
from tests.kafka.broker import KafkaBroker

APP_KEY = "bench-app-key"
WARM_UP_FROM = 900_000

EVENTS_PER_RETURN = 13


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


def state_lags(
    marks: list[tuple[str, str, float]], puts: list[tuple[str, str | None, float]]
) -> tuple[list[float], int]:
    """Per stored state: ms until Commerce answered a PUT carrying it or a later state.

    A burst coalesced into one call still counts for every state it covered, at
    the time that call landed. A PUT can land before the driver has read its 200:
    that counts as no lag, and only PUTs after the subject's previous action count.
    """
    states: dict[str, list[str]] = defaultdict(list)
    for subject, state, _ in marks:
        states[subject].append(state)
    seen: dict[str, int] = defaultdict(int)
    previous: dict[str, float] = defaultdict(float)
    answered: dict[str, list[tuple[float, str | None]]] = defaultdict(list)
    for subject, put_state, at in puts:
        answered[subject].append((at, put_state))
    lags, unseen = [], 0
    for subject, _state, marked in marks:
        later = set(states[subject][seen[subject] :])
        seen[subject] += 1
        arrived = [at for at, s in answered[subject] if at >= previous[subject] and s in later]
        previous[subject] = marked
        if arrived:
            lags.append(max(0.0, min(arrived) - marked) * 1000)
        else:
            unseen += 1
    return lags, unseen


def calls_per_return(calls: list[dict[str, object]], returns: int) -> str:
    """Commerce calls per measured return (the return request and its order), GETs and PUTs apart."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for call in calls:
        path = str(call["path"])
        subject = path.rsplit("/", 1)[-1]
        if not subject[1:].isdigit() or int(subject[1:]) >= WARM_UP_FROM or "/ccadmin/v1/" not in path:
            continue
        resource = "returnRequests" if "/returnRequests/" in path else "orders"
        counts[(str(call["method"]), resource)] += 1
    parts = [
        f"{method} {resource} {counts[(method, resource)] / returns:.2f}"
        for method in ("GET", "PUT")
        for resource in ("returnRequests", "orders")
    ]
    total = {m: sum(v for (k, _), v in counts.items() if k == m) / returns for m in ("GET", "PUT")}
    return f"Commerce calls per return: {', '.join(parts)} (GETs {total['GET']:.2f}, PUTs {total['PUT']:.2f})"


async def baseline_put_ms(sim_url: str, http: ClientSession) -> float:
    order, _ = commerce_holds(0)
    async with http.post(f"{sim_url}/__sim/seed", json={"orders": [order]}) as response:
        assert response.status == 201
    client = CommerceClient(sim_url, APP_KEY)
    samples = []
    for _ in range(50):
        started = time.perf_counter()
        await client.update_order("o0", {"state": "PROCESSING"})
        samples.append((time.perf_counter() - started) * 1000)
    await client.close()
    return statistics.median(samples)


async def seed(sim_url: str, http: ClientSession, numbers: list[int]) -> None:
    for first in range(0, len(numbers), 500):
        held = [commerce_holds(n) for n in numbers[first : first + 500]]
        async with http.post(
            f"{sim_url}/__sim/seed",
            json={
                "orders": [o for o, _ in held],
                "returns": [r for _, r in held],
            },
        ) as response:
            assert response.status == 201


async def settled(sim_url: str, http: ClientSession, numbers: list[int]) -> int:
    async with http.get(f"{sim_url}/__sim/state") as response:
        state = await response.json()
    return sum(settled_in(state["orders"], state["returns"], n) for n in numbers)


async def warm_up(driver: Driver, sim_url: str, http: ClientSession) -> None:
    """Consumer group joined, connections and tokens made: measure the steady state only."""
    numbers = list(range(WARM_UP_FROM, WARM_UP_FROM + 20))
    await asyncio.gather(*(driver.full(n) for n in numbers))
    deadline = time.time() + 60
    while time.time() < deadline and await settled(sim_url, http, numbers) < len(numbers):
        await asyncio.sleep(0.2)


async def run(rate: int, seconds: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="rf-sync-bench-"))
    broker = KafkaBroker(tmp / "kafka")
    await asyncio.to_thread(broker.install)
    await asyncio.to_thread(broker.start)
    db = tmp / "rf.db"
    port, sim_port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    env = {
        **os.environ,
        "RETURNFLOW_STORE": f"sqlite:///{db}",
        "RETURNFLOW_KAFKA_BOOTSTRAP": broker.bootstrap,
        "RETURNFLOW_WEBHOOK_SECRETS": SECRET,
        "RETURNFLOW_API_TOKEN": TOKEN,
        "RETURNFLOW_PORT": str(port),
        "RETURNFLOW_LOG_FORMAT": "json",
        "RETURNFLOW_COMMERCE_URL": sim_url,
        "RETURNFLOW_COMMERCE_APP_KEY": APP_KEY,
        "RETURNFLOW_RELAY_INLINE": "false",
    }
    returns = max(1, rate * seconds // EVENTS_PER_RETURN)
    logs = [(tmp / f"{name}.log").open("wb") for name in ("commerce", "serve", "relay", "sync")]
    commerce = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.commerce_sim.server",
            "--port",
            str(sim_port),
            "--latency-ms",
            "20",
            "--app-key",
            APP_KEY,
        ],
        stdout=logs[0],
        stderr=logs[0],
    )
    processes = [commerce]
    marks: list[tuple[str, str, float]] = []
    try:
        wait_for_port(sim_port)
        async with ClientSession() as http:
            put_ms = await baseline_put_ms(sim_url, http)
            measured = list(range(1, returns + 1))
            await seed(sim_url, http, measured + list(range(WARM_UP_FROM, WARM_UP_FROM + 20)))
            for name, log in zip(("serve", "relay", "sync"), logs[1:], strict=True):
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "service.cli", name], env=env, stdout=log, stderr=log
                    )
                )
            wait_for_port(port)
            await warm_up(Driver(http, f"http://127.0.0.1:{port}"), sim_url, http)
            with sqlite3.connect(db) as connection:
                first_event = connection.execute("SELECT MAX(rowid) FROM stored_events").fetchone()[0]
            driver = TimedDriver(http, f"http://127.0.0.1:{port}", marks=marks)
            started = time.time()
            interval = EVENTS_PER_RETURN / rate
            tasks = []
            for n in range(1, returns + 1):
                tasks.append(asyncio.create_task(driver.full(n)))
                await asyncio.sleep(max(0.0, started + n * interval - time.time()))
            scheduled = time.time() - started
            await asyncio.gather(*tasks)
            driven = time.time() - started
            deadline = time.time() + 120
            done = 0
            while time.time() < deadline and (done := await settled(sim_url, http, measured)) < returns:
                await asyncio.sleep(0.5)
            drained = time.time() - started
            async with http.get(f"{sim_url}/__sim/calls") as response:
                calls = await response.json()
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(20)
        await asyncio.to_thread(broker.stop)
    with sqlite3.connect(db) as connection:
        events = connection.execute(
            "SELECT COUNT(*) FROM stored_events WHERE rowid > ?", (first_event,)
        ).fetchone()[0]
    puts = [
        (c["path"].rsplit("/", 1)[-1], (c["body"] or {}).get("state"), c["at"])
        for c in calls
        if c["method"] == "PUT" and 200 <= c["status"] < 300
    ]
    lags, unseen = state_lags(marks, puts)
    (tmp / "samples.json").write_bytes(orjson.dumps({"marks": marks, "puts": puts}))
    return_puts = [p for p in puts if p[0].startswith("R") and int(p[0][1:]) < WARM_UP_FROM]
    per_return = len(return_puts) / returns
    print(
        f"returns {returns} ({done} settled in Commerce), events stored {events} "
        f"({events / returns:.0f} per return)"
    )
    print(
        f"offered {returns * EVENTS_PER_RETURN / scheduled:.0f} events/s (a return started every "
        f"{1000 * interval:.0f} ms for {scheduled:.1f} s); stored {events / driven:.0f} events/s "
        f"until the last return's last action at {driven:.1f} s; "
        f"everything in Commerce after {drained:.1f} s"
    )
    print(f"end-to-end throughput {events / drained:.0f} events/s")
    print(
        f"webhook->PUT lag ms: p50 {percentile(lags, 0.5):.1f}  p99 {percentile(lags, 0.99):.1f}"
        f"  (n={len(lags)}, {unseen} never reached Commerce; target p99 <= 250)"
    )
    print(
        f"baseline: one simulator PUT round trip {put_ms:.1f} ms (20 ms injected latency); "
        f"p99 lag / PUT = {percentile(lags, 0.99) / put_ms:.1f}x"
    )
    print(f"updateReturnRequest calls per return {per_return:.2f} (visible return states per return: 5)")
    print(calls_per_return(calls, returns))
    print(f"raw samples and process logs: {tmp}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=1000, help="target events/s")
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(run(args.rate, args.seconds))


if __name__ == "__main__":
    main()
