"""Rebuilding the read models from the event store, following it live, and verifying both.

`rebuild` folds every aggregate forward in memory, one pass over the
notification log in pages, and writes transitions page by page and views once
at the end. On a large SQLite store it does so in several processes, each
folding the aggregates of its own id range up to one fixed notification, into
a scratch file the parent then merges in notification order. `verify`
rebuilds into memory in one process, checks the domain's invariants on every
folded aggregate, and compares the rebuilt tables with the live ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import os
import queue
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, DomainEvent

from domain.eligibility import order_money
from domain.orders import Order
from domain.refunds import RefundCalculation, RefundError
from domain.returns import ReturnRequest
from projections.cloudevents import StateFolder
from projections.read_models import ReadModels, transition_row, view_row
from projections.relay import Partition, can_read_directly, read_page, sleep_or_stop, sqlite_file

log = structlog.get_logger(__name__)
Progress = Callable[[int, int], None]
Reopen = Callable[[], Application[UUID]]
"""Opens the same store again in a worker process (picklable: e.g. a partial of open_store)."""
PARALLEL_FROM_EVENTS = 50_000
"""Below this, starting worker processes costs more than it saves."""


@dataclass
class Rebuilt:
    events: int = 0
    seconds: float = 0.0
    aggregates: dict[UUID, Aggregate] = field(default_factory=dict)
    """Every folded aggregate (one-process rebuilds only: `verify` needs them)."""
    aggregate_count: int = 0
    workers: int = 1
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds per phase. `fold`: set-up, reading, folding and inserting transitions (all
    workers at once, their view rows included); one process then builds `views`, workers are
    merged (`merge`); `swap`: indexing and replacing the live models."""

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def default_workers(store: Application[UUID]) -> int:
    """Up to 4 processes (one per core) for a large SQLite store, else 1."""
    if _store_file(store) is None:
        return 1
    if int(store.recorder.max_notification_id() or 0) < PARALLEL_FROM_EVENTS:
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


def _store_file(store: Application[UUID]) -> str | None:
    """Workers reopen the store by its file and read its rows directly."""
    return sqlite_file(store) if can_read_directly(store) else None


def rebuild(
    store: Application[UUID],
    target: ReadModels,
    progress: Progress | None = None,
    page_size: int = 10_000,
    *,
    workers: int = 1,
    reopen: Reopen | None = None,
) -> Rebuilt:
    """Fold the whole log; the rebuilt read models replace the old ones in one transaction.

    `workers` > 1 (with `reopen`, on a SQLite file store) splits the work by aggregate id.
    """
    if workers > 1 and reopen is not None and _store_file(store) is not None:
        return _rebuild_in_parallel(store, target, progress, page_size, workers, reopen)
    started = time.perf_counter()
    total = int(store.recorder.max_notification_id() or 0)
    result = Rebuilt()
    folded = result.aggregates
    position = 0
    target.begin_rebuild()
    with collector_paused():
        while page := read_page(store, position, page_size):
            position = page[-1][0]
            target.add_rebuilt_transitions(_fold(page, folded))
            result.events += len(page)
            if progress:
                progress(result.events, total)
        viewing = time.perf_counter()
        result.phases["fold"] = viewing - started
        views = [view_row(a) for a in folded.values()]
        swapping = time.perf_counter()
        result.phases["views"] = swapping - viewing
        target.finish_rebuild(views, position)
        result.phases["swap"] = time.perf_counter() - swapping
    if progress and result.events == 0:
        progress(0, 0)
    result.aggregate_count = len(folded)
    result.seconds = time.perf_counter() - started
    return result


def _fold(page: list[tuple[int, DomainEvent]], folded: dict[UUID, Aggregate]) -> list[tuple[Any, ...]]:
    """Apply a page to the folded aggregates; answers its transition rows."""
    rows = []
    for notification_id, event in page:
        aggregate = event.mutate(folded.get(event.originator_id))  # type: ignore[attr-defined]
        folded[event.originator_id] = aggregate
        rows.append(transition_row(notification_id, event, aggregate))
    return rows


def _rebuild_in_parallel(
    store: Application[UUID],
    target: ReadModels,
    progress: Progress | None,
    page_size: int,
    workers: int,
    reopen: Reopen,
) -> Rebuilt:
    started = time.perf_counter()
    until = int(store.recorder.max_notification_id() or 0)
    bounds = [format(16 * i // workers, "x") for i in range(workers)] + ["g"]
    context = multiprocessing.get_context("spawn")
    reports: multiprocessing.Queue[tuple[Any, ...]] = context.Queue()
    result = Rebuilt(workers=workers)
    target.begin_rebuild()
    with tempfile.TemporaryDirectory(prefix="returnflow-replay-") as scratch:
        paths = [os.path.join(scratch, f"part{i}.db") for i in range(workers)]
        processes = [
            context.Process(
                target=_rebuild_partition,
                name=f"returnflow-replay-{i}",
                args=(reopen, Partition(bounds[i], bounds[i + 1], until), paths[i], page_size, reports),
            )
            for i in range(workers)
        ]
        for process in processes:
            process.start()
        finished = 0
        try:
            while finished < workers:
                try:
                    report = reports.get(timeout=0.5)
                except queue.Empty:
                    if any(p.exitcode not in (None, 0) for p in processes):
                        raise RuntimeError("a replay worker died") from None
                    continue
                if report[0] == "progress":
                    result.events += report[1]
                    if progress:
                        progress(result.events, until)
                elif report[0] == "done":
                    finished += 1
                    result.aggregate_count += report[1]
                else:
                    raise RuntimeError(f"a replay worker failed: {report[1]}")
        finally:
            for process in processes:
                if finished < workers:
                    process.terminate()
                process.join()
        merging = time.perf_counter()
        result.phases["fold"] = merging - started
        views = target.merge_staged(paths)
        swapping = time.perf_counter()
        result.phases["merge"] = swapping - merging
        target.finish_rebuild(views, until)
        result.phases["swap"] = time.perf_counter() - swapping
    if progress and result.events == 0:
        progress(0, 0)
    result.seconds = time.perf_counter() - started
    return result


def _rebuild_partition(
    reopen: Reopen,
    partition: Partition,
    path: str,
    page_size: int,
    reports: multiprocessing.Queue[tuple[Any, ...]],
) -> None:
    """A worker: the same fold and rows as `rebuild`, for one id range, into a scratch file."""
    try:
        store = reopen()
        staged = ReadModels(path)
        staged.begin_rebuild()
        folded: dict[UUID, Aggregate] = {}
        position = 0
        with collector_paused():
            while page := read_page(store, position, page_size, partition):
                staged.add_rebuilt_transitions(_fold(page, folded))
                position = page[-1][0]
                reports.put(("progress", len(page)))
            staged.stage_views([view_row(a) for a in folded.values()])
        staged.close()
        store.close()
        reports.put(("done", len(folded)))
    except BaseException as exc:
        reports.put(("failed", f"{type(exc).__name__}: {exc}"))
        raise


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """A rebuild allocates millions of objects and frees none: the cyclic GC would only rescan
    them, ever more slowly as the heap grows (a third of the time at 100k events)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def invariant_problems(aggregates: dict[UUID, Aggregate]) -> list[str]:
    problems: list[str] = []
    orders = {a.commerce_id: a for a in aggregates.values() if isinstance(a, Order)}
    for aggregate in aggregates.values():
        if isinstance(aggregate, ReturnRequest):
            problems += _return_problems(aggregate, orders.get(aggregate.order_id))
        elif isinstance(aggregate, Order):
            problems += _order_problems(aggregate)
    return problems


def _return_problems(ret: ReturnRequest, order: Order | None) -> list[str]:
    where = f"return {ret.commerce_id} v{ret.version}"
    problems = []
    to_ship = [i for i in ret.items if i["state"] != "RETURN_NOT_REQUIRED"]
    for item in ret.items:
        if not 0 <= item["quantityReceived"] <= item["quantityToReturn"]:
            problems.append(
                f"{where}: item {item['returnItemId']} received "
                f"{item['quantityReceived']} of {item['quantityToReturn']}"
            )
    if ret.state == "FULL_RETURN" and any(i["quantityReceived"] < i["quantityToReturn"] for i in to_ship):
        problems.append(f"{where}: FULL_RETURN but not every item is received")
    if ret.state == "PARTIAL_RETURN" and not any(i["quantityReceived"] > 0 for i in to_ship):
        problems.append(f"{where}: PARTIAL_RETURN but nothing is received")
    plan = ret.refund_plan
    if plan:
        paid_out = sum((Decimal(v) for v in plan["payments"].values()), Decimal(0))
        if paid_out != Decimal(plan["total"]):
            problems.append(f"{where}: refund payments {paid_out} != refund total {plan['total']}")
        if plan.get("calculation"):
            try:
                RefundCalculation.from_primitive(plan["calculation"])
            except RefundError as exc:
                problems.append(f"{where}: refund shares do not add up: {exc}")
        if order is not None:
            paid = {p.payment_group_id: p.amount for p in order_money(order).payments}
            for group_id, amount in plan["payments"].items():
                if Decimal(amount) > paid.get(group_id, Decimal(0)):
                    problems.append(
                        f"{where}: refunds {amount} to {group_id}, which paid "
                        f"{paid.get(group_id, Decimal(0))}"
                    )
    return problems


def _order_problems(order: Order) -> list[str]:
    where = f"order {order.commerce_id} v{order.version}"
    problems = []
    paid = {p.payment_group_id: p.amount for p in order_money(order).payments}
    for group_id, credited in order.credited.items():
        if Decimal(credited) > paid.get(group_id, Decimal(0)):
            problems.append(
                f"{where}: credited {credited} to {group_id}, which paid {paid.get(group_id, Decimal(0))}"
            )
    for group in order.snapshot["shippingGroups"]:
        for link in group["items"]:
            if order.shipped_quantity(group, link) > link["quantity"]:
                problems.append(f"{where}: shipped more {link['commerceItemId']} than ordered")
    return problems


def compare(live: ReadModels, rebuilt: ReadModels) -> list[str]:
    """Every row that differs between the live and the rebuilt read models, by table and key."""
    problems = []
    if live.position() != rebuilt.position():
        problems.append(
            f"live read models are at notification {live.position()}, the store at {rebuilt.position()}"
        )
    for table in ("rf_order_view", "rf_return_view", "rf_transitions"):
        mine = {row[0]: row for row in live.rows(table)}
        theirs = {row[0]: row for row in rebuilt.rows(table)}
        key = "notification_id" if table == "rf_transitions" else "id"
        for ident in sorted(set(mine) | set(theirs), key=str):
            if ident not in mine:
                problems.append(f"{table} {key}={ident}: missing from the live read model")
            elif ident not in theirs:
                problems.append(f"{table} {key}={ident}: in the live read model, not in the store")
            elif mine[ident] != theirs[ident]:
                problems.append(f"{table} {key}={ident}: live row differs from the rebuilt one")
    return problems


@dataclass
class Verification:
    rebuilt: Rebuilt
    problems: list[str]


def verify(store: Application[UUID], live: ReadModels, progress: Progress | None = None) -> Verification:
    scratch = ReadModels(":memory:")
    try:
        rebuilt = rebuild(store, scratch, progress)
        problems = invariant_problems(rebuilt.aggregates) + compare(live, scratch)
    finally:
        scratch.close()
    return Verification(rebuilt, problems)


class ReadModelFollower:
    """Keeps the live read models current while `serve` runs."""

    def __init__(
        self,
        store: Application[UUID],
        models: ReadModels,
        *,
        page_size: int = 500,
        idle_s: float = 0.5,
        batch_window_s: float = 0.05,
        cache_entries: int = 1024,
    ) -> None:
        """`batch_window_s`: after a short page, wait this long so busy times make big pages."""
        self.batch_window_s = batch_window_s
        self.store = store
        self.models = models
        self.page_size = page_size
        self.idle_s = idle_s
        self.folder = StateFolder(store, cache_entries, name="folded_read_models")
        self.wake = asyncio.Event()

    def step(self) -> int:
        """Apply one page; answers how many events it read (0: caught up).

        Safe beside followers in other processes: the page is written only if the
        position is still the one it was read from (compare-and-set, same transaction)."""
        position = self.models.position()
        page = read_page(self.store, position, self.page_size)
        if not page:
            return 0
        rows = []
        touched: dict[UUID, Aggregate] = {}
        for notification_id, event in page:
            aggregate = self.folder.after(event)
            touched[event.originator_id] = aggregate
            rows.append(transition_row(notification_id, event, aggregate))
        if not self.models.apply(rows, [view_row(a) for a in touched.values()], page[-1][0], after=position):
            log.info("read_models_moved_meanwhile", position=position)
        return len(page)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                applied = await asyncio.to_thread(self.step)
            except Exception:
                log.exception("read_model_follower_failed")
                await sleep_or_stop(stop, 1.0)
                continue
            if not applied:
                self.wake.clear()
                await sleep_or_stop(self.wake, self.idle_s)
            elif applied < self.page_size:
                await sleep_or_stop(stop, self.batch_window_s)


def summary(rebuilt: Rebuilt) -> dict[str, Any]:
    return {
        "events": rebuilt.events,
        "aggregates": rebuilt.aggregate_count,
        "workers": rebuilt.workers,
        "seconds": round(rebuilt.seconds, 3),
        "eventsPerSecond": round(rebuilt.rate),
        "phaseSeconds": {name: round(took, 3) for name, took in rebuilt.phases.items()},
    }
