"""docker-compose.yml's deployment, run natively: PostgreSQL + Kafka + 2 `serve` + `relay` +
2 `sync` + Commerce (the simulator), each Returnflow piece a process of its own.

The compose file cannot run here (no Docker engine), so this runs the same topology
with the same settings: the relay apart from `serve` (RETURNFLOW_RELAY_INLINE=false),
both `sync` consumers in one group, everything shared in PostgreSQL. Returns are
driven through both `serve` replicas; Commerce must end with every return complete,
no PUT going back, and nothing dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession

from tests.commerce_sim.server import CommerceSimulator
from tests.conftest import free_port
from tests.contracts.asyncapi import drain
from tests.e2e.scenario import SECRET, TOKEN, Driver, commerce_done, seed_commerce, wait_for
from tests.integration.test_cluster_serve import ROOT, assert_no_put_regressed, clean_env
from tests.kafka.broker import KafkaBroker
from tests.postgres.plugin import new_database
from tests.postgres.server import PostgresServer

pytestmark = pytest.mark.kafka
RETURNS = range(1, 11)


@contextlib.asynccontextmanager
async def pieces(
    env: dict[str, str], logs: Path, *commands: list[str]
) -> AsyncIterator[list[subprocess.Popen[bytes]]]:
    started = []
    try:
        for n, argv in enumerate(commands):
            with (logs / f"{n}-{argv[0]}.log").open("wb") as out:
                started.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "service.cli", *argv],
                        cwd=ROOT,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in started:
            try:
                await asyncio.to_thread(proc.wait, 20)  # the simulator answers meanwhile
            except subprocess.TimeoutExpired:
                proc.kill()


async def healthy(http: ClientSession, url: str) -> None:
    async def answers() -> bool:
        with contextlib.suppress(OSError):
            async with http.get(url + "/healthz") as r:
                return r.status == 200
        return False

    for _ in range(300):
        if await answers():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never answered")


async def test_the_compose_deployment_natively(
    postgres_server: PostgresServer, kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    events, dlq = f"deploy.{tag}.events", f"deploy.{tag}.dlq"
    async with CommerceSimulator(latency_ms=10) as sim:
        for n in RETURNS:
            seed_commerce(sim, n)
        env = {
            **clean_env(),
            "RETURNFLOW_STORE": new_database(postgres_server),
            "RETURNFLOW_KAFKA_BOOTSTRAP": kafka_broker.bootstrap,
            "RETURNFLOW_RELAY_INLINE": "false",
            "RETURNFLOW_WEBHOOK_SECRETS": SECRET,
            "RETURNFLOW_API_TOKEN": TOKEN,
            "RETURNFLOW_COMMERCE_URL": sim.url,
            "RETURNFLOW_COMMERCE_APP_KEY": sim.app_key,
            "RETURNFLOW_LOG_FORMAT": "json",
            "RETURNFLOW_EVENTS_TOPIC": events,
            "RETURNFLOW_DLQ_TOPIC": dlq,
            "RETURNFLOW_SYNC_GROUP": f"deploy-{tag}",
        }
        ports = [free_port(), free_port()]
        serving = [["serve", "--port", str(port), "--workers", "2"] for port in ports]
        async with pieces(env, tmp_path, *serving, ["relay"], ["sync"], ["sync"]) as started:
            async with ClientSession() as http:
                urls = [f"http://127.0.0.1:{port}" for port in ports]
                for url in urls:
                    await healthy(http, url)
                await asyncio.gather(*(Driver(http, urls[n % 2]).order_and_return(n) for n in RETURNS))
                await asyncio.gather(
                    *(Driver(http, urls[(n + 1) % 2]).warehouse_and_refund(n) for n in RETURNS)
                )
                await wait_for(lambda: all(commerce_done(sim, n) for n in RETURNS), 120, "Commerce")
            assert all(proc.poll() is None for proc in started), "every piece still running"
        assert_no_put_regressed(sim, RETURNS)
        assert await drain(kafka_broker.bootstrap, dlq, timeout=5) == [], "nothing dead-lettered"
