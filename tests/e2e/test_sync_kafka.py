"""Webhook in -> event store -> relay -> real Kafka -> consumer group -> Commerce (simulated) out."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession, web
from aiokafka import AIOKafkaConsumer
from prometheus_client import REGISTRY

from projections.commerce_client import CommerceClient
from projections.sync import CommerceProjector, KafkaSync, SyncLedger
from service.app import create_app
from service.config import Settings
from service.store import open_store
from tests.commerce_sim.server import CommerceSimulator
from tests.conftest import count_events, free_port
from tests.contracts.asyncapi import drain, problems
from tests.e2e.scenario import (
    SECRET,
    TOKEN,
    Driver,
    assert_commerce_holds_the_return,
    commerce_done,
    credits_sent,
    seed_commerce,
    wait_for,
)
from tests.kafka.broker import KafkaBroker

pytestmark = pytest.mark.kafka


@dataclass
class Names:
    events: str
    dlq: str
    group: str

    def env(self) -> dict[str, str]:
        return {
            "RETURNFLOW_EVENTS_TOPIC": self.events,
            "RETURNFLOW_DLQ_TOPIC": self.dlq,
            "RETURNFLOW_SYNC_GROUP": self.group,
        }


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> Names:
    tag = uuid.uuid4().hex[:8]
    chosen = Names(f"e2e.{tag}.events", f"e2e.{tag}.dlq", f"e2e-{tag}")
    for key, value in chosen.env().items():
        monkeypatch.setenv(key, value)
    return chosen


@pytest.fixture(autouse=True)
async def messages_match_asyncapi(kafka_broker: KafkaBroker, names: Names) -> AsyncIterator[None]:
    """After each test: every message it published matches the AsyncAPI document."""
    yield
    published = {
        channel: await drain(kafka_broker.bootstrap, topic)
        for channel, topic in (("events", names.events), ("deadLetters", names.dlq))
    }
    assert published["events"], "the test published events"
    wrong = [p for channel, messages in published.items() for m in messages for p in problems(m, channel)]
    assert not wrong, wrong[:10]


@asynccontextmanager
async def serving(
    db: Path | str,
    bootstrap: str | None,
    commerce_url: str | None = None,
    relay_inline: bool = True,
    flavour: str = "classic",
) -> AsyncIterator[Driver]:
    """`db`: a SQLite file, or any RETURNFLOW_STORE URL."""
    store = db if isinstance(db, str) else f"sqlite:///{db}"
    settings = Settings(
        store=store,
        kafka_bootstrap=bootstrap,
        relay_inline=relay_inline,
        webhook_secrets=(SECRET,),
        api_token=TOKEN,
        port=free_port(),
        commerce_url=commerce_url,
        commerce_app_key="sim-app-key",
        commerce_flavour=flavour,
    )
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.port).start()
    try:
        async with ClientSession() as http:
            yield Driver(http, f"http://127.0.0.1:{settings.port}")
    finally:
        await runner.cleanup()


@asynccontextmanager
async def syncing(
    bootstrap: str,
    names: Names,
    sim: CommerceSimulator,
    ledger_db: Path,
    consumers: list[KafkaSync] | None = None,
) -> AsyncIterator[CommerceProjector]:
    ledger = SyncLedger(str(ledger_db))
    client = CommerceClient(sim.url, sim.app_key, backoff_base_s=0.05, backoff_cap_s=0.2, max_attempts=3)
    projector = CommerceProjector(client, ledger)
    stop = asyncio.Event()
    consumer = KafkaSync(bootstrap, projector, topic=names.events, dlq_topic=names.dlq, group_id=names.group)
    if consumers is not None:
        consumers.append(consumer)
    task = asyncio.create_task(consumer.run(stop))
    try:
        yield projector
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        await client.close()
        ledger.close()


async def read_topic(bootstrap: str, topic: str, count: int, timeout: float = 30) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: list[Any] = []
    try:

        async def collect() -> None:
            while len(seen) < count:
                batch = await consumer.getmany(timeout_ms=300)
                for records in batch.values():
                    seen.extend(orjson.loads(r.value) for r in records if r.value)

        await asyncio.wait_for(collect(), timeout)
    finally:
        await consumer.stop()
    return seen


async def test_seed_scenario_reaches_commerce_through_kafka(
    kafka_broker: KafkaBroker, names: Names, tmp_path: Path, store_url: str
) -> None:
    async with CommerceSimulator() as sim:
        seed_commerce(sim, 1)
        async with (
            serving(store_url, kafka_broker.bootstrap) as driver,
            syncing(kafka_broker.bootstrap, names, sim, tmp_path / "ledger.db") as projector,
        ):
            await driver.full(1)
            await wait_for(lambda: commerce_done(sim, 1), 60, "Commerce to hold the settled return")
        assert_commerce_holds_the_return(sim, 1)
        assert credits_sent(sim, 1)[-1] == 268.4
        assert all(c in (0, 268.4) for c in credits_sent(sim, 1)), "absolute, never added twice"
        return_calls = sim.puts("/ccadmin/v1/returnRequests/R1")
        # visible states: authorized, partial, full, pending refund, complete
        assert 1 <= len(return_calls) <= 5
        assert projector.calls == len(sim.puts())
        messages = await read_topic(kafka_broker.bootstrap, names.events, 1)
        assert messages[0]["specversion"] == "1.0" and messages[0]["data"]["state"]


async def test_broker_outage_during_ingestion_loses_nothing_and_keeps_order(
    kafka_broker: KafkaBroker, names: Names, store_url: str
) -> None:
    async with serving(store_url, kafka_broker.bootstrap) as driver:
        await driver.order_and_return(1)
        await asyncio.to_thread(kafka_broker.stop)
        try:
            for n in (2, 3):
                await driver.full(n)
        finally:
            await asyncio.to_thread(kafka_broker.start)
        await driver.warehouse_and_refund(1)
        total = await asyncio.to_thread(_stored_events, store_url)
        messages = await read_topic(kafka_broker.bootstrap, names.events, total, timeout=60)
    assert len({m["id"] for m in messages}) == total, "every stored event published"
    by_subject: dict[str, list[int]] = {}
    for message in messages:
        by_subject.setdefault(message["subject"], []).append(message["data"]["event"]["version"])
    for subject, versions in by_subject.items():
        assert versions == sorted(versions), f"{subject} out of order: {versions}"
        assert versions == list(range(1, len(versions) + 1)), f"{subject} has gaps: {versions}"


def _stored_events(store_url: str) -> int:
    store = open_store(store_url)
    try:
        return count_events(store)
    finally:
        store.close()


async def test_commerce_faults_drain_and_a_400_is_dead_lettered(
    kafka_broker: KafkaBroker, names: Names, tmp_path: Path
) -> None:
    async with CommerceSimulator() as sim:
        for n in (1, 2):
            seed_commerce(sim, n)
        sim.fail_next(503, 6)
        sim.fail_next(429, 3, retry_after=0.1)
        sim.fail_next(400, 1, prefix="/ccadmin/v1/returnRequests/R2", code="RETURN_LOCKED")
        async with (
            serving(tmp_path / "rf.db", kafka_broker.bootstrap) as driver,
            syncing(kafka_broker.bootstrap, names, sim, tmp_path / "rf.db"),
        ):
            await driver.full(1)
            await driver.order_and_return(2)
            await driver.act("/returns/R2/authorize", {"rma": "RMA2"})
            await wait_for(lambda: commerce_done(sim, 1), 90, "backlog to drain")
            dead = await read_topic(kafka_broker.bootstrap, names.dlq, 1, timeout=60)
        assert_commerce_holds_the_return(sim, 1)
        assert dead[0]["subject"] == "R2"
        assert dead[0]["status"] == 400
        assert "RETURN_LOCKED" in dead[0]["reason"]
        assert dead[0]["request"]["path"] == "/ccadmin/v1/returnRequests/R2"
    assert _sample("returnflow_commerce_dead_letters_total", operation="updateReturnRequest") >= 1
    assert (
        _sample(
            "returnflow_commerce_call_seconds_count", operation="updateReturnRequest", outcome="dead_letter"
        )
        >= 1
    )


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _spawn(
    command: str, store: str, bootstrap: str, env: dict[str, str], log: Path, commerce_url: str = ""
) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        "-m",
        "service.cli",
        command,
        "--store",
        store,
        "--kafka-bootstrap",
        bootstrap,
        "--log-format",
        "json",
    ]
    if command == "sync":
        argv += ["--commerce-url", commerce_url, "--commerce-app-key", "sim-app-key"]
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=out, env={**os.environ, **env})


async def test_kill_9_of_relay_and_consumer_mid_stream(
    kafka_broker: KafkaBroker, names: Names, tmp_path: Path, store_url: str
) -> None:
    db = store_url
    returns = range(1, 9)
    async with CommerceSimulator(latency_ms=20) as sim:
        for n in returns:
            seed_commerce(sim, n)
        env = names.env()
        relay = _spawn("relay", db, kafka_broker.bootstrap, env, tmp_path / "relay.log")
        sync = _spawn("sync", db, kafka_broker.bootstrap, env, tmp_path / "sync.log", sim.url)
        try:
            async with serving(db, kafka_broker.bootstrap, relay_inline=False) as driver:
                for n in returns:
                    await driver.full(n)
                    if n == 3:
                        relay.send_signal(signal.SIGKILL)
                        relay.wait()
                        relay = _spawn("relay", db, kafka_broker.bootstrap, env, tmp_path / "relay.log")
                    if n == 5:
                        await wait_for(lambda: len(sim.puts()) > 0, 30, "first calls")
                        sync.send_signal(signal.SIGKILL)
                        sync.wait()
                        sync = _spawn("sync", db, kafka_broker.bootstrap, env, tmp_path / "sync.log", sim.url)
                await wait_for(
                    lambda: all(commerce_done(sim, n) for n in returns),
                    120,
                    "every return settled in Commerce",
                )
        finally:
            for process in (relay, sync):
                process.terminate()
                await asyncio.to_thread(process.wait, 20)  # the simulator answers meanwhile
        for n in returns:
            assert_commerce_holds_the_return(sim, n)
            assert set(credits_sent(sim, n)) <= {0, 268.4}, "never credited twice"


async def test_partitions_moving_between_consumers_lose_nothing_and_credit_once(
    kafka_broker: KafkaBroker, names: Names, tmp_path: Path
) -> None:
    """A second consumer joins mid-stream, leaves, a third joins: lanes hand over at each move."""
    returns = range(1, 13)
    async with CommerceSimulator(latency_ms=10) as sim:
        for n in returns:
            seed_commerce(sim, n)
        async with (
            serving(tmp_path / "rf.db", kafka_broker.bootstrap) as driver,
            syncing(kafka_broker.bootstrap, names, sim, tmp_path / "a.db") as first,
        ):
            for n in (1, 2, 3):
                await driver.full(n)
            await wait_for(
                lambda: all(commerce_done(sim, n) for n in (1, 2, 3)), 60, "the first consumer alone"
            )
            joined: list[KafkaSync] = []
            async with syncing(kafka_broker.bootstrap, names, sim, tmp_path / "b.db", joined) as second:
                await wait_for(lambda: bool(joined[0].assignment), 60, "the group to rebalance")
                for n in range(4, 11):
                    await driver.full(n)
                await wait_for(lambda: second.calls > 0, 60, "the joiner's calls")
            async with syncing(kafka_broker.bootstrap, names, sim, tmp_path / "c.db"):
                for n in (11, 12):
                    await driver.full(n)
                await wait_for(
                    lambda: all(commerce_done(sim, n) for n in returns),
                    120,
                    "every return settled in Commerce",
                )
        assert first.calls > 0, "the first consumer did its share"
        for n in returns:
            assert_commerce_holds_the_return(sim, n)
            assert set(credits_sent(sim, n)) <= {0, 268.4}, "absolute credits, never added"
