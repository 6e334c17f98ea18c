"""The outbox relay: the event store's notification log -> `returnflow.events`, in order.

The store is the source of truth. The relay reads from its tracked position,
publishes each event as a CloudEvent keyed by the return or order id (so one
resource's events share a partition and stay in order) with an idempotent
producer, and advances the position only once the broker acknowledged the
whole page. Kafka down: webhooks are still stored; the relay retries the same
page until the broker is back, losing and reordering nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from eventsourcing.application import Application
from eventsourcing.domain import DomainEvent
from eventsourcing.sqlite import SQLiteAggregateRecorder, SQLiteApplicationRecorder
from eventsourcing.utils import resolve_topic

from projections.cloudevents import StateFolder, encode, to_cloudevent
from projections.lru import Lru
from projections.metrics import RELAY_LAG_EVENTS, RELAY_LAG_SECONDS, RELAY_PUBLISHED
from projections.positions import PositionStore

log = structlog.get_logger(__name__)

EVENTS_TOPIC = "returnflow.events"
DLQ_TOPIC = "returnflow.commerce.dlq"


_UUIDS: Lru[str, UUID] = Lru("uuids", 16_384)
_CLASSES: dict[str, type[Any]] = {}


def _uuid(hex_id: str) -> UUID:
    found = _UUIDS.get(hex_id)
    if found is None:
        found = UUID(hex_id)
        _UUIDS.put(hex_id, found)
    return found


@dataclass(frozen=True)
class Partition:
    """Aggregates whose id (32 hex digits, as SQLite stores it) lies in [low, high), and
    notifications up to `until`: one of several workers' shares of a parallel replay."""

    low: str
    high: str
    until: int


def can_read_directly(store: Application[UUID]) -> bool:
    mapper = store.mapper
    return isinstance(store.recorder, SQLiteApplicationRecorder) and not (mapper.cipher or mapper.compressor)


def sqlite_file(store: Application[UUID]) -> str | None:
    """The file behind a SQLite store; None for any other store, or SQLite in memory."""
    recorder = store.recorder
    if not isinstance(recorder, SQLiteAggregateRecorder):
        return None
    name = str(recorder.datastore.pool.db_name)
    return None if name == ":memory:" or name.startswith("file:") else name


def read_page(
    store: Application[UUID], after: int, limit: int, partition: Partition | None = None
) -> list[tuple[int, DomainEvent]]:
    """Notifications after `after`, decoded; synchronous (run it off the event loop).

    On SQLite (no cipher, no compression) rows are read and decoded directly:
    the same steps as the library's mapper, with ids and classes cached, about
    twice as fast, which is what replaying a million events needs. Only there
    can a page be limited to a `partition`.
    """
    recorder, mapper = store.recorder, store.mapper
    if not can_read_directly(store):
        if partition is not None:
            raise ValueError("partitioned reads need a plain SQLite store")
        return [(n.id, _event(store, n)) for n in recorder.select_notifications(after + 1, limit)]
    assert isinstance(recorder, SQLiteApplicationRecorder)
    where = "rowid > ?"
    parameters: list[object] = [after]
    if partition is not None:
        where += " AND rowid <= ? AND originator_id >= ? AND originator_id < ?"
        parameters += [partition.until, partition.low, partition.high]
    with recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute(
            "SELECT rowid, originator_id, originator_version, topic, state FROM "
            f"{recorder.events_table_name} WHERE {where} ORDER BY rowid LIMIT ?",
            (*parameters, limit),
        )
        rows = cursor.fetchall()
    decode = mapper.transcoder.decode
    page = []
    for rowid, originator_id, version, topic, state in rows:
        cls = _CLASSES.get(topic)
        if cls is None:
            cls = _CLASSES[topic] = resolve_topic(topic)
        event_state = decode(state)
        event_state["originator_id"] = _uuid(originator_id)
        event_state["originator_version"] = version
        class_version = getattr(cls, "class_version", 1)
        from_version = event_state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(event_state)
            from_version += 1
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", event_state)
        page.append((rowid, event))
    return page


def _event(store: Application[UUID], notification: Any) -> DomainEvent:
    event = store.mapper.to_domain_event(notification)
    assert isinstance(event, DomainEvent)
    return event


@dataclass(frozen=True)
class Page:
    """CloudEvents read after a position; `position` is the last notification read, kept or not."""

    messages: list[dict[str, Any]]
    position: int
    read: int


def cloudevents_page(
    store: Application[UUID], folder: StateFolder, after: int, limit: int, only: frozenset[str] | None = None
) -> Page:
    """Every event is folded; only types in `only` (default: all) pay for a CloudEvent with state."""
    events = read_page(store, after, limit)
    messages = []
    for notification_id, event in events:
        aggregate = folder.after(event)
        if only is None or type(event).__qualname__ in only:
            messages.append(to_cloudevent(notification_id, event, aggregate))
    return Page(messages, events[-1][0] if events else after, len(events))


async def ensure_topics(
    bootstrap: str, topics: tuple[str, ...] = (EVENTS_TOPIC, DLQ_TOPIC), partitions: int = 6
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(t, num_partitions=partitions, replication_factor=1) for t in topics if t not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
    finally:
        await admin.close()


class Relay:
    def __init__(
        self,
        store: Application[UUID],
        positions: PositionStore,
        bootstrap: str,
        *,
        topic: str = EVENTS_TOPIC,
        page_size: int = 500,
        idle_s: float = 0.05,
        name: str = "relay",
        progress: Callable[[int], None] | None = None,
        cache_entries: int = 1024,
    ) -> None:
        self.store = store
        self.positions = positions
        self.bootstrap = bootstrap
        self.topic = topic
        self.page_size = page_size
        self.idle_s = idle_s
        self.name = name
        self.progress = progress
        self.folder = StateFolder(store, cache_entries, name="folded_relay")
        self.published = 0
        self.wake = asyncio.Event()
        """Set when new events were committed (inside `serve`), so the relay need not poll."""

    def _producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
            request_timeout_ms=15_000,
            max_batch_size=1_048_576,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set; reconnects with backoff while the broker is away."""

        async def session(connected: Callable[[], None]) -> None:
            producer = self._producer()
            try:
                await ensure_topics(self.bootstrap, (self.topic,))
                await producer.start()
                connected()
                await self._publish(producer, stop)
            finally:
                await stop_quietly(producer)

        await with_reconnects(stop, "relay", session)

    async def _publish(self, producer: AIOKafkaProducer, stop: asyncio.Event) -> None:
        """The position is read once a session: this relay is the only one that moves it."""
        position = await asyncio.to_thread(self.positions.get, self.name)
        while not stop.is_set():
            page = (
                await asyncio.to_thread(cloudevents_page, self.store, self.folder, position, self.page_size)
            ).messages
            if not page:
                RELAY_LAG_EVENTS.set(0)
                RELAY_LAG_SECONDS.set(0)
                self.wake.clear()
                await sleep_or_stop(self.wake, self.idle_s)
                continue
            started = time.perf_counter()
            futures = [
                await producer.send(self.topic, key=m["subject"].encode(), value=encode(m)) for m in page
            ]
            await asyncio.gather(*futures)
            last = page[-1]["data"]["notificationId"]
            await asyncio.to_thread(self.positions.set, self.name, last)
            position = last
            self.published += len(page)
            RELAY_PUBLISHED.inc(len(page))
            await asyncio.to_thread(self._measure_lag, page[-1], last)
            if self.progress:
                self.progress(self.published)
            log.info(
                "relay_published",
                events=len(page),
                position=last,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )

    def _measure_lag(self, newest: dict[str, Any], position: int) -> None:
        """After a page: events still unpublished, and how old the newest published one was."""
        stored = int(self.store.recorder.max_notification_id() or 0)
        RELAY_LAG_EVENTS.set(max(stored - position, 0))
        sent = datetime.fromisoformat(newest["time"].replace("Z", "+00:00"))
        RELAY_LAG_SECONDS.set(max((datetime.now(UTC) - sent).total_seconds(), 0.0))


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def stop_quietly(*clients: AIOKafkaProducer | AIOKafkaConsumer) -> None:
    for client in clients:
        with contextlib.suppress(TimeoutError, KafkaError, OSError):
            await client.stop()


async def with_reconnects(
    stop: asyncio.Event,
    name: str,
    session: Callable[[Callable[[], None]], Awaitable[None]],
) -> None:
    """Run `session` until `stop`; while Kafka is away, back off (0.2 s doubling to 5 s).

    The session calls `connected()` once its clients are up, which resets the backoff.
    """
    backoff = 0.2

    def connected() -> None:
        nonlocal backoff
        backoff = 0.2

    while not stop.is_set():
        try:
            await session(connected)
        except (TimeoutError, KafkaError, OSError) as exc:
            log.warning(f"{name}_kafka_unavailable", error=type(exc).__name__, retry_in_s=backoff)
            await sleep_or_stop(stop, backoff)
            backoff = min(backoff * 2, 5.0)
