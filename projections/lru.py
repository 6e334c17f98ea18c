"""A bounded, counted mapping: every in-process cache in Returnflow is one of these.

Caches hold copies of what the store holds, so a miss only costs a read and an
entry may be dropped at any time; what must never happen is growth with the
store. Each cache names itself and registers, so `/metrics` can report entries,
hits, misses and evictions for all of them without each owner wiring it up.
Not thread-safe on its own: owners that share one across threads hold a lock.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_LIVE: weakref.WeakSet[Lru[object, object]] = weakref.WeakSet()


@dataclass(frozen=True)
class CacheStats:
    name: str
    entries: int
    capacity: int
    hits: int
    misses: int
    evictions: int


class Lru(Generic[K, V]):
    """Least recently used entries go first once `capacity` is exceeded."""

    def __init__(self, name: str, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"cache {name}: capacity must be at least 1, not {capacity}")
        self.name = name
        self.capacity = capacity
        self.hits = self.misses = self.evictions = 0
        self._items: OrderedDict[K, V] = OrderedDict()
        _LIVE.add(self)  # type: ignore[arg-type]

    def get(self, key: K, valid: Callable[[V], bool] | None = None) -> V | None:
        """A use: counted, and the entry becomes the most recent. An entry `valid` refuses is
        dropped, and counts as a miss."""
        found = self._items.get(key)
        if found is not None and valid is not None and not valid(found):
            del self._items[key]
            found = None
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return found

    def peek(self, key: K) -> V | None:
        """Not a use: neither counted nor moved."""
        return self._items.get(key)

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
            self.evictions += 1

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def values(self) -> list[V]:
        return list(self._items.values())

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def stats(self) -> CacheStats:
        return CacheStats(self.name, len(self._items), self.capacity, self.hits, self.misses, self.evictions)


def live_caches() -> Iterator[CacheStats]:
    """Every cache of this process that is still in use, for `/metrics`."""
    for cache in list(_LIVE):
        yield cache.stats()
