"""The `returnflow` console script: a thin entrypoint over the service layer."""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import secrets
import signal
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial

import orjson
import structlog
from aiohttp import web

from projections.audit import NotFound, export, parse_time, render, timeline, transitions
from projections.lease import open_lease, run_under_lease
from projections.metrics import record_drift, serve_metrics
from projections.positions import PositionStore
from projections.progress import ProgressBar
from projections.read_models import ReadModels
from projections.relay import Relay
from projections.replay import default_workers, rebuild, summary, verify
from projections.sync import CommerceProjector, KafkaSync, SyncLedger
from service import logs, reconcile_command
from service.app import create_app
from service.background import make_commerce
from service.commerce_changes import record_commerce_changes
from service.config import ConfigError, KafkaNames, Settings, load_policy
from service.store import NoStore, check_reachable, open_store, require_existing, store_env_unchecked
from service.workers import Supervisor, listen
from service.writer import Writer

log = structlog.get_logger(__name__)
METRICS_HELP = "RETURNFLOW_METRICS_PORT: serve /metrics on this port (on RETURNFLOW_HOST, default loopback)"
DRY_RUN_HELP = (
    "RETURNFLOW_COMMERCE_DRY_RUN: without RETURNFLOW_COMMERCE_URL, only log the Commerce calls "
    "(serve on loopback does so by default)"
)
READ_ONLY = ("audit", "reconcile", "replay")
"""Commands that never create a store: they refuse when there is none where configured."""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        help="RETURNFLOW_STORE: sqlite:///path, postgresql://…, memory: "
        "(default: returnflow.db in RETURNFLOW_HOME, else $XDG_DATA_HOME/returnflow "
        "or ~/.local/share/returnflow)",
    )
    parser.add_argument(
        "--log-format",
        choices=["auto", "json", "console"],
        help="RETURNFLOW_LOG_FORMAT (auto: key=value on a terminal, else JSON)",
    )
    parser.add_argument(
        "--projections",
        help="RETURNFLOW_PROJECTIONS: SQLite file or "
        "postgresql:// URL for read models, positions, sync ledger and Commerce "
        "call log (default: beside a SQLite store, in a PostgreSQL store's database)",
    )
    parser.add_argument(
        "--cache-entries",
        type=int,
        help="RETURNFLOW_CACHE_ENTRIES: bound of "
        "each in-process cache (default 4096; followers keep a quarter)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="returnflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP service")
    _common(serve)
    serve.add_argument("--host", help="RETURNFLOW_HOST (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="RETURNFLOW_PORT (default 8080)")
    serve.add_argument("--webhook-secrets", help="RETURNFLOW_WEBHOOK_SECRETS, comma-separated base64")
    serve.add_argument("--api-token", help="RETURNFLOW_API_TOKEN")
    serve.add_argument("--policy", help="RETURNFLOW_POLICY: path to the policy TOML")
    serve.add_argument("--kafka-bootstrap", help="RETURNFLOW_KAFKA_BOOTSTRAP (unset: embedded)")
    serve.add_argument("--commerce-url", help="RETURNFLOW_COMMERCE_URL")
    serve.add_argument("--commerce-app-key", help="RETURNFLOW_COMMERCE_APP_KEY")
    serve.add_argument("--dry-run", action="store_true", default=None, help=DRY_RUN_HELP)
    serve.add_argument(
        "--workers",
        type=int,
        help="RETURNFLOW_WORKERS: processes on the one port (default: one per core on PostgreSQL, else 1)",
    )
    serve.add_argument(
        "--commerce-flavour",
        choices=["classic", "op"],
        help="RETURNFLOW_COMMERCE_FLAVOUR: updateReturnRequest bodies (default classic)",
    )
    serve.add_argument(
        "--role",
        choices=["all", "validation"],
        help="RETURNFLOW_ROLE: all (default), or only the validation webhook",
    )
    relay = commands.add_parser("relay", help="publish the event store to Kafka (returnflow.events)")
    _common(relay)
    relay.add_argument("--kafka-bootstrap", help="RETURNFLOW_KAFKA_BOOTSTRAP")
    relay.add_argument("--metrics-port", type=int, help=METRICS_HELP)
    sync = commands.add_parser("sync", help="consume returnflow.events into Commerce Admin API calls")
    _common(sync)
    sync.add_argument("--kafka-bootstrap", help="RETURNFLOW_KAFKA_BOOTSTRAP")
    sync.add_argument("--commerce-url", help="RETURNFLOW_COMMERCE_URL (required unless --dry-run)")
    sync.add_argument("--commerce-app-key", help="RETURNFLOW_COMMERCE_APP_KEY")
    sync.add_argument("--dry-run", action="store_true", default=None, help=DRY_RUN_HELP)
    sync.add_argument(
        "--commerce-flavour",
        choices=["classic", "op"],
        help="RETURNFLOW_COMMERCE_FLAVOUR: updateReturnRequest bodies (default classic)",
    )
    sync.add_argument("--metrics-port", type=int, help=METRICS_HELP)
    audit = commands.add_parser("audit", help="timeline and state of a return or order, or a bulk export")
    _common(audit)
    audit.add_argument("id", nargs="?", help="a return's authorization number or an order id")
    at = audit.add_mutually_exclusive_group()
    at.add_argument("--as-of", help="ISO-8601 time: the state at that moment")
    at.add_argument("--version", type=int, help="the state at that version")
    audit.add_argument("--format", choices=["table", "json", "csv", "jsonl"], default=None)
    audit.add_argument("--all", action="store_true", help="export every transition (csv or jsonl)")
    audit.add_argument("--since", help="with --all: from this time (inclusive)")
    audit.add_argument("--until", help="with --all: up to this time (inclusive)")
    audit.add_argument("--output", help="with --all: write to this file instead of stdout")
    reconcile_command.add_parser(commands, _common)
    replay = commands.add_parser("replay", help="rebuild the read models from the event store")
    _common(replay)
    replay.add_argument(
        "--verify", action="store_true", help="also check invariants and compare with the live read models"
    )
    replay.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes for the rebuild (default: one per core, up to 4, for a "
        "SQLite store of 50k+ events; --verify always folds in one)",
    )
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    secrets = getattr(args, "webhook_secrets", None)
    return Settings.from_env(
        store=args.store,
        log_format=args.log_format,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        webhook_secrets=tuple(s.strip() for s in secrets.split(",") if s.strip()) if secrets else None,
        api_token=getattr(args, "api_token", None),
        policy_path=getattr(args, "policy", None),
        kafka_bootstrap=getattr(args, "kafka_bootstrap", None),
        commerce_url=getattr(args, "commerce_url", None),
        commerce_app_key=getattr(args, "commerce_app_key", None),
        commerce_dry_run=getattr(args, "dry_run", None),
        commerce_flavour=getattr(args, "commerce_flavour", None),
        role=getattr(args, "role", None),
        workers=getattr(args, "workers", None),
        projections=args.projections,
        cache_entries=args.cache_entries,
    )


def preflight(settings: Settings) -> None:
    """Everything `serve` can check before it binds or forks, each a one-line refusal."""
    settings.check()
    try:
        store_env_unchecked(settings.store)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    load_policy(settings.policy_path)
    check_reachable(settings.store)


def serve(settings: Settings) -> int:
    preflight(settings)
    try:
        return _serve(settings)
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise ConfigError(
                f"cannot listen on {settings.host}:{settings.port}: {os.strerror(exc.errno)}"
            ) from None
        raise


def _serve(settings: Settings) -> int:
    count = settings.worker_count
    log.info(
        "serving",
        host=settings.host,
        port=settings.port,
        store=settings.store,
        role=settings.role,
        workers=count,
    )
    if count == 1:
        web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None, access_log=None)
        return 0

    seed = secrets.token_bytes(32)
    with tempfile.TemporaryDirectory(prefix="returnflow-workers-") as shared:

        def worker(sock: socket.socket, index: int) -> None:
            app = create_app(replace(settings, worker=index, metrics_dir=shared, session_seed=seed))
            web.run_app(app, sock=sock, print=None, access_log=None)

        return Supervisor(listen(settings.host, settings.port), count, worker).run()


def _run_until_signalled(runner: Callable[[asyncio.Event], Awaitable[None]]) -> int:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await runner(stop)

    asyncio.run(main())
    return 0


def relay(settings: Settings) -> int:
    topics = KafkaNames.from_env()
    if not settings.kafka_bootstrap:
        raise ConfigError("returnflow relay needs RETURNFLOW_KAFKA_BOOTSTRAP")
    store = open_store(settings.store)
    positions = PositionStore(settings.projections_database)
    lease = open_lease(settings.projections_database, "relay")
    log.info("relay_starting", bootstrap=settings.kafka_bootstrap, store=settings.store)
    try:
        # Its own process, so nothing wakes it on commit: an idle poll is one indexed query.
        relay = Relay(store, positions, settings.kafka_bootstrap, topic=topics.events, idle_s=0.01)
        return _run_until_signalled(partial(run_under_lease, lease, relay.run))
    finally:
        lease.close()
        positions.close()
        store.close()


def sync(settings: Settings) -> int:
    topics = KafkaNames.from_env()
    if not settings.kafka_bootstrap:
        raise ConfigError("returnflow sync needs RETURNFLOW_KAFKA_BOOTSTRAP")
    settings.require_commerce("returnflow sync")
    ledger = SyncLedger(settings.projections_database)

    async def run(stop: asyncio.Event) -> None:
        commerce = make_commerce(settings)
        store = open_store(settings.store)
        writer = Writer(store)
        writer.start()
        try:
            projector = CommerceProjector(
                commerce, ledger, flavour=settings.flavour, on_conflict=record_commerce_changes(writer)
            )
            consumer = KafkaSync(
                settings.kafka_bootstrap or "",
                projector,
                topic=topics.events,
                dlq_topic=topics.dlq,
                group_id=topics.group,
            )
            await asyncio.gather(
                consumer.run(stop),
                reconcile_command.in_sync(
                    settings, commerce, projector, stop, drift_found=partial(record_drift, "return")
                ),
            )
        finally:
            close = getattr(commerce, "close", None)
            if close is not None:
                await close()
            writer.stop()
            store.close()

    log.info("sync_starting", bootstrap=settings.kafka_bootstrap, commerce=settings.commerce_url)
    try:
        return _run_until_signalled(run)
    finally:
        ledger.close()


def _serve_metrics(args: argparse.Namespace, settings: Settings) -> None:
    """`relay` and `sync` keep their lag and call metrics in their own process."""
    port = args.metrics_port or os.environ.get("RETURNFLOW_METRICS_PORT")
    if port:
        serve_metrics(int(port), settings.host)
        log.info("metrics_serving", port=int(port), host=settings.host)


def _time(text: str | None, flag: str) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise ConfigError(f"{flag} must be an ISO-8601 time, got {text!r}") from None


def readable_projections(settings: Settings) -> str:
    """The read models a read-only command looks at; a SQLite file not there yet (nothing synced
    or projected) reads as empty, in memory, rather than being created."""
    database = settings.projections_database
    if database.startswith(("postgresql:", "postgres:")) or database == ":memory:":
        return database
    if not os.path.isfile(database):
        if settings.projections:
            raise ConfigError(f"no read models at {os.path.abspath(database)} (RETURNFLOW_PROJECTIONS)")
        return ":memory:"
    return database


def audit(settings: Settings, args: argparse.Namespace) -> int:
    database = readable_projections(settings)
    store = open_store(settings.store)
    try:
        if args.all:
            fmt = args.format or "csv"
            if fmt not in ("csv", "jsonl"):
                raise ConfigError("audit --all writes csv or jsonl")
            rows = transitions(
                store, _time(args.since, "--since"), _time(args.until, "--until"), ProgressBar("export")
            )
            if args.output:
                with open(args.output, "w", encoding="utf-8", newline="") as out:
                    count = export(rows, fmt, out)
            else:
                count = export(rows, fmt, sys.stdout)
            print(f"exported {count} transitions", file=sys.stderr)
            return 0
        if not args.id:
            raise ConfigError("audit needs an ID, or --all")
        ledger = SyncLedger(database)
        try:
            line = timeline(
                store,
                args.id,
                as_of=_time(args.as_of, "--as-of"),
                version=args.version,
                calls=ledger.calls_for(args.id),
            )
        except NotFound as exc:
            print(f"returnflow: {exc}", file=sys.stderr)
            return 1
        finally:
            ledger.close()
        line.findings = reconcile_command.findings_for(database, args.id)
        sys.stdout.write(render(line, args.format or "table"))
        return 0
    finally:
        store.close()


def replay(settings: Settings, verify_too: bool, workers: int | None = None) -> int:
    store = open_store(settings.store)
    live = ReadModels(readable_projections(settings) if verify_too else settings.projections_database)
    try:
        if verify_too:
            result = verify(store, live, ProgressBar("verify"))
            print(orjson.dumps({**summary(result.rebuilt), "problems": len(result.problems)}).decode())
            for problem in result.problems:
                print(f"MISMATCH {problem}")
            return 1 if result.problems else 0
        rebuilt = rebuild(
            store,
            live,
            ProgressBar("replay"),
            workers=default_workers(store) if workers is None else workers,
            reopen=partial(open_store, settings.store),
        )
        print(orjson.dumps(summary(rebuilt)).decode())
        return 0
    finally:
        live.close()
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
        logs.configure(settings.log_format, final=argv is None)
        if args.command == "serve":
            return serve(settings)
        if args.command in READ_ONLY:
            require_existing(settings.store)
        if args.command in ("relay", "sync"):
            check_reachable(settings.store)
            _serve_metrics(args, settings)
        if args.command == "relay":
            return relay(settings)
        if args.command == "sync":
            return sync(settings)
        if args.command == "audit":
            return audit(settings, args)
        if args.command == "reconcile":
            return reconcile_command.run(settings, args)
        if args.command == "replay":
            return replay(settings, args.verify, args.workers)
    except (ConfigError, NoStore) as exc:
        print(f"returnflow: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
