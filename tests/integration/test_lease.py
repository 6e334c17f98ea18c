"""Leases on SQLite (flock) and PostgreSQL (advisory lock): one holder at a time, handed over
within seconds when the holder goes, and a holder whose connection broke stops its duty."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from projections.lease import (
    FileLease,
    PostgresLease,
    identity,
    open_lease,
    run_under_lease,
)
from projections.positions import side_database
from service.metrics import leases_metrics


@pytest.fixture
def projections(store_url: str) -> str:
    return side_database(store_url)


def test_one_holder_at_a_time_and_a_release_hands_over_at_once(projections: str) -> None:
    first, second = open_lease(projections, "duty"), open_lease(projections, "duty")
    assert isinstance(first, PostgresLease | FileLease)
    assert first.try_acquire() == 0.0 and first.held
    assert second.try_acquire() is None and not second.held
    assert (second.holder() or "").startswith(identity()), "who holds it can be told"
    assert open_lease(projections, "other duty").try_acquire() == 0.0, "duties are independent"
    first.release()
    assert second.try_acquire() == 0.0, "a clean release leaves no grace to wait out"
    assert first.try_acquire() is None
    text = generate_latest(_LeaseMetrics()).decode()
    assert 'returnflow_lease_held{duty="duty"} 1.0' in text
    assert 'returnflow_lease_acquired_total{duty="duty"} 1.0' in text
    for lease in (first, second):
        lease.close()


class _LeaseMetrics(CollectorRegistry):
    """The leases' part of `/metrics`, as `service.metrics` renders it."""

    def __init__(self) -> None:
        super().__init__()
        self.register(_Collector())


class _Collector(Collector):
    def collect(self) -> Iterator[Metric]:
        return leases_metrics()


class Duties:
    """Records which holder runs the duty, and any moment two ran at once."""

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.started: list[tuple[str, float]] = []
        self.overlaps = 0

    def duty(self, name: str) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
        async def run(stop: asyncio.Event) -> None:
            self.overlaps += bool(self.running)
            self.running.add(name)
            self.started.append((name, time.monotonic()))
            try:
                await stop.wait()
            finally:
                self.running.discard(name)

        return run


async def _wait(predicate: Callable[[], object], timeout: float) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "timed out"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_the_duty_runs_once_and_moves_when_its_holder_goes(projections: str) -> None:
    duties = Duties()
    leases = {name: open_lease(projections, "sync") for name in ("a", "b")}
    stops = {name: asyncio.Event() for name in leases}
    tasks = {
        name: asyncio.create_task(run_under_lease(lease, duties.duty(name), stops[name]))
        for name, lease in leases.items()
    }
    await _wait(lambda: duties.running, 5)
    await asyncio.sleep(1.5)
    (holder,) = duties.running
    other = "b" if holder == "a" else "a"
    assert [name for name, _ in duties.started] == [holder], "the other process waits"
    if isinstance(leases[holder], PostgresLease):
        _terminate_connection(projections, leases[holder])  # the holder's link to the server broke
    else:
        stops[holder].set()  # the holder shuts down
    took = await _wait(lambda: other in duties.running, 8)
    assert took < 6, "taken over within seconds"
    assert holder not in duties.running, "the old holder stopped its duty"
    assert duties.overlaps == 0
    for name in leases:
        stops[name].set()
    await asyncio.wait_for(asyncio.gather(*tasks.values()), 15)
    assert leases[holder].lost == (1 if isinstance(leases[holder], PostgresLease) else 0)
    for lease in leases.values():
        lease.close()


def _terminate_connection(url: str, lease: PostgresLease) -> None:
    import psycopg

    pid = lease._conn.info.backend_pid
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_new_holder_waits_out_the_grace_of_a_holder_that_vanished(store_url: str) -> None:
    """The server released the lock (connection gone) but the old holder renewed a moment ago:
    it may not have noticed yet, so the new holder starts only once it must have stopped."""
    if not store_url.startswith("postgresql://"):
        pytest.skip("flock cannot be lost by a live process: no grace on SQLite")
    first, second = PostgresLease(store_url, "sync"), PostgresLease(store_url, "sync")
    assert first.try_acquire() == 0.0 and first.renew()
    _terminate_connection(store_url, first)
    time.sleep(0.2)
    wait = second.try_acquire()
    assert wait is not None and 1.0 < wait <= 2.5
    assert not first.renew(), "the old holder learns it lost the lease"
    first.close()
    second.close()
