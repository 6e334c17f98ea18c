"""Two real `returnflow serve` processes on one store (development mode, loopback): one runs the
embedded Commerce sync, the other takes over within seconds of a SIGKILL, and Commerce never
receives an older state after a newer one; `returnflow audit` sees the calls from anywhere."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientError, ClientSession

from projections.positions import side_database
from projections.read_models import ReadModels
from projections.sync import SyncLedger
from service.store import open_store
from tests.commerce_sim.server import CommerceSimulator
from tests.conftest import free_port
from tests.e2e.scenario import Driver, commerce_done, seed_commerce, wait_for

ROOT = Path(__file__).resolve().parents[2]
RANK = {
    "PENDING_CUSTOMER_ACTION": 0,
    "PARTIAL_RETURN": 1,
    "FULL_RETURN": 2,
    "PENDING_REFUND": 3,
    "MANUAL_REFUND": 3,
    "COMPLETE": 4,
}


def clean_env() -> dict[str, str]:
    """No RETURNFLOW_* from the caller (development mode, no Kafka); this checkout's code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETURNFLOW_")}
    return {**env, "PYTHONPATH": str(ROOT)}


class Replica:
    def __init__(self, name: str, store: str, commerce: CommerceSimulator, log: Path) -> None:
        self.name, self.log, self.port = name, log, free_port()
        env = {**clean_env(), "RETURNFLOW_LOG_FORMAT": "json"}
        if store.startswith("postgresql://"):
            env["CREATE_TABLE"] = "false"  # eventsourcing's setting: see `replicas`
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "service.cli",
                    "serve",
                    "--store",
                    store,
                    "--port",
                    str(self.port),
                    "--commerce-url",
                    commerce.url,
                    "--commerce-app-key",
                    commerce.app_key,
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def events(self, name: str, **fields: Any) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_bytes().splitlines():
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if record.get("event") == name and all(record.get(k) == v for k, v in fields.items()):
                found.append(record)
        return found

    def holds_sync(self) -> bool:
        return bool(self.events("lease_acquired", duty="embedded-sync"))


@asynccontextmanager
async def replicas(
    store: str, commerce: CommerceSimulator, tmp_path: Path, count: int = 2
) -> AsyncIterator[list[Replica]]:
    # The event store's own tables first, and the replicas told not to create them: their
    # creation race is the store's to settle (service/store.py). The projections' tables are
    # created by the replicas, together.
    open_store(store).close()
    started = [Replica(f"r{i}", store, commerce, tmp_path / f"r{i}.log") for i in range(count)]
    try:
        async with ClientSession() as http:
            for replica in started:
                await _healthy(http, replica)
        yield started
    finally:
        for replica in started:
            if replica.process.poll() is None:
                replica.process.send_signal(signal.SIGTERM)
        for replica in started:
            try:
                await asyncio.to_thread(replica.process.wait, 20)  # the simulator answers meanwhile
            except subprocess.TimeoutExpired:
                replica.process.kill()


async def _healthy(http: ClientSession, replica: Replica, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert replica.process.poll() is None, replica.log.read_text()[-3000:]
        try:
            async with http.get(replica.url + "/healthz") as response:
                if response.status == 200:
                    return
        except ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{replica.name} never became healthy")


def assert_no_put_regressed(sim: CommerceSimulator, returns: range) -> None:
    """Each return's PUTs in arrival order (its own path exactly: R1 is a prefix of R10): its
    state and received quantity never go back."""
    for n in returns:
        states = [
            (
                RANK[c.body["state"]],
                sum(i.get("quantityReceived", 0) for i in c.body.get("returnItemList", [])),
            )
            for c in sim.puts(f"/ccadmin/v1/returnRequests/R{n}")
            if "state" in c.body and c.path == f"/ccadmin/v1/returnRequests/R{n}"
        ]
        assert states == sorted(states), f"R{n} went back: {states}"
        credits = [
            p["amountCredited"]
            for c in sim.puts(f"/ccadmin/v1/orders/o{n}")
            if c.path == f"/ccadmin/v1/orders/o{n}"
            for p in c.body.get("paymentGroups", [])
            if p["id"] == "pg20005"
        ]
        assert credits == sorted(credits), f"o{n} credit went back: {credits}"


async def _drive(
    replicas_by_step: Callable[[int], tuple[Replica, Replica]], n: int, http: ClientSession
) -> None:
    first, second = replicas_by_step(n)
    await Driver(http, first.url).order_and_return(n)
    await Driver(http, second.url).warehouse_and_refund(n)


async def test_one_replica_syncs_the_other_takes_over_after_sigkill(store_url: str, tmp_path: Path) -> None:
    async with CommerceSimulator(latency_ms=50) as sim:
        for n in range(1, 9):
            seed_commerce(sim, n)
        async with replicas(store_url, sim, tmp_path) as (a, b), ClientSession() as http:
            await wait_for(lambda: a.holds_sync() or b.holds_sync(), 15, "a sync lease holder")
            holder, other = (a, b) if a.holds_sync() else (b, a)
            await asyncio.gather(*(_drive(lambda n: (a, b) if n % 2 else (b, a), n, http) for n in (1, 2, 3)))
            await wait_for(lambda: all(commerce_done(sim, n) for n in (1, 2, 3)), 30, "sync")
            assert holder.events("commerce_call") and not other.events("commerce_call"), (
                "only the lease holder calls Commerce"
            )
            assert not other.holds_sync()
            ledger = SyncLedger(side_database(store_url))
            for n in (1, 2, 3):
                sent = [(c["path"], c["version"]) for c in ledger.calls_for(f"R{n}")]
                assert sent and len(sent) == len(set(sent)), "each state projected once"

            await asyncio.gather(*(_drive(lambda n: (other, other), n, http) for n in range(4, 7)))
            await wait_for(
                lambda: any(sim.puts(f"/ccadmin/v1/returnRequests/R{n}") for n in range(4, 7)),
                30,
                "the holder syncing",
            )
            holder.process.send_signal(signal.SIGKILL)  # mid-stream
            killed_at = time.monotonic()
            after_kill = asyncio.gather(*(_drive(lambda n: (other, other), n, http) for n in (7, 8)))
            await wait_for(other.holds_sync, 10, "the survivor taking over the sync")
            assert time.monotonic() - killed_at < 8
            await after_kill
            await wait_for(
                lambda: all(commerce_done(sim, n) for n in range(1, 9)), 60, "the survivor finishing the sync"
            )
            assert other.events("commerce_call")
            models, store = ReadModels(side_database(store_url)), open_store(store_url)
            last = int(store.recorder.max_notification_id() or 0)
            await wait_for(lambda: models.position() == last, 15, "the survivor's read models")
            assert models.document("rf_return_view", "R8")["state"] == "COMPLETE"
            models.close()
            store.close()
            assert_no_put_regressed(sim, range(1, 9))
            assert all(ledger.calls_for(f"R{n}") for n in range(4, 9))
            ledger.close()
            audit = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "service.cli",
                    "audit",
                    "R5",
                    "--store",
                    store_url,
                    "--format",
                    "json",
                ],
                cwd=ROOT,
                env=clean_env(),
                capture_output=True,
                timeout=60,
                check=False,
            )
            assert audit.returncode == 0, audit.stderr.decode()[-2000:]
            calls = orjson.loads(audit.stdout)["commerceCalls"]
            assert {c["path"] for c in calls} == {"/ccadmin/v1/returnRequests/R5"}
            assert calls[-1]["status"] == 200


@pytest.mark.parametrize("replica_count", [3])
async def test_replicas_started_together_on_an_empty_store_all_serve(
    store_url: str, tmp_path: Path, replica_count: int
) -> None:
    """The projections' tables are created by all of them at once, and one takes each lease."""
    async with CommerceSimulator() as sim, replicas(store_url, sim, tmp_path, replica_count) as started:
        await wait_for(lambda: sum(r.holds_sync() for r in started) == 1, 15, "one sync holder")
        await asyncio.sleep(1.5)
        assert sum(r.holds_sync() for r in started) == 1
        assert sum(bool(r.events("lease_acquired", duty="read-models")) for r in started) == 1
