"""The `returnflow` console script: a thin entrypoint over the service layer."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import structlog
from aiohttp import web

from service import logs
from service.app import create_app
from service.config import ConfigError, Settings

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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
        logs.configure(settings.log_format)
        if args.command == "serve":
            return serve(settings)
    except ConfigError as exc:
        print(f"returnflow: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
