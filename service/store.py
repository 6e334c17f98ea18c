"""The event store (an eventsourcing Application) and the single writer thread in front of it.

The library is synchronous and SQLite commits are expensive (WAL, synchronous=FULL),
so one thread owns every write: requests queue commands, the writer runs a batch
of them against one unit of work and saves all their aggregates in one
transaction (group commit). Each request is answered only after that commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import queue
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Transcoder
from eventsourcing.sqlite import SQLiteAggregateRecorder

from domain.errors import DomainError
from projections.metrics import WRITER_BATCH_SIZE, WRITER_COMMIT_SECONDS
from projections.relay import sqlite_file
from service.change_notice import ChangeNotice
from service.transcoding import OrjsonTranscoder

log = structlog.get_logger(__name__)

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)


class EventStore(Application[UUID]):
    """Returnflow's event store: orders and return requests, one notification log."""

    name = "Returnflow"

    def construct_transcoder(self) -> Transcoder:
        transcoder = OrjsonTranscoder()
        self.register_transcodings(transcoder)
        return transcoder


def store_env(url: str) -> dict[str, str]:
    """Map RETURNFLOW_STORE (`sqlite:///path`, `postgresql://…`, `memory:`) to library settings."""
    if url in ("memory:", "memory://"):
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if not path:
            raise ValueError("sqlite store needs a path: sqlite:///returnflow.db")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {"PERSISTENCE_MODULE": "service.sqlite_recorder:Factory", "SQLITE_DBNAME": path,
                "SQLITE_LOCK_TIMEOUT": "30"}
    if url.startswith(("postgresql://", "postgres://")):
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(url)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parts.path.lstrip("/") or "returnflow",
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
        }
    raise ValueError(f"unsupported RETURNFLOW_STORE {url!r} (sqlite:///…, postgresql://…, memory:)")


def open_store(url: str) -> EventStore:
    return EventStore(env=store_env(url))


class AggregateCache:
    """Committed aggregates for read-only paths (the validation webhook), newest version wins.

    Only objects that will never be mutated again go in: what the writer has
    just committed (its next batch works on private copies), or what a reader loaded.
    Readers must treat what they get as read-only. Per process: with several
    processes writing one store, a reader may see a version another process has
    since superseded (the writer itself always reads the store).
    """

    def __init__(self, capacity: int = 50_000) -> None:
        self.capacity = capacity
        self.generation = 0
        """Moves on whenever entries are dropped as stale; see `put_if_current`."""
        self._items: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, aggregate_id: UUID) -> Aggregate | None:
        with self._lock:
            found = self._items.get(aggregate_id)
            if found is not None:
                self._items.move_to_end(aggregate_id)
            return found

    def peek(self, aggregate_id: UUID) -> Aggregate | None:
        """Without counting as a use (one dict read: no lock needed)."""
        return self._items.get(aggregate_id)

    def put(self, aggregate: Aggregate) -> None:
        with self._lock:
            known = self._items.get(aggregate.id)
            if known is None or known.version <= aggregate.version:
                self._items[aggregate.id] = aggregate
                self._items.move_to_end(aggregate.id)
            if len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def put_if_current(self, aggregate: Aggregate, generation: int) -> None:
        """For what a reader loaded: kept only if nothing was found stale since it began loading
        (else the load may predate a write whose eviction has already happened)."""
        with self._lock:
            if self.generation != generation:
                return
        self.put(aggregate)

    def forget(self, aggregate_ids: set[UUID]) -> None:
        with self._lock:
            self.generation += 1
            for aggregate_id in aggregate_ids:
                self._items.pop(aggregate_id, None)

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._items.clear()


class PrivateCopies:
    """The writer's mutable aggregates: copies of what it committed, while nothing newer is stored.

    Copying costs about a tenth of rebuilding an aggregate from its events. Before
    each batch (and before a reader trusts the cache) one query asks whether
    anything but this writer has written since it last looked (another process
    sharing the store); whatever was, is dropped from the cache and read from the
    store. On a SQLite file the query is skipped while the store's change notice
    (`service.change_notice`) still holds the token seen at the last query, for at
    most `recheck_s`. A write that slips in during a batch makes the save collide,
    and the writer retries on aggregates read from the store.
    """

    def __init__(self, store: EventStore, committed: AggregateCache, *,
                 recheck_s: float = 1.0) -> None:
        """`recheck_s`: the longest the store goes unasked, for writers that announce nothing."""
        self.store = store
        self.committed = committed
        self.recheck_s = recheck_s
        self.queries = 0
        self._known: int | None = None
        """Every write up to this notification id is reflected in `committed`."""
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._path: str | None = None
        self._table = ""
        self._notice: ChangeNotice | None = None
        self._closed = False
        self._token = b""
        self._asked_at = 0.0
        name = sqlite_file(store)
        if name is not None:
            assert isinstance(store.recorder, SQLiteAggregateRecorder)
            self._path, self._table = name, store.recorder.events_table_name
            self._notice = ChangeNotice.beside(name)

    def refresh(self) -> None:
        """Forget what another process has written since the last look (before each batch, and
        before a reader trusts the cache). Any thread."""
        with self._lock:
            if self._closed:
                self.committed.clear()
                return
            token = self._notice.token() if self._notice is not None else b""
            now = time.monotonic()
            if (token and token == self._token and self._known is not None
                    and now - self._asked_at < self.recheck_s):
                return
            self.queries += 1
            newest = self._newest()
            if self._known is None:
                self.committed.clear()
            elif newest > self._known:
                self.committed.forget(self._written_after(self._known))
            self._known, self._token, self._asked_at = newest, token, now

    def saved(self, notification_ids: list[int]) -> None:
        """After a commit, before it is acknowledged: other processes are told, and if nobody
        wrote in between, what we know extends over our own events."""
        if notification_ids and self._notice is not None:
            self._notice.announce()
        with self._lock:
            if notification_ids and self._known is not None \
                    and min(notification_ids) == self._known + 1:
                self._known = max(notification_ids)

    def take(self, aggregate_id: UUID) -> Aggregate | None:
        cached = self.committed.get(aggregate_id)
        if cached is None:
            return None
        copy: Aggregate = pickle.loads(pickle.dumps(cached, protocol=pickle.HIGHEST_PROTOCOL))
        return copy

    def _newest(self) -> int:
        if self._path is None:
            return int(self.store.recorder.max_notification_id() or 0)
        (newest,) = self._sqlite().execute(f"SELECT MAX(rowid) FROM {self._table}").fetchone()
        return int(newest or 0)

    def _written_after(self, position: int) -> set[UUID]:
        if self._path is None:
            found: set[UUID] = set()
            while batch := self.store.recorder.select_notifications(position + 1, 1000):
                found.update(UUID(str(n.originator_id)) for n in batch)
                position = batch[-1].id
            return found
        rows = self._sqlite().execute(
            f"SELECT DISTINCT originator_id FROM {self._table} WHERE rowid > ?", (position,))
        return {UUID(hex=row[0]) for row in rows}

    def _sqlite(self) -> sqlite3.Connection:
        """A private read connection: outside the library's reader-writer lock."""
        if self._db is None:
            assert self._path is not None
            uri = Path(self._path).resolve().as_uri() + "?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        return self._db

    def close(self) -> None:
        """After it nothing is trusted from the cache (a request still in flight at shutdown
        reads the store), and no connection is opened again."""
        with self._lock:
            self._closed = True
            if self._db is not None:
                self._db.close()
                self._db = None
            if self._notice is not None:
                self._notice.close()
                self._notice = None


class CacheMiss(LookupError):
    """A cache-only unit of work needed an aggregate the cache does not hold."""


class UnitOfWork:
    """The aggregates one batch touches: commands in a batch see each other's changes.

    An optimistic unit of work does not read aggregates a command expects to be
    new (an Order Submit): if one existed after all, the save collides on its
    deterministic id and the writer runs the batch again, one command at a time,
    without optimism. Duplicates are rare, so most creations skip a read.
    """

    def __init__(self, store: EventStore, *, optimistic: bool = False,
                 read_cache: AggregateCache | None = None, cache_only: bool = False,
                 copies: PrivateCopies | None = None) -> None:
        self.store = store
        self.optimistic = optimistic
        self.read_cache = read_cache
        self.cache_only = cache_only
        self.copies = copies
        self._aggregates: dict[UUID, Aggregate] = {}
        self.missed: set[UUID] = set()
        """Ids looked up and not found: an answer built on an absence."""

    def get(self, aggregate_id: UUID, kind: type[A], *, expect_new: bool = False) -> A | None:
        found = self._aggregates.get(aggregate_id)
        if found is None and expect_new and self.optimistic:
            return None
        if found is None and self.read_cache is not None:
            found = self.read_cache.get(aggregate_id)
        if found is None and self.copies is not None:
            found = self.copies.take(aggregate_id)
        if found is None:
            if self.cache_only:
                raise CacheMiss(aggregate_id)
            generation = self.read_cache.generation if self.read_cache is not None else 0
            try:
                found = self.store.repository.get(aggregate_id)
            except AggregateNotFoundError:
                self.missed.add(aggregate_id)
                return None
            if self.read_cache is not None:
                self.read_cache.put_if_current(found, generation)
        if found is not None:
            self._aggregates[aggregate_id] = found
        if not isinstance(found, kind):
            raise DomainError(f"{aggregate_id} is not a {kind.__name__}", code="WRONG_KIND")
        return found

    def add(self, aggregate: Aggregate) -> None:
        self._aggregates[aggregate.id] = aggregate

    def touched(self) -> list[Aggregate]:
        return list(self._aggregates.values())

    def pending(self) -> list[Aggregate]:
        return [a for a in self._aggregates.values() if a.pending_events]

    def pending_count(self) -> int:
        return sum(len(a.pending_events) for a in self._aggregates.values())


Command = Callable[[UnitOfWork], T]


@dataclass
class _Job:
    command: Command[Any]
    future: Future[Any] | asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop | None = None
    """Set when an event loop waits: its future is settled on that loop's thread."""
    result: Any = None
    error: BaseException | None = None
    answered: bool = False
    delivered: bool = False

    def answer(self, result: Any = None, error: BaseException | None = None) -> None:
        """A BaseException that is no Exception (SystemExit, say) reaches the caller wrapped:
        raised on an event loop it would stop the loop."""
        if error is not None and not isinstance(error, Exception):
            error = RuntimeError(repr(error))
        self.result, self.error, self.answered = result, error, True

    def settle(self) -> None:
        """Never raises: one answer a future refuses (asyncio refuses StopIteration) or a waiter
        that gave up meanwhile must not leave the rest of its batch unanswered."""
        if self.future.done():
            return
        try:
            if self.error is not None:
                self.future.set_exception(self.error)
            else:
                self.future.set_result(self.result)
        except Exception as exc:
            if not self.future.done():
                log.error("writer_answer_refused", error=repr(self.error), reason=repr(exc))
                self.future.set_exception(RuntimeError(f"the command failed: {self.error!r}"))


def _settle_all(jobs: list[_Job]) -> None:
    for job in jobs:
        job.settle()


@dataclass
class WriterStats:
    batches: int = 0
    commands: int = 0
    conflicts: int = 0
    largest_batch: int = 0


class Writer:
    """One thread, all writes, group commit. Submit from any thread or from asyncio."""

    def __init__(self, store: EventStore, *, max_batch: int = 128, conflict_retries: int = 5) -> None:
        self.store = store
        self.max_batch = max_batch
        self.conflict_retries = conflict_retries
        self.stats = WriterStats()
        self.committed = AggregateCache()
        """What this writer committed last, for readers that only read."""
        self.copies = PrivateCopies(store, self.committed)
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="returnflow-writer", daemon=True)
        self._started = False
        self._lock = threading.Lock()
        self.on_commit: list[Callable[[], None]] = []
        """Called on the writer thread after each commit that stored events (wakes followers)."""

    def start(self) -> None:
        with self._lock:
            if not self._started:
                self._thread.start()
                self._started = True

    def stop(self) -> None:
        with self._lock:
            if self._started:
                self._queue.put(None)
                self._thread.join()
                self._started = False
                self.copies.close()

    def submit(self, command: Command[T]) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put(_Job(command, future))
        return future

    def submit_async(self, command: Command[T]) -> asyncio.Future[T]:
        """For a caller on an event loop: a batch's answers reach each loop in one wake-up,
        not one cross-thread call per request (one per command in the one-at-a-time fallback,
        where each is answered after its own commit)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(command, future, loop))
        return future

    def run(self, command: Command[T], timeout: float | None = 60) -> T:
        return self.submit(command).result(timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stopping = False
            while len(batch) < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            try:
                self._commit(batch)
            except BaseException as exc:
                log.exception("writer_batch_failed", batch=len(batch))
                for job in batch:
                    if not job.answered:
                        job.answer(error=exc)
                self._deliver(batch)
            for hook in self.on_commit:
                try:
                    hook()
                except BaseException:
                    log.exception("writer_commit_hook_failed")
            if stopping:
                return

    def _commit(self, batch: list[_Job]) -> None:
        self.copies.refresh()
        self.stats.batches += 1
        self.stats.commands += len(batch)
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        WRITER_BATCH_SIZE.observe(len(batch))
        if len(batch) > 1 and self._commit_together(batch):
            self._deliver(batch)
            return
        for job in batch:
            self._commit_alone(job)
            self._deliver([job])

    @staticmethod
    def _deliver(jobs: list[_Job]) -> None:
        """Each answered job once: a thread waiting at once, each event loop in one wake-up
        (a closed loop has nobody left waiting)."""
        waiting: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in jobs:
            if job.delivered or not job.answered:
                continue
            job.delivered = True
            if job.loop is None:
                job.settle()
            else:
                waiting.setdefault(job.loop, []).append(job)
        for loop, ready in waiting.items():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle_all, ready)

    def _commit_together(self, batch: list[_Job]) -> bool:
        """All commands, one transaction. False: fall back to one at a time."""
        uow = UnitOfWork(self.store, optimistic=True, copies=self.copies)
        results: list[tuple[_Job, Any, BaseException | None]] = []
        for job in batch:
            before = uow.pending_count()
            try:
                results.append((job, job.command(uow), None))
            except DomainError as exc:
                if uow.pending_count() != before:
                    return False
                results.append((job, None, exc))
            except BaseException:
                return False
        pending = uow.pending()
        try:
            self._save(pending)
        except IntegrityError:
            self.stats.conflicts += 1
            return False
        except Exception as exc:
            log.exception("store_save_failed", batch=len(batch))
            for job, _, _ in results:
                job.answer(error=exc)
            return True
        self._remember(uow.touched())
        for job, result, error in results:
            job.answer(result, error)
        return True

    def _save(self, pending: list[Aggregate]) -> None:
        with WRITER_COMMIT_SECONDS.time():
            recordings = self.store.save(*pending)
        try:
            self.copies.saved([r.notification.id for r in recordings])
        except Exception:
            log.exception("change_notice_failed", advice="other processes see this commit "
                          "within their one-second recheck")

    def _remember(self, committed: list[Aggregate]) -> None:
        """After the commit: a cache that fails is emptied, never a reason to call a committed
        command failed."""
        try:
            for aggregate in committed:
                self.committed.put(aggregate)
        except Exception:
            log.exception("writer_cache_failed")
            self.committed.clear()

    def _commit_alone(self, job: _Job) -> None:
        """Cached copies first; a version conflict (another process wrote first) is retried
        on aggregates read from the store."""
        for attempt in range(self.conflict_retries + 1):
            uow = UnitOfWork(self.store, copies=None if attempt else self.copies)
            try:
                result = job.command(uow)
                self._save(uow.pending())
            except IntegrityError as exc:
                self.stats.conflicts += 1
                if attempt == self.conflict_retries:
                    job.answer(error=exc)
                    return
                time.sleep(0.001 * (2**attempt))
                continue
            except BaseException as exc:
                if not isinstance(exc, DomainError):
                    log.exception("command_failed")
                job.answer(error=exc)
                return
            self._remember(uow.touched())
            job.answer(result)
            return
