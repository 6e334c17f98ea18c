"""The `returnflow` console script: a thin entrypoint over the service layer."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence

import structlog
from aiohttp import web

from projections.positions import PositionStore, side_database
from projections.relay import Relay
from projections.sync import CommerceProjector, KafkaSync, SyncLedger
from service import logs
from service.app import create_app
from service.background import make_commerce
from service.config import ConfigError, KafkaNames, Settings
from service.store import open_store

log = structlog.get_logger(__name__)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", help="RETURNFLOW_STORE: sqlite:///path, postgresql://…, memory:")
    parser.add_argument("--log-format", choices=["auto", "json", "console"],
                        help="RETURNFLOW_LOG_FORMAT (auto: key=value on a terminal, else JSON)")


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
    relay = commands.add_parser("relay", help="publish the event store to Kafka (returnflow.events)")
    _common(relay)
    relay.add_argument("--kafka-bootstrap", help="RETURNFLOW_KAFKA_BOOTSTRAP")
    sync = commands.add_parser("sync", help="consume returnflow.events into Commerce Admin API calls")
    _common(sync)
    sync.add_argument("--kafka-bootstrap", help="RETURNFLOW_KAFKA_BOOTSTRAP")
    sync.add_argument("--commerce-url", help="RETURNFLOW_COMMERCE_URL (unset: log the calls)")
    sync.add_argument("--commerce-app-key", help="RETURNFLOW_COMMERCE_APP_KEY")
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    secrets = getattr(args, "webhook_secrets", None)
    return Settings.from_env(
        store=args.store,
        log_format=args.log_format,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        webhook_secrets=tuple(s.strip() for s in secrets.split(",") if s.strip())
        if secrets
        else None,
        api_token=getattr(args, "api_token", None),
        policy_path=getattr(args, "policy", None),
        kafka_bootstrap=getattr(args, "kafka_bootstrap", None),
        commerce_url=getattr(args, "commerce_url", None),
        commerce_app_key=getattr(args, "commerce_app_key", None),
    )


def serve(settings: Settings) -> int:
    app = create_app(settings)
    log.info("serving", host=settings.host, port=settings.port, store=settings.store)
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None)
    return 0


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
    positions = PositionStore(side_database(settings.store))
    log.info("relay_starting", bootstrap=settings.kafka_bootstrap, store=settings.store)
    try:
        relay = Relay(store, positions, settings.kafka_bootstrap, topic=topics.events)
        return _run_until_signalled(relay.run)
    finally:
        positions.close()
        store.close()


def sync(settings: Settings) -> int:
    topics = KafkaNames.from_env()
    if not settings.kafka_bootstrap:
        raise ConfigError("returnflow sync needs RETURNFLOW_KAFKA_BOOTSTRAP")
    ledger = SyncLedger(side_database(settings.store))

    async def run(stop: asyncio.Event) -> None:
        commerce = make_commerce(settings)
        try:
            consumer = KafkaSync(settings.kafka_bootstrap or "", CommerceProjector(commerce, ledger),
                                 topic=topics.events, dlq_topic=topics.dlq, group_id=topics.group)
            await consumer.run(stop)
        finally:
            close = getattr(commerce, "close", None)
            if close is not None:
                await close()

    log.info("sync_starting", bootstrap=settings.kafka_bootstrap, commerce=settings.commerce_url)
    try:
        return _run_until_signalled(run)
    finally:
        ledger.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
        logs.configure(settings.log_format)
        if args.command == "serve":
            return serve(settings)
        if args.command == "relay":
            return relay(settings)
        if args.command == "sync":
            return sync(settings)
    except ConfigError as exc:
        print(f"returnflow: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
