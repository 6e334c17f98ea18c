"""`returnflow sync` with RETURNFLOW_RECONCILE_INTERVAL: a periodic reconciliation beside the
consumer finds an agent's edit no webhook reported, and (with RETURNFLOW_RECONCILE_FIX) repairs it."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from pathlib import Path

import pytest

from tests.commerce_sim.server import CommerceSimulator
from tests.e2e.scenario import commerce_done, seed_commerce, wait_for
from tests.e2e.test_sync_kafka import Names, _spawn, serving
from tests.kafka.broker import KafkaBroker

pytestmark = pytest.mark.kafka


@pytest.fixture
def topics(monkeypatch: pytest.MonkeyPatch) -> Names:
    tag = uuid.uuid4().hex[:8]
    chosen = Names(f"e2e.{tag}.events", f"e2e.{tag}.dlq", f"e2e-{tag}")
    for key, value in chosen.env().items():
        monkeypatch.setenv(key, value)
    return chosen


def runs_recorded(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db.with_name("rf.projections.db"))) as connection:
        try:
            return int(connection.execute("SELECT COUNT(*) FROM rf_reconcile_runs").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


async def test_sync_reconciles_every_interval_and_repairs_drift(
    kafka_broker: KafkaBroker, topics: Names, tmp_path: Path
) -> None:
    db = tmp_path / "rf.db"
    env = {**topics.env(), "RETURNFLOW_RECONCILE_INTERVAL": "0.5", "RETURNFLOW_RECONCILE_FIX": "true"}
    async with CommerceSimulator() as sim:
        seed_commerce(sim, 1)
        sync = _spawn("sync", f"sqlite:///{db}", kafka_broker.bootstrap, env, tmp_path / "sync.log", sim.url)
        try:
            async with serving(db, kafka_broker.bootstrap) as driver:
                await driver.full(1)
                await wait_for(lambda: commerce_done(sim, 1), 60, "the return settled in Commerce")
            sim.agent_set_state("R1", "PENDING_REFUND")
            await wait_for(lambda: sim.returns["R1"]["state"] == "COMPLETE", 30, "the repair")
            await wait_for(lambda: runs_recorded(db) >= 2, 30, "rounds recorded")
        finally:
            sync.terminate()
            await asyncio.to_thread(sync.wait, 20)  # the simulator answers on this loop meanwhile
    assert sync.returncode == 0, (tmp_path / "sync.log").read_text()[-2000:]
