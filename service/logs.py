"""structlog set-up: JSON lines for machines, key=value on a terminal, request ids bound per call."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import orjson
import structlog

from projections.json_numbers import json_default
from service.redaction import scrub_processor


class _CurrentStderr:
    """sys.stderr looked up at each write, so a swapped stream (tests, daemons) is honoured."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _dumps(value: object, **_: object) -> str:
    return orjson.dumps(value, default=json_default).decode()


def configure(
    log_format: str = "auto", level: int = logging.INFO, stream: TextIO | None = None, *, final: bool = False
) -> None:
    """`final`: nothing will configure logging again in this process (the CLI), so loggers
    may be bound once and cached instead of on every call."""
    renderer: structlog.types.Processor
    use_console = log_format == "console" or (log_format == "auto" and sys.stderr.isatty())
    if use_console:
        renderer = structlog.processors.KeyValueRenderer(
            key_order=["timestamp", "level", "event", "request_id"], drop_missing=True
        )
    else:
        renderer = structlog.processors.JSONRenderer(serializer=_dumps)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            scrub_processor,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream or _CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=final,
    )
