"""Leases: each single-process duty (embedded Commerce sync, relay, read-model follower) runs in
exactly one process at a time, and another takes over within seconds when its holder dies.

On PostgreSQL a lease is a session-level advisory lock held on a connection of its own: the
server releases it when that connection closes (the holder died, or its link broke). The
holder renews a row in `rf_leases` every second on that connection; when renewing fails or
hangs it stops its duty at once, and the server ends a session idle for longer than
`IDLE_SESSION_S` (a holder that hangs or is cut off), releasing the lock. A new holder whose
predecessor renewed less than `GRACE_S` ago waits out the rest first, by which time the
predecessor has stopped, so their calls never overlap. On SQLite a lease is an `fcntl.flock`
on a file beside the projections file: the kernel releases it when the holder's process dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
import socket
import weakref
import zlib
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from projections.database import SCHEMA_LOCK, is_postgres

log = structlog.get_logger(__name__)

RETRY_S = 1.0
"""How often a process that does not hold a lease tries to take it, and a holder renews it."""
RENEW_TIMEOUT_S = 1.0
GRACE_S = RETRY_S + RENEW_TIMEOUT_S + 0.5
"""Longest a holder that lost its connection may go on before it notices and stops."""
IDLE_SESSION_S = 10
Duty = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
_LIVE: weakref.WeakSet[Lease] = weakref.WeakSet()


def identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def live_leases() -> list[Lease]:
    """Every lease of this process (for /metrics: `held`, `acquired`, `lost`)."""
    return sorted(_LIVE, key=lambda lease: lease.name)


class Lease(Protocol):
    name: str
    held: bool
    acquired: int
    """Times this process took the lease."""
    lost: int
    """Times it lost the lease while holding it (not counting a clean release)."""

    def try_acquire(self) -> float | None:
        """None: held elsewhere; else the seconds to wait before starting the duty."""

    def renew(self) -> bool:
        """Still held? (False: stop the duty now.)"""

    def holder(self) -> str | None:
        """Who holds it, as far as can be told (host:pid...)."""

    def abandon(self) -> None:
        """Let go at once, without a word to anyone (after a failed or hung renewal)."""

    def release(self) -> None: ...

    def close(self) -> None: ...


def open_lease(database: str, name: str) -> Lease:
    """A lease where the projections live: PostgreSQL, a SQLite file, or none needed (memory)."""
    if is_postgres(database):
        return PostgresLease(database, name)
    if database == ":memory:" or database.startswith("file:"):
        return LocalLease(name)
    return FileLease(f"{database}.{name}.lock", name)


class _Counted:
    def __init__(self, name: str) -> None:
        self.name = name
        self.held = False
        self.acquired = 0
        self.lost = 0
        _LIVE.add(self)  # type: ignore[arg-type]


class LocalLease(_Counted):
    """Projections in this process's memory: nobody else can share them."""

    def try_acquire(self) -> float | None:
        self.held, self.acquired = True, self.acquired + 1
        return 0.0

    def renew(self) -> bool:
        return self.held

    def holder(self) -> str | None:
        return identity() if self.held else None

    def abandon(self) -> None:
        self.held = False

    def release(self) -> None:
        self.held = False

    def close(self) -> None:
        self.release()


class FileLease(_Counted):
    """`flock` on a lock file; the holder's host:pid is written into it for `holder()`."""

    def __init__(self, path: str, name: str) -> None:
        super().__init__(name)
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> float | None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        os.ftruncate(fd, 0)
        os.pwrite(fd, identity().encode(), 0)
        self._fd, self.held, self.acquired = fd, True, self.acquired + 1
        return 0.0

    def renew(self) -> bool:
        return self.held

    def holder(self) -> str | None:
        try:
            with open(self.path, encoding="utf-8") as f:
                return f.read().strip() or None
        except OSError:
            return None

    def abandon(self) -> None:
        self.release()

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self.held = None, False

    def close(self) -> None:
        self.release()


class PostgresLease(_Counted):
    """`pg_try_advisory_lock` on a dedicated connection, renewed in `rf_leases`."""

    def __init__(self, url: str, name: str) -> None:
        super().__init__(name)
        self.url = url
        self.key = zlib.crc32(f"returnflow-lease:{name}".encode())
        self.me = f"{identity()}/{secrets.token_hex(2)}"
        """host:pid, and which lease of that process (tests run several in one)."""
        self._conn: Any = None

    def _connect(self) -> Any:
        import psycopg

        conn = psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=5,
            application_name=f"returnflow-lease {self.name} {self.me}"[:63],
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=2,
        )
        conn.execute(f"SET idle_session_timeout = '{IDLE_SESSION_S}s'")
        conn.execute("SET statement_timeout = '5s'")
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS rf_leases (name TEXT PRIMARY KEY, holder TEXT "
                "NOT NULL, renewed_at TIMESTAMPTZ)"
            )
        return conn

    def try_acquire(self) -> float | None:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        if not row[0]:
            return None
        previous = self._conn.execute(
            "SELECT holder, extract(epoch FROM now() - renewed_at) FROM rf_leases WHERE name = %s",
            (self.name,),
        ).fetchone()
        self._conn.execute(
            "INSERT INTO rf_leases VALUES (%s, %s, now()) ON CONFLICT (name) DO UPDATE SET "
            "holder = excluded.holder, renewed_at = excluded.renewed_at",
            (self.name, self.me),
        )
        self.held, self.acquired = True, self.acquired + 1
        if previous is None or previous[1] is None or previous[0] == self.me:
            return 0.0
        return max(0.0, GRACE_S - float(previous[1]))

    def renew(self) -> bool:
        try:
            changed = self._conn.execute(
                "UPDATE rf_leases SET renewed_at = now() WHERE name = %s AND holder = %s",
                (self.name, self.me),
            ).rowcount
        except Exception as exc:
            log.warning("lease_renewal_failed", duty=self.name, error=type(exc).__name__)
            changed = 0
        return bool(changed)

    def holder(self) -> str | None:
        if self._conn is None or self._conn.closed:
            return None
        with contextlib.suppress(Exception):
            row = self._conn.execute("SELECT holder FROM rf_leases WHERE name = %s", (self.name,)).fetchone()
            return str(row[0]) if row else None
        return None

    def abandon(self) -> None:
        self._drop()

    def _drop(self) -> None:
        """Close the connection: whatever the server still holds for it is released with it."""
        self.held = False
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    def release(self) -> None:
        if self.held and self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.execute(
                    "UPDATE rf_leases SET renewed_at = NULL WHERE name = %s AND holder = %s",
                    (self.name, self.me),
                )
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        self.held = False

    def close(self) -> None:
        self.release()
        self._drop()


async def run_under_lease(lease: Lease, duty: Duty, stop: asyncio.Event) -> None:
    """Run `duty` while this process holds `lease`; try for it every second otherwise."""
    reported: str | None = None
    while not stop.is_set():
        try:
            wait = await asyncio.to_thread(lease.try_acquire)
        except Exception as exc:
            log.warning("lease_unavailable", duty=lease.name, error=type(exc).__name__)
            wait = None
        if wait is None:
            holder = await asyncio.to_thread(lease.holder)
            if holder != reported:
                log.info("lease_held_elsewhere", duty=lease.name, holder=holder)
                reported = holder
            await _sleep(stop, RETRY_S)
            continue
        reported = None
        log.info(
            "lease_acquired",
            duty=lease.name,
            holder=identity(),
            grace_s=round(wait, 2),
            at=datetime.now(UTC).isoformat(),
        )
        if not await _hold(lease, duty, stop, wait):
            # A process that just lost its lease (its connection broke) lets the others,
            # who try every second, take it first.
            await _sleep(stop, 2 * RETRY_S)
    await asyncio.to_thread(lease.release)


async def _hold(lease: Lease, duty: Duty, stop: asyncio.Event, wait: float) -> bool:
    """Renew every second; the duty runs (after `wait`) until stop, or is cancelled on a loss
    (answers False)."""
    duty_stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    loop = asyncio.get_running_loop()
    starts_at = loop.time() + wait
    while not stop.is_set():
        if task is None and loop.time() >= starts_at:
            task = asyncio.create_task(duty(duty_stop), name=f"lease-{lease.name}")
        elif task is not None and task.done():
            if not task.cancelled() and task.exception() is not None:
                log.error("leased_duty_failed", duty=lease.name, error=repr(task.exception()))
            task = None
            starts_at = loop.time() + RETRY_S
        await _sleep(stop, min(RETRY_S, max(0.0, starts_at - loop.time())) if task is None else RETRY_S)
        if stop.is_set():
            break
        try:
            held = await asyncio.wait_for(asyncio.to_thread(lease.renew), RENEW_TIMEOUT_S)
        except TimeoutError:
            held = False
        if not held:
            lease.held = False  # the fence: nothing more is sent from here on
            lease.lost += 1
            log.warning("lease_lost", duty=lease.name, holder=identity())
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            with contextlib.suppress(TimeoutError, Exception):
                await asyncio.wait_for(asyncio.to_thread(lease.abandon), RENEW_TIMEOUT_S)
            return False
    duty_stop.set()
    if task is not None:
        try:
            await asyncio.wait_for(task, timeout=10)
        except (asyncio.CancelledError, TimeoutError):
            pass
        except Exception:
            log.exception("leased_duty_failed", duty=lease.name)
    return True


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
