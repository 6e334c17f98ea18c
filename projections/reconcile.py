"""`returnflow reconcile`: read Commerce's view of every return we know, and re-drive what drifted.

Calls to Commerce can be lost where no retry sees it (an agent's edit, a dead-lettered
PUT, a restore from backup). A run lists the returns from the event store, GETs each
return and its order through the Admin API client (same login and retries as the
sync) no faster than `rate` GETs a second, compares them (`drift`), and with `fix`
re-sends the latest absolute bodies through the sync's projector and ledger
(`redrive`). Returns go in id order, a page at a time, and each page's findings are
recorded with the last id done (`reconcile_log`), so an interrupted run resumes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

import orjson
import structlog
from eventsourcing.application import Application
from eventsourcing.domain import DomainEvent

from domain.identity import order_uuid, return_uuid
from projections.commerce_bodies import Flavour, commerce_calls
from projections.drift import DRIFT, Expected, Finding, Setter, compare, expected
from projections.reconcile_log import ReconcileLog, as_text
from projections.reconcile_scope import Unit, everything, named
from projections.redrive import repairs
from projections.relay import sleep_or_stop
from projections.sync import CommerceProjector, SyncLedger

log = structlog.get_logger(__name__)
Progress = Callable[[int, int], None]


class Reader(Protocol):
    async def get_return_request(self, return_id: str) -> Any: ...

    async def get_order(self, order_id: str) -> Any: ...


class RateLimit:
    """At most `rate` acquisitions a second, evenly spaced; `rate` 0: no limit."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1 / rate if rate > 0 else 0.0
        self.clock = clock
        self._next = 0.0

    async def acquire(self) -> None:
        if not self.interval:
            return
        now = self.clock()
        wait = self._next - now
        self._next = max(now, self._next) + self.interval
        if wait > 0:
            await asyncio.sleep(wait)


@dataclass(frozen=True)
class Options:
    since: datetime | None = None
    ids: tuple[str, ...] = ()
    fix: bool = False

    def document(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "ids": list(self.ids),
            "fix": self.fix,
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Options:
        since = document.get("since")
        return cls(
            datetime.fromisoformat(since) if since else None,
            tuple(document.get("ids") or ()),
            bool(document.get("fix")),
        )


@dataclass
class Result:
    run_id: int
    checked: int = 0
    gets: int = 0
    seconds: float = 0.0
    findings: list[tuple[Finding, bool]] = field(default_factory=list)
    """Each difference and whether it was fixed."""
    status: str = "finished"

    @property
    def unfixed_drift(self) -> int:
        return sum(1 for f, fixed in self.findings if f.verdict == DRIFT and not fixed)

    @property
    def drift(self) -> int:
        return sum(1 for f, _ in self.findings if f.verdict == DRIFT)


class Reconciler:
    """One Commerce, one store; `drift_found(n)` is told the drift each run found (a metric)."""

    def __init__(
        self,
        store: Application[UUID],
        commerce: Reader,
        projector: CommerceProjector,
        runs: ReconcileLog,
        *,
        rate: float = 20.0,
        page_size: int = 200,
        concurrency: int = 16,
        progress: Progress | None = None,
        drift_found: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.commerce = commerce
        self.projector = projector
        self.runs = runs
        self.limit = RateLimit(rate)
        self.page_size = page_size
        self.concurrency = concurrency
        self.progress = progress
        self.drift_found = drift_found
        self.drift_found_total = 0

    @property
    def flavour(self) -> Flavour:
        return self.projector.flavour

    @property
    def ledger(self) -> SyncLedger:
        return self.projector.ledger

    async def run(self, options: Options, *, resume: bool = False) -> Result:
        """Check (and with `options.fix` repair); CommerceUnavailable leaves the run resumable."""
        previous = self.runs.unfinished() if resume else None
        if previous is not None:
            options = Options.from_document(orjson.loads(previous["options"]))
            result, after = Result(int(previous["id"])), previous["last_id"]
        else:
            result, after = Result(self.runs.start(options.document())), None
        started = time.perf_counter()
        try:
            await self._pages(options, result, after)
        except BaseException:
            result.status = "interrupted"
            raise
        finally:
            result.seconds = time.perf_counter() - started
            self.runs.finish(result.run_id, result.status)
            self.drift_found_total += result.drift
            if self.drift_found is not None:
                self.drift_found(result.drift)
        return result

    async def _pages(self, options: Options, result: Result, after: str | None) -> None:
        if options.ids:
            units = await asyncio.to_thread(named, self.store, options.ids)
        else:
            units = await asyncio.to_thread(everything, self.store, options.since)
        if after is not None:
            units = [u for u in units if u.key > after]
        claimed: set[str] = set()
        slots = asyncio.Semaphore(self.concurrency)
        for first in range(0, len(units), self.page_size):
            page = units[first : first + self.page_size]
            checked = await asyncio.gather(
                *(self._unit(u, options.fix, claimed, slots, result) for u in page),
                return_exceptions=True,  # let the whole page finish before giving up on it
            )
            for failure in checked:
                if isinstance(failure, BaseException):
                    raise failure
            found = [pair for pairs in checked if isinstance(pairs, list) for pair in pairs]
            result.findings += found
            result.checked += len(page)
            self.runs.record(
                result.run_id,
                [f for f, _ in found],
                {i for i, (_, fixed) in enumerate(found) if fixed},
                page[-1].key,
                len(page),
            )
            if self.progress is not None:
                self.progress(first + len(page), len(units))

    async def _unit(
        self, unit: Unit, fix: bool, claimed: set[str], slots: asyncio.Semaphore, result: Result
    ) -> list[tuple[Finding, bool]]:
        """One return and (the first time it comes up in the run) its order."""
        out: list[tuple[Finding, bool]] = []
        async with slots:
            if unit.return_id is not None:
                out += await self._resource(
                    return_uuid(unit.return_id), unit.return_id, fix, self.commerce.get_return_request, result
                )
            if unit.order_id is not None and unit.order_id not in claimed:
                claimed.add(unit.order_id)
                out += await self._resource(
                    order_uuid(unit.order_id), unit.order_id, fix, self.commerce.get_order, result
                )
        return out

    async def _resource(
        self, aggregate_id: UUID, ident: str, fix: bool, read: Callable[[str], Awaitable[Any]], result: Result
    ) -> list[tuple[Finding, bool]]:
        events = await asyncio.to_thread(self._events, aggregate_id)
        want = expected(events, self.flavour)
        if want is None:
            return []
        await self.limit.acquire()
        answer = await read(ident)
        result.gets += 1
        held = answer.response if answer.ok and isinstance(answer.response, dict) else None
        findings = compare(want, held, self._pending)
        fixed: set[int] = set()
        if fix:
            fixed = await self._repair(want, findings, held, result.run_id)
        return [(f, i in fixed) for i, f in enumerate(findings)]

    def _events(self, aggregate_id: UUID) -> list[DomainEvent]:
        return [e for e in self.store.events.get(aggregate_id) if isinstance(e, DomainEvent)]

    def _pending(self, want: Expected, setter: Setter) -> bool:
        """The sync has not yet applied the call of the event that set the field."""
        for call in commerce_calls(setter.type, setter.trigger, want.view, self.flavour):
            last = self.ledger.last(call.subject, call.operation)
            if last is None or last[0] < setter.version:
                return True
        return False

    async def _repair(
        self, want: Expected, findings: list[Finding], held: dict[str, Any] | None, run_id: int
    ) -> set[int]:
        planned = repairs(want, findings, self.flavour, held)
        if not planned:
            return set()
        at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        message = {
            "id": f"reconcile-{run_id}:{want.subject}:{want.version}",
            "time": at,
            "data": {"event": {"version": want.version}},
        }
        applied = await self.projector.redrive([(message, r.call) for r in planned])
        ok = {a.call.operation for a in applied if a.outcome is not None and a.outcome.ok}
        log.info(
            "reconcile_redrive",
            subject=want.subject,
            version=want.version,
            operations=[r.call.operation for r in planned],
            ok=sorted(ok),
        )
        return {i for r in planned if r.call.operation in ok for i in r.covers}


async def periodically(
    stop: asyncio.Event, interval_s: float, run_once: Callable[[], Awaitable[Result]]
) -> None:
    """Inside `sync`: a run every `interval_s` until stopped; Commerce away skips a round."""
    while not stop.is_set():
        await sleep_or_stop(stop, interval_s)
        if stop.is_set():
            return
        try:
            result = await run_once()
        except Exception as exc:  # a round that fails must not stop the sync beside it
            log.warning("reconcile_round_failed", error=f"{type(exc).__name__}: {exc}")
            continue
        log.info(
            "reconcile_round",
            run=result.run_id,
            checked=result.checked,
            drift=result.drift,
            unfixed=result.unfixed_drift,
            seconds=round(result.seconds, 1),
        )


def _row(finding: Finding, fixed: bool) -> dict[str, Any]:
    event = finding.event
    return {
        "subject": finding.subject,
        "kind": finding.kind,
        "field": finding.field,
        "ours": as_text(finding.ours),
        "theirs": as_text(finding.theirs),
        "verdict": finding.verdict,
        "fixed": fixed,
        "event": None
        if event is None
        else {"type": event.type, "version": event.version, "time": event.time},
    }


def _line(finding: Finding, fixed: bool) -> tuple[str, ...]:
    event = finding.event
    setter = "-" if event is None else f"{event.type} v{event.version} {event.time[:19]}"
    return (
        finding.subject,
        finding.field,
        str(as_text(finding.ours)),
        str(as_text(finding.theirs)),
        finding.verdict,
        setter,
        "yes" if fixed else "",
    )


def render(result: Result, fmt: str) -> str:
    """The findings as a table (one line each) or one JSON document."""
    summary = {
        "run": result.run_id,
        "status": result.status,
        "checked": result.checked,
        "gets": result.gets,
        "seconds": round(result.seconds, 3),
        "drift": result.drift,
        "unfixedDrift": result.unfixed_drift,
    }
    if fmt == "json":
        rows = [_row(f, fixed) for f, fixed in result.findings]
        return orjson.dumps({**summary, "findings": rows}, option=orjson.OPT_INDENT_2).decode() + "\n"
    header = ("subject", "field", "ours", "theirs", "verdict", "set by", "fixed")
    table = [header] + [_line(f, fixed) for f, fixed in result.findings]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = (
        ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table]
        if result.findings
        else ["no differences"]
    )
    lines.append(
        f"run {result.run_id}: {result.checked} returns checked, {result.gets} GETs in "
        f"{result.seconds:.1f} s, {result.drift} drifted, {result.unfixed_drift} unfixed "
        f"({result.status})"
    )
    return "\n".join(lines) + "\n"
