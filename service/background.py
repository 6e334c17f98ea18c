"""What `returnflow serve` runs beside the HTTP API: the read-model follower, and the relay
(Kafka configured) or the embedded Commerce sync (no Kafka), all following the event store's
notification log. Each runs in one process at a time among those sharing the projections
(`projections.lease`): the others wait, and take over when its holder dies."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog

from projections.lease import Duty, Lease, open_lease, run_under_lease
from projections.positions import PositionStore
from projections.read_models import ReadModels
from projections.relay import Relay
from projections.replay import ReadModelFollower
from projections.sync import CommerceProjector, EmbeddedSync, LoggingCommerce, SyncLedger
from service.commerce_changes import record_commerce_changes
from service.config import KafkaNames, Settings
from service.store import EventStore
from service.writer import Writer

log = structlog.get_logger(__name__)


def make_commerce(settings: Settings) -> Any:
    """The Admin API client when RETURNFLOW_COMMERCE_URL is set, else one that only logs."""
    if not settings.commerce_url:
        return LoggingCommerce()
    from projections.commerce_client import CommerceClient

    return CommerceClient(settings.commerce_url, settings.commerce_app_key or "")


class Background:
    def __init__(self, settings: Settings, store: EventStore, writer: Writer) -> None:
        self.settings = settings
        self.store = store
        self.writer = writer
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.closers: list[Any] = []
        self.embedded: EmbeddedSync | None = None
        self.read_models: ReadModels | None = None
        self.leases: list[Lease] = []
        """One per duty: `held` says whether this process runs it now (for /metrics)."""
        self._wakes: list[asyncio.Event] = []

    async def start(self) -> None:
        database = self.settings.projections_database
        positions = PositionStore(database)
        self.closers.append(positions)
        models = ReadModels(database)
        self.closers.append(models)
        follower = ReadModelFollower(self.store, models, cache_entries=self.settings.follower_cache_entries)
        self._wake_on_commit(follower.wake)
        self.read_models = models
        self._leased("read-models", follower.run)
        if self.settings.kafka_bootstrap:
            if not self.settings.relay_inline:
                log.info("relay_not_inline", advice="run `returnflow relay` beside the service")
                return
            relay = Relay(
                self.store,
                positions,
                self.settings.kafka_bootstrap,
                topic=KafkaNames.from_env().events,
                idle_s=0.5,
                cache_entries=self.settings.follower_cache_entries,
            )
            self._wake_on_commit(relay.wake)
            self._leased("relay", relay.run)
            log.info("relay_started", bootstrap=self.settings.kafka_bootstrap)
            return
        ledger = SyncLedger(database)
        self.closers.append(ledger)
        commerce = make_commerce(self.settings)
        self.closers.append(commerce)
        lease = open_lease(database, "embedded-sync")
        projector = CommerceProjector(
            commerce,
            ledger,
            flavour=self.settings.flavour,
            fence=lambda: lease.held,
            on_conflict=record_commerce_changes(self.writer),
        )
        embedded = EmbeddedSync(
            self.store, positions, projector, idle_s=0.5, cache_entries=self.settings.follower_cache_entries
        )
        self._wake_on_commit(embedded.wake)
        self._leased("embedded-sync", embedded.run, lease)
        self.embedded = embedded
        log.info("embedded_sync_started", commerce=self.settings.commerce_url or "log only")

    def _leased(self, name: str, duty: Duty, lease: Lease | None = None) -> None:
        """Run `duty` whenever this process holds its lease (the lease closes last)."""
        lease = lease or open_lease(self.settings.projections_database, name)
        self.leases.append(lease)
        self.closers.insert(0, lease)
        self.tasks.append(asyncio.create_task(run_under_lease(lease, duty, self.stop), name=name))

    def _wake_on_commit(self, event: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()

        def wake() -> None:
            loop.call_soon_threadsafe(event.set)

        self.writer.on_commit.append(wake)
        self._wakes.append(event)

    async def close(self) -> None:
        self.stop.set()
        for event in self._wakes:
            event.set()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=10)
        for closer in reversed(self.closers):
            close = getattr(closer, "close", None)
            if close is None:
                continue
            result = close()
            if asyncio.iscoroutine(result):
                await result
