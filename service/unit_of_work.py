"""The aggregates one command (or one batch of commands) reads and changes.

Where it reads from is its mode, named by the constructor used: the writer's
batch (`for_batch`: optimistic creations, private copies), the writer's one
command (`alone`: private copies, or the store on a retry), a reader that must
not wait (`cached_only`), a reader that may load (`reading_through`).
"""

from __future__ import annotations

from enum import Enum
from typing import TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from domain.errors import DomainError
from service.aggregate_cache import AggregateCache, PrivateCopies
from service.store import EventStore

A = TypeVar("A", bound=Aggregate)


class CacheMiss(LookupError):
    """A cache-only unit of work needed an aggregate the cache does not hold."""


class Mode(Enum):
    """Where a unit of work reads what it has not read yet."""

    BATCH = "batch"
    """The writer's batch: its private copies, else the store; aggregates a command expects to
    be new (an Order Submit) are not read at all (optimistic: a duplicate collides on its
    deterministic id and the writer runs the batch again, one command at a time)."""
    COMMAND = "command"
    """The writer's one command: its private copies, else the store."""
    STORE = "store"
    """The store only (a retry after a conflict, a script)."""
    CACHED = "cached"
    """Read-only, never waits: the committed aggregates in memory; a miss raises CacheMiss."""
    READ_THROUGH = "read_through"
    """Read-only: the cache, else the store (what is loaded is cached if still current)."""


class UnitOfWork:
    """The aggregates one batch touches: commands in a batch see each other's changes."""

    def __init__(
        self,
        store: EventStore,
        mode: Mode = Mode.STORE,
        *,
        cache: AggregateCache | None = None,
        copies: PrivateCopies | None = None,
    ) -> None:
        if mode in (Mode.CACHED, Mode.READ_THROUGH) and cache is None:
            raise ValueError(f"a {mode.value} unit of work reads a cache: pass one")
        if mode in (Mode.BATCH, Mode.COMMAND) and copies is None:
            raise ValueError(f"a {mode.value} unit of work reads the writer's copies: pass them")
        self.store = store
        self.mode = mode
        self.cache = cache
        self.copies = copies
        self._aggregates: dict[UUID, Aggregate] = {}
        self.missed: set[UUID] = set()
        """Ids looked up and not found: an answer built on an absence."""

    def get(self, aggregate_id: UUID, kind: type[A], *, expect_new: bool = False) -> A | None:
        found = self._aggregates.get(aggregate_id)
        if found is None:
            if expect_new and self.mode is Mode.BATCH:
                return None
            found = self._load(aggregate_id)
            if found is None:
                return None
            self._aggregates[aggregate_id] = found
        if not isinstance(found, kind):
            raise DomainError(f"{aggregate_id} is not a {kind.__name__}", code="WRONG_KIND")
        return found

    def _load(self, aggregate_id: UUID) -> Aggregate | None:
        if self.cache is not None:
            found = self.cache.get(aggregate_id)
            if found is not None:
                return found
            if self.mode is Mode.CACHED:
                raise CacheMiss(aggregate_id)
        if self.copies is not None:
            found = self.copies.take(aggregate_id)
            if found is not None:
                return found
        generation = self.cache.generation if self.cache is not None else 0
        try:
            found = self.store.repository.get(aggregate_id)
        except AggregateNotFoundError:
            self.missed.add(aggregate_id)
            return None
        if self.cache is not None:
            self.cache.put_if_current((found,), generation)
        return found

    def add(self, aggregate: Aggregate) -> None:
        self._aggregates[aggregate.id] = aggregate

    def touched(self) -> list[Aggregate]:
        return list(self._aggregates.values())

    def pending(self) -> list[Aggregate]:
        return [a for a in self._aggregates.values() if a.pending_events]

    def pending_count(self) -> int:
        return sum(len(a.pending_events) for a in self._aggregates.values())
