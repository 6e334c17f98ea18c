"""`returnflow reconcile` and the periodic reconciliation inside `returnflow sync` (issue 16)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import Any

from projections.audit import parse_time
from projections.commerce_client import CommerceClient, CommerceUnavailable
from projections.drift import MISSING
from projections.reconcile import Options, Progress, Reconciler, periodically, render
from projections.reconcile_log import ReconcileLog
from projections.sync import CommerceProjector, SyncLedger
from service.config import ConfigError, Settings
from service.store import open_store


def add_parser(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = commands.add_parser(
        "reconcile", help="compare Commerce's view of each return with Returnflow's, re-drive drift"
    )
    common(parser)
    parser.add_argument(
        "--since", help="only returns (or their orders) changed at or after this ISO-8601 time"
    )
    parser.add_argument(
        "--id", action="append", dest="ids", default=[], help="a return (or order) id; repeat for several"
    )
    parser.add_argument(
        "--fix", action="store_true", help="re-send the latest bodies of what drifted (not Commerce's own)"
    )
    parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.add_argument(
        "--resume", action="store_true", help="continue the last interrupted run after its last id"
    )
    parser.add_argument("--runs", action="store_true", help="list the recorded runs")
    parser.add_argument(
        "--page-size", type=int, default=200, help="returns checked (and checkpointed) together"
    )
    parser.add_argument("--rate", type=float, help="RETURNFLOW_RECONCILE_RATE: GETs/s (0: no limit)")
    parser.add_argument("--commerce-url", help="RETURNFLOW_COMMERCE_URL")
    parser.add_argument("--commerce-app-key", help="RETURNFLOW_COMMERCE_APP_KEY")
    parser.add_argument(
        "--commerce-flavour", choices=["classic", "op"], help="RETURNFLOW_COMMERCE_FLAVOUR (default classic)"
    )


def findings_for(database: str, subject: str) -> list[dict[str, Any]]:
    """What reconciliation runs found for a return or order, for its audit."""
    runs = ReconcileLog(database)
    try:
        return runs.findings_for(subject)
    finally:
        runs.close()


def progress_bar() -> tuple[Progress | None, Callable[[], None]]:
    """tqdm on a terminal; nothing otherwise (logs and pipes stay clean)."""
    if not sys.stderr.isatty():
        return None, lambda: None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency; a bare line will do

        def line(done: int, total: int) -> None:
            sys.stderr.write(f"\rreconcile: {done}/{total} returns")

        def end() -> None:
            sys.stderr.write("\n")

        return line, end
    bar = tqdm(total=0, unit="returns", desc="reconcile", file=sys.stderr)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return update, bar.close


def reconciler(
    settings: Settings,
    commerce: Any,
    projector: CommerceProjector,
    runs: ReconcileLog,
    store: Any,
    *,
    progress: Progress | None = None,
    drift_found: Callable[[int], None] | None = None,
    rate: float | None = None,
    page_size: int = 200,
) -> Reconciler:
    return Reconciler(
        store,
        commerce,
        projector,
        runs,
        rate=settings.reconcile_rate if rate is None else rate,
        progress=progress,
        drift_found=drift_found,
        page_size=page_size,
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 1 when drift is left unfixed or anything is missing at Commerce, so a scheduler notices."""
    runs = ReconcileLog(settings.projections_database)
    try:
        if args.runs:
            for row in runs.runs():
                print(
                    f"run {row['id']} {row['started_at']} {row['status']}: {row['checked']} "
                    f"checked, {row['findings']} findings, {row['drift']} drift, "
                    f"{row['fixed']} fixed; options {row['options']}"
                )
            return 0
        if not settings.commerce_url:
            raise ConfigError("returnflow reconcile needs RETURNFLOW_COMMERCE_URL")
        try:
            since = parse_time(args.since) if args.since else None
        except ValueError:
            raise ConfigError(f"--since must be an ISO-8601 time, got {args.since!r}") from None
        options = Options(since, tuple(args.ids), args.fix)
        return asyncio.run(_once(settings, runs, options, args))
    finally:
        runs.close()


async def _once(settings: Settings, runs: ReconcileLog, options: Options, args: argparse.Namespace) -> int:
    store = open_store(settings.store)
    ledger = SyncLedger(settings.projections_database)
    commerce = CommerceClient(settings.commerce_url or "", settings.commerce_app_key or "")
    progress, done = progress_bar()
    try:
        projector = CommerceProjector(commerce, ledger, flavour=settings.flavour)
        checker = reconciler(
            settings,
            commerce,
            projector,
            runs,
            store,
            progress=progress,
            rate=args.rate,
            page_size=args.page_size,
        )
        result = await checker.run(options, resume=args.resume)
    except CommerceUnavailable as exc:
        print(
            f"returnflow: reconcile interrupted ({exc}); `reconcile --resume` continues it", file=sys.stderr
        )
        return 3
    finally:
        done()
        await commerce.close()
        ledger.close()
        store.close()
    sys.stdout.write(render(result, args.format))
    missing = sum(1 for finding, _ in result.findings if finding.verdict == MISSING)
    if missing:
        print(f"returnflow: {missing} missing at Commerce", file=sys.stderr)
    return 1 if result.unfixed_drift or missing else 0


async def in_sync(
    settings: Settings,
    commerce: Any,
    projector: CommerceProjector,
    stop: asyncio.Event,
    drift_found: Callable[[int], None] | None = None,
) -> None:
    """RETURNFLOW_RECONCILE_INTERVAL > 0: `sync` reconciles every interval (fixing only with
    RETURNFLOW_RECONCILE_FIX); `drift_found(n)` gets each run's drift count (the metric)."""
    if settings.reconcile_interval_s <= 0:
        return
    store = open_store(settings.store)
    runs = ReconcileLog(settings.projections_database)
    checker = reconciler(settings, commerce, projector, runs, store, drift_found=drift_found)
    try:
        await periodically(
            stop, settings.reconcile_interval_s, lambda: checker.run(Options(fix=settings.reconcile_fix))
        )
    finally:
        runs.close()
        store.close()
