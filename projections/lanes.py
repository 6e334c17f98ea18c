"""Per-resource lanes between the Kafka consumer and Commerce: order per key, concurrency across keys.

A message waits only for earlier messages of its own resource, never for a
batch of others; what piles up in a lane while its call is in flight goes out
as one coalesced call. Offsets are committed only up to the first message not
yet done in each partition, so a crash replays at most what was in flight (the
ledger skips what was already applied).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import structlog

log = structlog.get_logger(__name__)

P = TypeVar("P", bound=Hashable)
Project = Callable[[Sequence[dict[str, Any]]], Awaitable[None]]


class Retry(Exception):
    """Raised by `project` when the messages should be tried again later (Commerce unreachable)."""


@dataclass
class _Lane(Generic[P]):
    pending: list[tuple[P, int, dict[str, Any]]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


@dataclass
class _Offsets:
    order: deque[int] = field(default_factory=deque)
    done: set[int] = field(default_factory=set)


class KeyedLanes(Generic[P]):
    """Messages in, by (partition, offset, key); `committable()` says how far each partition is done."""

    def __init__(
        self,
        project: Project,
        stop: asyncio.Event,
        *,
        retryable: type[Exception] = Retry,
        max_backoff_s: float = 10.0,
    ) -> None:
        self.project = project
        self.stop = stop
        self.retryable = retryable
        self.max_backoff_s = max_backoff_s
        self.in_flight = 0
        self.failure: BaseException | None = None
        """An unexpected error in a lane; the consumer re-raises it and starts a new session."""
        self._lanes: dict[str, _Lane[P]] = {}
        self._offsets: dict[P, _Offsets] = {}

    def add(self, partition: P, offset: int, key: str, message: dict[str, Any] | None) -> None:
        """`message` None: nothing to project (undecodable), done at once."""
        offsets = self._offsets.setdefault(partition, _Offsets())
        offsets.order.append(offset)
        if message is None:
            offsets.done.add(offset)
            return
        self.in_flight += 1
        lane = self._lanes.setdefault(key, _Lane())
        lane.pending.append((partition, offset, message))
        if lane.task is None:
            lane.task = asyncio.create_task(self._drain(key, lane))

    def committable(self) -> dict[P, int]:
        """Per partition, the offset to commit (one past the last of a run of done messages)."""
        commits = {}
        for partition, offsets in self._offsets.items():
            last = None
            while offsets.order and offsets.order[0] in offsets.done:
                last = offsets.order.popleft()
                offsets.done.discard(last)
            if last is not None:
                commits[partition] = last + 1
        return commits

    def forget(self, partitions: Sequence[P]) -> None:
        """Partitions taken away in a rebalance: their new owner starts from the last commit."""
        for partition in partitions:
            self._offsets.pop(partition, None)

    async def drain(self, timeout: float) -> None:
        """Let every lane finish what it holds (on shutdown or before giving partitions up)."""
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def cancel(self) -> None:
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._lanes.clear()

    async def _drain(self, key: str, lane: _Lane[P]) -> None:
        try:
            while lane.pending and not self.stop.is_set():
                taken, lane.pending = lane.pending, []
                if not await self._project_until_done([m for _, _, m in taken]):
                    lane.pending[:0] = taken
                    return
                for partition, offset, _ in taken:
                    offsets = self._offsets.get(partition)
                    if offsets is not None:
                        offsets.done.add(offset)
                self.in_flight -= len(taken)
        except Exception as exc:
            log.exception("sync_lane_failed", key=key)
            self.failure = exc
        finally:
            lane.task = None
            if not lane.pending:
                self._lanes.pop(key, None)

    async def _project_until_done(self, messages: list[dict[str, Any]]) -> bool:
        """False only when stopping: the messages stay uncommitted for the next consumer."""
        backoff = 0.1
        while True:
            try:
                await self.project(messages)
                return True
            except self.retryable:
                try:
                    await asyncio.wait_for(self.stop.wait(), backoff)
                    return False
                except TimeoutError:
                    backoff = min(backoff * 2, self.max_backoff_s)
