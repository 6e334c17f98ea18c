"""Process-wide Prometheus instruments, and the small API other modules add theirs with.

Every Returnflow process (`serve`, `relay`, `sync`) registers on prometheus-client's
default registry, so one `/metrics` answer shows the HTTP layer, the writer, the relay
and the Commerce sync alike. Here, not in `service/`, because projections record
into it and must not import the service layer.

To add a metric, call `counter`, `gauge` or `histogram` at import time of your module:
each answers the same instrument when called again with the same name, so a module
that is reloaded (tests) does not fail on a duplicate registration.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server

M = TypeVar("M", Counter, Gauge, Histogram)
_made: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, Any]] = weakref.WeakKeyDictionary()
"""Per registry (weakly: an application's own registry goes with it), its instruments by name."""
_lock = threading.Lock()

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds: from a validation answer (~1 ms) to a Commerce call retried with backoff."""
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _make(
    kind: type[M],
    name: str,
    documentation: str,
    labels: Sequence[str],
    registry: CollectorRegistry,
    **extra: Any,
) -> M:
    with _lock:
        known = _made.setdefault(registry, {})
        made = known.get(name)
        if made is None:
            made = known[name] = kind(name, documentation, list(labels), registry=registry, **extra)
        if not isinstance(made, kind):
            raise TypeError(f"metric {name} already exists as a {type(made).__name__}")
        return made


def counter(
    name: str, documentation: str, labels: Sequence[str] = (), registry: CollectorRegistry = REGISTRY
) -> Counter:
    """A counter (`name` without `_total`: prometheus-client adds it)."""
    return _make(Counter, name, documentation, labels, registry)


def gauge(
    name: str, documentation: str, labels: Sequence[str] = (), registry: CollectorRegistry = REGISTRY
) -> Gauge:
    return _make(Gauge, name, documentation, labels, registry)


def histogram(
    name: str,
    documentation: str,
    labels: Sequence[str] = (),
    buckets: Sequence[float] = LATENCY_BUCKETS,
    registry: CollectorRegistry = REGISTRY,
) -> Histogram:
    return _make(Histogram, name, documentation, labels, registry, buckets=tuple(buckets))


WRITER_BATCH_SIZE = histogram(
    "returnflow_writer_batch_size",
    "Commands the writer thread committed together (group commit).",
    buckets=BATCH_BUCKETS,
)
WRITER_COMMIT_SECONDS = histogram(
    "returnflow_writer_commit_seconds", "Time to save one batch's events in one transaction."
)
RELAY_PUBLISHED = counter("returnflow_relay_published", "Events the relay published to Kafka.")
RELAY_LAG_EVENTS = gauge(
    "returnflow_relay_lag_events", "Stored events not yet published, after the relay's last page."
)
RELAY_LAG_SECONDS = gauge(
    "returnflow_relay_lag_seconds",
    "Age of the newest event the relay published, when it was acknowledged (0 when caught up).",
)
SYNC_LAG_SECONDS = histogram(
    "returnflow_sync_lag_seconds", "From an event's time to its Commerce call's answer.", buckets=LAG_BUCKETS
)
COMMERCE_CALL_SECONDS = histogram(
    "returnflow_commerce_call_seconds",
    "Commerce Admin API calls (retries included) by operation and outcome: ok, dead_letter "
    "(refused for good), unavailable (left for a later attempt), logged (no Commerce URL).",
    ["operation", "outcome"],
)
DEAD_LETTERS = counter(
    "returnflow_commerce_dead_letters",
    "Calls Commerce refused for good (with Kafka, each is sent to the DLQ topic).",
    ["operation"],
)
DRIFT = counter(
    "returnflow_commerce_drift",
    "Drift reconciliation found between Commerce and the event store (each periodic run inside "
    "`returnflow sync` adds what it found), by resource kind.",
    ["kind"],
)


def record_drift(kind: str, count: int = 1) -> None:
    """Count resources whose Commerce state drifted (called by each reconciliation run)."""
    DRIFT.labels(kind=kind).inc(count)


def serve_metrics(port: int, host: str = "127.0.0.1") -> Any:
    """`/metrics` for `returnflow relay` and `returnflow sync`, which have no HTTP server of
    their own (a daemon thread); answers the server, for tests to shut down."""
    server, _ = start_http_server(port, addr=host)
    return server
