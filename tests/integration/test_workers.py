"""`returnflow serve --workers N`: several processes on one port, supervised, sharing the store."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import pytest
from aiohttp import ClientSession, TCPConnector

from tests.conftest import free_port
from tests.integration import stale_answers
from tests.serve_process import serve_process


@contextlib.contextmanager
def serving(store: str, workers: int, log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    projections = str(log.with_suffix(".projections.db"))
    with serve_process(store, port, log, "--workers", str(workers), "--projections", projections) as proc:
        yield f"http://127.0.0.1:{port}", proc


@contextlib.asynccontextmanager
async def fresh_connections() -> AsyncIterator[ClientSession]:
    """A new connection per request, so the kernel may hand each to another worker."""
    async with ClientSession(connector=TCPConnector(force_close=True)) as http:
        yield http


async def workers_seen(http: ClientSession, url: str, want: int, timeout: float = 30) -> dict[int, int]:
    """worker index -> pid, once every worker has answered a /healthz."""
    seen: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < want:
        assert time.monotonic() < deadline, f"only workers {sorted(seen)} answered"
        with contextlib.suppress(OSError):
            async with http.get(url + "/healthz") as r:
                body = await r.json()
                seen[body["worker"]] = body["pid"]
        await asyncio.sleep(0.01)
    return seen


async def created_in_metrics(http: ClientSession, url: str, want: int = 20) -> float:
    """Orders created, summed over the workers of one scrape (others' figures are up to a
    second old, so this asks again for a few seconds)."""
    deadline = time.monotonic() + 5
    while True:
        async with http.get(url + "/metrics") as r:
            text = await r.text()
        for index in (0, 1):
            assert f'process_cpu_seconds_total{{worker="{index}"}}' in text
        created = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith('returnflow_requests_total{outcome="webhook_created"')
        )
        if created >= want or time.monotonic() > deadline:
            return created
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_workers_share_the_port_and_the_store_and_are_restarted(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    if backend == "sqlite":
        store = f"sqlite:///{tmp_path / 'rf.db'}"
    else:
        from tests.postgres.plugin import new_database

        store = new_database(request.getfixturevalue("postgres_server"))
    with serving(store, 2, tmp_path / "serve.log") as (url, parent):
        async with fresh_connections() as http:
            pids = await workers_seen(http, url, 2)
            for n in range(20):
                order = stale_answers._order(f"o-w{n}")
                async with http.post(url + "/webhooks/order-submit", data=orjson.dumps(order)) as r:
                    assert r.status == 200, await r.text()
            for n in range(20):
                async with http.get(f"{url}/orders/o-w{n}") as r:
                    assert r.status == 200, f"o-w{n} stored, seen by whichever worker answers"
            assert await created_in_metrics(http, url) == 20, "every worker's figures, labelled"
            os.kill(pids[1], signal.SIGKILL)
            deadline = time.monotonic() + 20
            while (await workers_seen(http, url, 2)).get(1) == pids[1]:
                assert time.monotonic() < deadline, "worker 1 was not started again"
            assert parent.poll() is None, "the supervisor outlived its worker"
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(20) == 0
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_workers_end_with_a_supervisor_killed_outright(tmp_path: Path) -> None:
    with serving(f"sqlite:///{tmp_path / 'rf.db'}", 2, tmp_path / "serve.log") as (url, parent):
        async with fresh_connections() as http:
            pids = await workers_seen(http, url, 2)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in pids.values()):
            assert time.monotonic() < deadline, "a worker outlived its supervisor"
            await asyncio.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(FileNotFoundError):
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    return False
