"""The single writer thread: every write, in batches, one transaction per batch.

SQLite commits are expensive (WAL, synchronous=FULL) and the library is
synchronous, so one thread owns every write: requests queue commands, the writer
runs a batch of them against one unit of work and saves all their aggregates in
one transaction (group commit). Each request is answered only after that commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.errors import DomainError
from projections.metrics import WRITER_BATCH_SIZE, WRITER_COMMIT_SECONDS
from service.aggregate_cache import AggregateCache, PrivateCopies
from service.store import EventStore
from service.unit_of_work import Mode, UnitOfWork

log = structlog.get_logger(__name__)

T = TypeVar("T")


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
    contended: int = 0
    """Commands given up after colliding on every retry (answered 503)."""
    largest_batch: int = 0


class StoreContended(RuntimeError):
    """Other processes kept writing the same aggregates first: nothing was recorded, and the
    caller may simply try again (HTTP 503 with Retry-After)."""

    def __init__(self, attempts: int) -> None:
        super().__init__(f"the command collided with other writers {attempts} times; retry")
        self.attempts = attempts


class Writer:
    """One thread, all writes, group commit. Submit from any thread or from asyncio."""

    def __init__(
        self,
        store: EventStore,
        *,
        max_batch: int = 128,
        conflict_retries: int = 10,
        cache_entries: int = 4096,
    ) -> None:
        self.store = store
        self.max_batch = max_batch
        self.conflict_retries = conflict_retries
        self.stats = WriterStats()
        self.committed = AggregateCache(cache_entries)
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
        generation = self.committed.generation
        uow = UnitOfWork(self.store, Mode.BATCH, copies=self.copies)
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
        self._remember(uow.touched(), generation)
        for job, result, error in results:
            job.answer(result, error)
        return True

    def _save(self, pending: list[Aggregate]) -> None:
        with WRITER_COMMIT_SECONDS.time():
            recordings = self.store.save(*pending)
        try:
            self.copies.saved([r.notification.id for r in recordings])
        except Exception:
            log.exception(
                "change_notice_failed",
                advice="other processes see this commit within their one-second recheck",
            )

    def _remember(self, committed: list[Aggregate], generation: int) -> None:
        """After the commit: keep what the batch touched, except an aggregate another process's
        write dropped from the cache meanwhile (the batch may have read it before that write;
        its older version is gone from the cache with the drop). A cache that fails is emptied,
        never a reason to call a committed command failed."""
        try:
            self.committed.put_if_current(committed, generation)
        except Exception:
            log.exception("writer_cache_failed")
            self.committed.clear()

    def _commit_alone(self, job: _Job) -> None:
        """Cached copies first; a version conflict (another process wrote first) is retried
        on aggregates read from the store."""
        for attempt in range(self.conflict_retries + 1):
            generation = self.committed.generation
            uow = (
                UnitOfWork(self.store, Mode.COMMAND, copies=self.copies)
                if attempt == 0
                else UnitOfWork(self.store, Mode.STORE)
            )
            try:
                result = job.command(uow)
                self._save(uow.pending())
            except IntegrityError:
                self.stats.conflicts += 1
                if attempt == self.conflict_retries:
                    self.stats.contended += 1
                    log.warning(
                        "command_given_up", attempts=attempt + 1, reason="version conflict on every retry"
                    )
                    job.answer(error=StoreContended(attempt + 1))
                    return
                time.sleep(min(0.02, 0.001 * 2**attempt) * random.uniform(0.5, 1.5))
                continue
            except BaseException as exc:
                if not isinstance(exc, DomainError):
                    log.exception("command_failed")
                job.answer(error=exc)
                return
            self._remember(uow.touched(), generation)
            job.answer(result)
            return
