"""Projecting events into Commerce Admin API calls: the same code behind Kafka and embedded mode.

Effectively once: every message names its resource and version; the ledger
remembers, per resource and operation, the last version applied and the hash
of the body sent. Older or already applied versions are skipped, a burst for
one resource is coalesced into one call carrying its latest state, and a body
identical to the last one sent is not sent again. Bodies are absolute, so the
one case that repeats a call (a crash after the call, before the ledger write)
sets the same values twice and credits nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from eventsourcing.application import Application

from domain.pci import scrub
from projections.cloudevents import StateFolder, decode
from projections.commerce_bodies import (
    ORDER_EVENTS,
    RETURN_EVENTS,
    UPDATE_RETURN_REQUEST,
    CommerceCall,
    Flavour,
    commerce_calls,
)
from projections.commerce_merge import Conflict, Merged
from projections.credit_ledger import CreditLedger
from projections.database import Database
from projections.json_numbers import json_default
from projections.lanes import KeyedLanes
from projections.metrics import COMMERCE_CALL_SECONDS, DEAD_LETTERS, SYNC_LAG_SECONDS
from projections.positions import PositionStore
from projections.read_before_write import Prepared, ReadBeforeWrite
from projections.relay import (
    DLQ_TOPIC,
    EVENTS_TOPIC,
    cloudevents_page,
    ensure_topics,
    sleep_or_stop,
    stop_quietly,
    with_reconnects,
)

log = structlog.get_logger(__name__)
GROUP_ID = "returnflow-commerce-sync"
SYNCED_EVENTS = RETURN_EVENTS | ORDER_EVENTS
TYPE_PREFIX = "com.returnflow."


class Outcome(Protocol):
    status: int
    attempts: int
    elapsed_ms: float
    ok: bool
    dead_letter_reason: str | None


class Commerce(Protocol):
    async def update_return_request(self, return_id: str, body: dict[str, Any]) -> Any: ...

    async def update_order(self, order_id: str, body: dict[str, Any]) -> Any: ...


class CommerceUnreachable(Exception):
    """Commerce kept failing with retriable errors: leave the messages for a later attempt."""


class LeaseLost(CommerceUnreachable):
    """The lease was lost: send nothing, advance nothing, leave the messages to the new holder."""


@dataclass(frozen=True)
class LoggedOutcome:
    status: int = 0
    attempts: int = 0
    elapsed_ms: float = 0.0
    ok: bool = True
    dead_letter_reason: str | None = None
    response: Any = None


class LoggingCommerce:
    """No RETURNFLOW_COMMERCE_URL: say what would be sent, so the embedded default shows it."""

    async def update_return_request(self, return_id: str, body: dict[str, Any]) -> LoggedOutcome:
        log.info(
            "commerce_call_not_sent", operation="updateReturnRequest", id=return_id, body=_jsonable(body)
        )
        return LoggedOutcome()

    async def update_order(self, order_id: str, body: dict[str, Any]) -> LoggedOutcome:
        log.info("commerce_call_not_sent", operation="updateOrder", id=order_id, body=_jsonable(body))
        return LoggedOutcome()


def _jsonable(body: Any) -> Any:
    """The body as it goes out: amounts stay Decimal, which the JSON log renderer and the dead
    letter write digit for digit (`0.00`, never a float's `0.0`)."""
    return body


def body_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, default=str, option=orjson.OPT_SORT_KEYS)).hexdigest()


def call_digest(call: CommerceCall) -> str:
    """The body's hash, with what else it is derived from when there is more."""
    return body_hash(call.body if call.basis is None else {"body": call.body, "basis": call.basis})


LEDGER_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rf_sync_ledger (subject TEXT NOT NULL, operation TEXT NOT "
    "NULL, version {int} NOT NULL, body_hash TEXT NOT NULL, updated_at TEXT NOT NULL, "
    "PRIMARY KEY (subject, operation))",
    "CREATE TABLE IF NOT EXISTS rf_sync_claims (subject TEXT NOT NULL, operation TEXT NOT NULL, "
    "version {int} NOT NULL, PRIMARY KEY (subject, operation))",
    "CREATE TABLE IF NOT EXISTS rf_commerce_calls (id {serial}, subject TEXT NOT "
    "NULL, event_id TEXT NOT NULL, version {int} NOT NULL, method TEXT NOT NULL, path TEXT "
    "NOT NULL, status INTEGER NOT NULL, attempts INTEGER NOT NULL, elapsed_ms {real} NOT NULL, "
    "at TEXT NOT NULL, reason TEXT)",
    "CREATE INDEX IF NOT EXISTS rf_commerce_calls_subject ON rf_commerce_calls (subject, id)",
)
_CALL_COLUMNS = ("event_id", "version", "method", "path", "status", "attempts", "elapsed_ms", "at", "reason")


class SyncLedger:
    """Tables `rf_sync_ledger` (what was applied), `rf_sync_claims` (the newest version whose
    call was started) and `rf_commerce_calls` (every call's outcome)."""

    def __init__(self, database: str) -> None:
        self.database = database
        self._db = Database(database)
        self._db.create_schema([self._db.ddl(statement) for statement in LEDGER_SCHEMA])
        self.credits = CreditLedger(self._db)

    def last(self, subject: str, operation: str) -> tuple[int, str] | None:
        row = self._db.fetchone(
            "SELECT version, body_hash FROM rf_sync_ledger WHERE subject = ? AND operation = ?",
            (subject, operation),
        )
        return (int(row[0]), str(row[1])) if row else None

    def last_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, str]]:
        found = {}
        for key in keys:
            last = self.last(*key)
            if last is not None:
                found[key] = last
        return found

    def claim(self, wanted: Sequence[tuple[str, str, int]]) -> set[tuple[str, str]]:
        """The (subject, operation) pairs whose call at that version may go out now.

        Never a state older than one already sent or being sent: a version is refused if it
        is applied already, or older than one claimed; the same version again (a retry
        after Commerce was unreachable, or a crash) is allowed. One transaction, so two
        projectors overlapping during a takeover cannot both pass the check.
        """
        granted = set()
        with self._db.transaction() as db:
            for subject, operation, version in wanted:
                applied = db.fetchone(
                    "SELECT version FROM rf_sync_ledger WHERE subject = ? AND operation = ?",
                    (subject, operation),
                )
                if applied is not None and int(applied[0]) >= version:
                    continue
                if db.execute(
                    "INSERT INTO rf_sync_claims (subject, operation, version) VALUES (?, ?, ?) "
                    "ON CONFLICT (subject, operation) DO UPDATE SET version = excluded.version "
                    "WHERE rf_sync_claims.version <= excluded.version",
                    (subject, operation, version),
                ):
                    granted.add((subject, operation))
        return granted

    def applied(self, entries: Sequence[Applied]) -> None:
        """One transaction for a whole batch: the ledger rows (never moved back) and the calls'
        outcomes."""
        if not entries:
            return
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        with self._db.transaction() as db:
            for e in entries:
                db.execute(
                    "INSERT INTO rf_sync_ledger VALUES (?, ?, ?, ?, ?) ON CONFLICT(subject, operation)"
                    " DO UPDATE SET version = excluded.version, body_hash = excluded.body_hash, "
                    "updated_at = excluded.updated_at WHERE rf_sync_ledger.version < excluded.version",
                    (e.call.subject, e.call.operation, e.version, e.digest, now),
                )
                if e.outcome is not None:
                    db.execute(
                        "INSERT INTO rf_commerce_calls (subject, event_id, version, method, path, "
                        "status, attempts, elapsed_ms, at, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            e.call.subject,
                            e.event_id,
                            e.version,
                            e.call.method,
                            e.call.path,
                            e.outcome.status,
                            e.outcome.attempts,
                            e.outcome.elapsed_ms,
                            now,
                            e.outcome.dead_letter_reason,
                        ),
                    )

    def calls_for(self, subject: str) -> list[dict[str, Any]]:
        rows = self._db.fetchall(
            f"SELECT {', '.join(_CALL_COLUMNS)} FROM rf_commerce_calls WHERE subject = ? ORDER BY id",
            (subject,),
        )
        return [dict(zip(_CALL_COLUMNS, row, strict=True)) for row in rows]

    def close(self) -> None:
        self._db.close()


DeadLetter = Callable[[dict[str, Any]], Awaitable[None]]
ConflictHandler = Callable[[CommerceCall, list[Conflict]], Awaitable[None]]


@dataclass(frozen=True)
class Applied:
    """A resource brought up to `version`: with the call's outcome, or skipped (`outcome` None)."""

    call: CommerceCall
    version: int
    digest: str
    event_id: str
    outcome: Outcome | None


@dataclass(frozen=True)
class Claims:
    """What one batch found in the ledger and may send: the last applied (version, body hash)
    per (subject, operation), each call's body hash, and the calls the ledger granted."""

    known: dict[tuple[str, str], tuple[int, str]]
    digests: dict[tuple[str, str], str]
    granted: set[tuple[str, str]]
    states: dict[str, frozenset[str]]
    """Per subject, every state the batch's events left or reached: what we saw or sent."""


class CommerceProjector:
    """Turns a batch of CloudEvents into the fewest absolute Commerce calls, in per-resource order."""

    def __init__(
        self,
        commerce: Commerce,
        ledger: SyncLedger,
        dead_letter: DeadLetter | None = None,
        *,
        flavour: Flavour = "classic",
        concurrency: int = 64,
        fence: Callable[[], bool] | None = None,
        on_conflict: ConflictHandler | None = None,
    ) -> None:
        """`fence`: False once this process no longer holds the duty's lease; nothing is sent
        then. `on_conflict`: told of a state someone else set at Commerce (ours was not sent)."""
        self.commerce = commerce
        self.reader = ReadBeforeWrite(commerce, ledger.credits)
        self.on_conflict = on_conflict
        self.ledger = ledger
        self.dead_letter = dead_letter
        self.flavour = flavour
        self.fence = fence
        self._slots = asyncio.Semaphore(concurrency)
        self.calls = 0
        self.superseded = 0
        """Calls not sent because a newer state of their resource was sent or being sent."""
        self.lag_ms: list[float] = []

    async def project(self, messages: Sequence[dict[str, Any]]) -> None:
        """Raises CommerceUnreachable if any resource could not be updated (nothing is lost).

        Per resource and operation only the latest call goes out; one resource's
        calls go out one after another in event order (an `op` flavour event may
        need two), different resources' calls alongside.
        """
        latest: dict[tuple[str, str], tuple[dict[str, Any], CommerceCall, int]] = {}
        states: dict[str, set[str]] = {}
        for message in messages:
            event = message["data"]["event"]
            if event["type"] in SYNCED_EVENTS:
                view = message["data"]["state"]
                seen = (event.get("from"), event.get("to"), view.get("state"))
                states.setdefault(str(view["id"]), set()).update(s for s in seen if s)
            calls = commerce_calls(
                event["type"], event.get("trigger"), message["data"]["state"], self.flavour
            )
            for index, call in enumerate(calls):
                key = (call.subject, call.operation)
                previous = latest.get(key)
                if previous is None or _version(message) > _version(previous[0]):
                    latest[key] = (message, call, index)
        known = await asyncio.to_thread(self.ledger.last_many, list(latest))
        digests = {key: call_digest(call) for key, (_, call, _) in latest.items()}
        wanted = [
            (*key, _version(message))
            for key, (message, _, _) in latest.items()
            if _needs_call(_version(message), digests[key], known.get(key))
        ]
        if wanted and self.fence is not None and not self.fence():
            raise LeaseLost("this process no longer holds the sync lease")
        granted = await asyncio.to_thread(self.ledger.claim, wanted) if wanted else set()
        by_subject: dict[str, list[tuple[tuple[str, str], dict[str, Any], CommerceCall, int]]] = {}
        for key, (message, call, index) in latest.items():
            by_subject.setdefault(call.subject, []).append((key, message, call, index))
        results = await asyncio.gather(
            *(
                self._apply_in_order(
                    sorted(entries, key=lambda e: (_version(e[1]), e[3])),
                    Claims(known, digests, granted, {k: frozenset(v) for k, v in states.items()}),
                )
                for entries in by_subject.values()
            ),
            return_exceptions=True,
        )
        applied = [a for r in results if isinstance(r, list) for a in r]
        await asyncio.to_thread(self.ledger.applied, applied)
        failures = [r for r in results if isinstance(r, BaseException)]
        for failure in failures:
            if not isinstance(failure, CommerceUnreachable):
                raise failure
        if failures:
            raise CommerceUnreachable(f"{len(failures)} resource(s) not updated")

    async def _apply_in_order(
        self,
        entries: list[tuple[tuple[str, str], dict[str, Any], CommerceCall, int]],
        claims: Claims,
    ) -> list[Applied]:
        """One resource's calls, one at a time; a failure keeps what was applied before it."""
        done: list[Applied] = []
        for key, message, call, _ in entries:
            try:
                result = await self._apply(
                    message,
                    call,
                    claims.known.get(key),
                    claims.digests[key],
                    key in claims.granted,
                    claims.states.get(call.subject, frozenset()),
                )
            except CommerceUnreachable:
                await asyncio.to_thread(self.ledger.applied, done)
                raise
            if result is not None:
                done.append(result)
        return done

    async def _apply(
        self,
        message: dict[str, Any],
        call: CommerceCall,
        last: tuple[int, str] | None,
        digest: str,
        granted: bool,
        states: frozenset[str] = frozenset(),
    ) -> Applied | None:
        version = _version(message)
        if not _needs_call(version, digest, last):
            assert last is not None
            return Applied(call, version, digest, message["id"], None) if version > last[0] else None
        if not granted:
            self.superseded += 1
            log.info(
                "commerce_call_superseded", subject=call.subject, operation=call.operation, version=version
            )
            return None
        async with self._slots:
            started = time.perf_counter()
            try:
                sent = await self._read_then_write(message, call, states)
            except Exception as exc:
                if type(exc).__name__ in ("CommerceUnavailable", "CommerceUnreachable"):
                    log.warning("commerce_unavailable", subject=call.subject, error=str(exc))
                    _observe_call(call.operation, "unavailable", started)
                    raise CommerceUnreachable(str(exc)) from exc
                raise
        if sent is None:
            return Applied(call, version, digest, message["id"], None)
        outcome, body = sent
        _observe_call(call.operation, _outcome_label(outcome), started)
        self.calls += 1
        self.lag_ms.append(_lag_ms(message))
        SYNC_LAG_SECONDS.observe(self.lag_ms[-1] / 1000)
        if not outcome.ok:
            DEAD_LETTERS.labels(call.operation).inc()
        if not outcome.ok and self.dead_letter is not None:
            await self.dead_letter(
                {
                    "event": message["id"],
                    "subject": call.subject,
                    "operation": call.operation,
                    "request": {"method": call.method, "path": call.path, "body": _jsonable(body)},
                    "status": outcome.status,
                    "response": scrub(getattr(outcome, "response", None)),
                    "reason": outcome.dead_letter_reason,
                    "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                }
            )
        (log.info if outcome.ok else log.warning)(
            "commerce_call",
            subject=call.subject,
            operation=call.operation,
            version=version,
            status=outcome.status,
            attempts=outcome.attempts,
            ok=outcome.ok,
            reason=outcome.dead_letter_reason,
        )
        return Applied(call, version, digest, message["id"], outcome)

    async def redrive(self, calls: Sequence[tuple[dict[str, Any], CommerceCall]]) -> list[Applied]:
        """Send again what reconcile found Commerce without, whatever the ledger says was sent
        (the same version may have been applied and then lost at Commerce); recorded in the
        ledger and call log as the sync's calls are (bodies are absolute)."""
        if calls and self.fence is not None and not self.fence():
            raise LeaseLost("this process no longer holds the sync lease")
        done: list[Applied] = []
        try:
            for message, call in calls:
                result = await self._apply(message, call, None, call_digest(call), True)
                if result is not None:
                    done.append(result)
        finally:
            await asyncio.to_thread(self.ledger.applied, done)
        return done

    async def _read_then_write(
        self, message: dict[str, Any], call: CommerceCall, states: frozenset[str]
    ) -> tuple[Outcome, dict[str, Any]] | None:
        """GET, lay our body on what Commerce holds, PUT; None when nothing needs sending."""
        view = message["data"].get("state")
        if view is None:  # a reconcile repair: built on what Commerce held when it was read
            prepared = Prepared(Merged(call.body))
        else:
            prepared = await self.reader.prepare(call, view, states)
        merged = prepared.merged
        for problem in merged.problems:
            log.warning(
                "commerce_body_problem", subject=call.subject, operation=call.operation, problem=problem
            )
        if merged.conflicts:
            await self._conflicted(call, merged.conflicts)
        if prepared.refused is not None:
            return prepared.refused, call.body
        if merged.body is None:
            return None
        if call.endpoint == UPDATE_RETURN_REQUEST:
            outcome = await self.commerce.update_return_request(call.subject, merged.body)
        else:
            outcome = await self.commerce.update_order(call.subject, merged.body)
        await self.reader.answered(prepared, bool(outcome.ok))
        return outcome, merged.body

    async def _conflicted(self, call: CommerceCall, conflicts: list[Conflict]) -> None:
        for conflict in conflicts:
            log.warning(
                "commerce_changed_by_someone_else",
                subject=conflict.subject,
                operation=call.operation,
                field=conflict.field,
                ours=conflict.ours,
                theirs=conflict.theirs,
                resolution="Commerce's kept, ours reported as drift",
            )
        if self.on_conflict is not None:
            await self.on_conflict(call, conflicts)


def _outcome_label(outcome: Outcome) -> str:
    if not outcome.ok:
        return "dead_letter"
    return "logged" if isinstance(outcome, LoggedOutcome) else "ok"


def _observe_call(operation: str, outcome: str, started: float) -> None:
    COMMERCE_CALL_SECONDS.labels(operation, outcome).observe(time.perf_counter() - started)


def _needs_call(version: int, digest: str, last: tuple[int, str] | None) -> bool:
    """Newer than what was applied, with a body that differs from the one last sent."""
    return last is None or (version > last[0] and digest != last[1])


def _version(message: dict[str, Any]) -> int:
    return int(message["data"]["event"]["version"])


def _lag_ms(message: dict[str, Any]) -> float:
    sent = datetime.fromisoformat(message["time"].replace("Z", "+00:00"))
    return (datetime.now(UTC) - sent).total_seconds() * 1000


class KafkaSync:
    """Consumer group `returnflow-commerce-sync`: commit only what was applied or dead-lettered.

    Messages go into per-resource lanes (`KeyedLanes`): one return's calls stay in
    order while other returns' calls run alongside, and fetching pauses while
    `max_in_flight` messages are unfinished (Commerce slow or down).
    """

    def __init__(
        self,
        bootstrap: str,
        projector: CommerceProjector,
        *,
        topic: str = EVENTS_TOPIC,
        dlq_topic: str = DLQ_TOPIC,
        group_id: str = GROUP_ID,
        max_records: int = 500,
        max_in_flight: int = 5_000,
    ) -> None:
        self.bootstrap = bootstrap
        self.projector = projector
        self.topic = topic
        self.dlq_topic = dlq_topic
        self.group_id = group_id
        self.max_records = max_records
        self.max_in_flight = max_in_flight
        self.consumed = 0
        self.assignment: frozenset[TopicPartition] = frozenset()
        """The partitions this consumer holds now (set by the group's rebalances)."""

    async def run(self, stop: asyncio.Event) -> None:
        async def session(connected: Callable[[], None]) -> None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=self.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=10_000,
                heartbeat_interval_ms=1_000,
                max_poll_interval_ms=300_000,
            )
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=True)
            lanes: KeyedLanes[TopicPartition] = KeyedLanes(
                self.projector.project, stop, retryable=CommerceUnreachable
            )
            try:
                await ensure_topics(self.bootstrap, (self.topic, self.dlq_topic))
                consumer.subscribe([self.topic], listener=_HandOver(self, consumer, lanes))
                await consumer.start()
                await producer.start()
                self.projector.dead_letter = partial_dead_letter(producer, self.dlq_topic)
                connected()
                await self._consume(consumer, lanes, stop)
            finally:
                await lanes.drain(timeout=10)
                with contextlib.suppress(KafkaError, OSError, TimeoutError):
                    await _commit(consumer, lanes)
                await lanes.cancel()
                await stop_quietly(consumer, producer)

        await with_reconnects(stop, "sync", session)

    async def _consume(
        self, consumer: AIOKafkaConsumer, lanes: KeyedLanes[TopicPartition], stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            if lanes.failure is not None:
                raise lanes.failure
            assigned = consumer.assignment()
            if lanes.in_flight >= self.max_in_flight:
                consumer.pause(*assigned)
            else:
                consumer.resume(*assigned)
            batch = await consumer.getmany(
                timeout_ms=50 if lanes.in_flight else 200, max_records=self.max_records
            )
            for tp, records in batch.items():
                for record in records:
                    message = _message(record)
                    key = record.key.decode() if record.key else str(tp.partition)
                    lanes.add(tp, record.offset, key, message)
                self.consumed += len(records)
            await _commit(consumer, lanes)


class _HandOver(ConsumerRebalanceListener):
    """Before partitions move to another consumer, finish and commit what is in flight."""

    def __init__(
        self, sync: KafkaSync, consumer: AIOKafkaConsumer, lanes: KeyedLanes[TopicPartition]
    ) -> None:
        self.sync = sync
        self.consumer = consumer
        self.lanes = lanes

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.lanes.drain(timeout=30)
        with contextlib.suppress(KafkaError, OSError, TimeoutError):
            await _commit(self.consumer, self.lanes)
        self.lanes.forget(list(revoked))
        self.sync.assignment = self.sync.assignment - revoked

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.sync.assignment = frozenset(assigned)


async def _commit(consumer: AIOKafkaConsumer, lanes: KeyedLanes[TopicPartition]) -> None:
    commits = lanes.committable()
    if commits:
        await consumer.commit(commits)


def _message(record: Any) -> dict[str, Any] | None:
    try:
        assert record.value is not None
        message: dict[str, Any] = decode(record.value)
        return message
    except (ValueError, AssertionError, orjson.JSONDecodeError):
        log.error("sync_bad_message", partition=record.partition, offset=record.offset)
        return None


def partial_dead_letter(producer: AIOKafkaProducer, topic: str = DLQ_TOPIC) -> DeadLetter:
    async def send(record: dict[str, Any]) -> None:
        await producer.send_and_wait(
            topic, key=str(record["subject"]).encode(), value=orjson.dumps(record, default=json_default)
        )

    return send


class EmbeddedSync:
    """No Kafka: the same projector, fed straight from the notification log."""

    def __init__(
        self,
        store: Application[UUID],
        positions: PositionStore,
        projector: CommerceProjector,
        *,
        page_size: int = 200,
        idle_s: float = 0.05,
        batch_window_s: float = 0.05,
        name: str = "embedded-sync",
        cache_entries: int = 1024,
    ) -> None:
        """`batch_window_s`: after a short page, wait this long so busy times make big pages."""
        self.batch_window_s = batch_window_s
        self.store = store
        self.positions = positions
        self.projector = projector
        self.page_size = page_size
        self.idle_s = idle_s
        self.name = name
        self.folder = StateFolder(store, cache_entries, name="folded_sync")
        self.wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.2
        while not stop.is_set():
            position = await asyncio.to_thread(self.positions.get, self.name)
            page = await asyncio.to_thread(
                cloudevents_page, self.store, self.folder, position, self.page_size, SYNCED_EVENTS
            )
            if not page.read:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=self.idle_s)
                continue
            try:
                await self.projector.project(page.messages)
            except CommerceUnreachable:
                await sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.2
            await asyncio.to_thread(self.positions.set, self.name, page.position)
            if page.read < self.page_size:
                await sleep_or_stop(stop, self.batch_window_s)
