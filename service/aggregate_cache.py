"""Committed aggregates kept in memory, and what keeps them fresh across processes.

`AggregateCache` serves read-only paths (the validation webhook) and is where the
writer takes its private copies from; `PrivateCopies.refresh` drops what other
processes sharing the store wrote since the last look.
"""

from __future__ import annotations

import pickle
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.sqlite import SQLiteAggregateRecorder

from projections.lru import CacheStats, Lru
from projections.relay import sqlite_file
from service.change_notice import ChangeNotice
from service.store import EventStore


class AggregateCache:
    """Committed aggregates for read-only paths (the validation webhook), bounded (LRU).

    Only objects that will never be mutated again go in: what the writer has
    just committed (its next batch works on private copies), or what a reader loaded.
    Readers must treat what they get as read-only.

    Never older than a write this process has been told of: `PrivateCopies.refresh`
    drops what other processes wrote, each drop noted with the `generation` it moved
    the cache to, and every entry goes in through `put_if_current` with the
    generation seen before its object was read: an aggregate dropped since then may
    have been read before the write that dropped it, and is not kept. Drops are
    remembered per aggregate (bounded; past the bound, conservatively, for all), so
    a write to one return does not turn away what was read meanwhile of another.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self.generation = 0
        """Moves on at each drop; see `put_if_current`."""
        self._items: Lru[UUID, Aggregate] = Lru("aggregates", capacity)
        self._dropped: OrderedDict[UUID, int] = OrderedDict()
        """Aggregate id -> the generation of its last drop (the newest few)."""
        self._dropped_capacity = 4 * capacity
        self._floor = 0
        """Reads that began before this generation are not kept: drops of theirs may have been
        forgotten."""
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return self._items.capacity

    def get(self, aggregate_id: UUID) -> Aggregate | None:
        with self._lock:
            return self._items.get(aggregate_id)

    def peek(self, aggregate_id: UUID) -> Aggregate | None:
        """Without counting as a use (one dict read: no lock needed)."""
        return self._items.peek(aggregate_id)

    def put_if_current(self, aggregates: Iterable[Aggregate], generation: int) -> bool:
        """Keep what was read while `generation` held, except an aggregate dropped since (the
        read may predate the write that dropped it). False: not all were kept."""
        with self._lock:
            if generation < self._floor:
                return False
            kept_all = True
            for aggregate in aggregates:
                if self._dropped.get(aggregate.id, -1) > generation:
                    kept_all = False
                    continue
                known = self._items.peek(aggregate.id)
                if known is None or known.version <= aggregate.version:
                    self._items.put(aggregate.id, aggregate)
            return kept_all

    def forget_older(self, written: dict[UUID, int]) -> None:
        """Drop what is older than the versions `written` (what other processes wrote). What is
        cached at that version or newer already (this process's own writes, interleaved with
        theirs) stays; one not cached is noted as dropped all the same, since a reader may be
        loading it from before the write."""
        with self._lock:
            self.generation += 1
            for aggregate_id, version in written.items():
                cached = self._items.peek(aggregate_id)
                if cached is None or cached.version < version:
                    self._drop(aggregate_id)

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._items.clear()
            self._dropped.clear()
            self._floor = self.generation

    def _drop(self, aggregate_id: UUID) -> None:
        self._items.pop(aggregate_id)
        self._dropped[aggregate_id] = self.generation
        self._dropped.move_to_end(aggregate_id)
        if len(self._dropped) > self._dropped_capacity:
            _, generation = self._dropped.popitem(last=False)
            self._floor = max(self._floor, generation)

    def __len__(self) -> int:
        return len(self._items)

    def entries(self) -> list[Aggregate]:
        with self._lock:
            return list(self._items.values())

    def stats(self) -> CacheStats:
        return self._items.stats()


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

    def __init__(self, store: EventStore, committed: AggregateCache, *, recheck_s: float = 1.0) -> None:
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
            if (
                token
                and token == self._token
                and self._known is not None
                and now - self._asked_at < self.recheck_s
            ):
                return
            self.queries += 1
            newest = self._newest()
            if self._known is None:
                self.committed.clear()
            elif newest > self._known:
                self.committed.forget_older(self._written_after(self._known))
            self._known, self._token, self._asked_at = newest, token, now

    def saved(self, notification_ids: list[int]) -> None:
        """After a commit, before it is acknowledged: other processes are told, and if nobody
        wrote in between, what we know extends over our own events."""
        if notification_ids and self._notice is not None:
            self._notice.announce()
        with self._lock:
            if notification_ids and self._known is not None and min(notification_ids) == self._known + 1:
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

    def _written_after(self, position: int) -> dict[UUID, int]:
        """Each aggregate written since `position`, with the newest version written."""
        found: dict[UUID, int] = {}
        if self._path is None:
            while batch := self.store.recorder.select_notifications(position + 1, 1000):
                for n in batch:
                    ident = UUID(str(n.originator_id))
                    found[ident] = max(found.get(ident, 0), n.originator_version)
                position = batch[-1].id
            return found
        rows = self._sqlite().execute(
            f"SELECT originator_id, MAX(originator_version) FROM {self._table} WHERE rowid > ? "
            "GROUP BY originator_id",
            (position,),
        )
        return {UUID(hex=ident): int(version) for ident, version in rows}

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
