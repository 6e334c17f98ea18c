"""`/metrics`: the HTTP layer's latency histograms and counters, beside the process-wide ones.

An application keeps its own registry for what belongs to it (request latencies, its
request counters, its writer's totals), so two applications in one process (tests)
never mix their figures; the writer's, relay's and sync's histograms are
process-wide (`projections.metrics`). The answer is both registries' text.
"""

from __future__ import annotations

import asyncio
from collections import Counter as Tally
from collections.abc import Callable, Iterator

from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from projections.lease import live_leases
from projections.lru import live_caches
from projections.metrics import histogram
from service.worker_metrics import WorkerMetrics

ObserveFn = Callable[[float], None]


class RequestMetrics:
    """Latency per route, method and outcome (the status code), cheap on the hot path.

    `observe` caches each label combination's child, so a request pays one dict lookup
    and one bucket search (about 1-2 us), not prometheus-client's label resolution.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.latency = histogram(
            "returnflow_http_request_seconds",
            "HTTP requests by route (the route's pattern), method and outcome (status code).",
            ["route", "method", "outcome"],
            registry=registry,
        )
        self._children: dict[tuple[str, str, int], ObserveFn] = {}

    def observe(self, request: web.Request, status: int, seconds: float) -> None:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        key = (route, request.method, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.latency.labels(route, request.method, str(status)).observe
        child(seconds)


class _Tallies(Collector):
    """The handlers' outcome counters (`Services.counters`), read at scrape time."""

    def __init__(self, counters: Tally[tuple[str, str]], writer_stats: Callable[[], object]) -> None:
        self.counters = counters
        self.writer_stats = writer_stats

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "returnflow_requests",
            "Webhooks and operator actions by outcome and route.",
            labels=["outcome", "path"],
        )
        for (outcome, path), count in sorted(self.counters.items()):
            requests.add_metric([outcome, path], count)
        yield requests
        stats = self.writer_stats()
        for name, doc in (
            ("batches", "Batches the writer committed."),
            ("commands", "Commands the writer ran."),
            ("conflicts", "Batches re-run one command at a time after a conflict."),
            ("contended", "Commands given up after colliding on every retry (answered 503)."),
        ):
            yield CounterMetricFamily(f"returnflow_writer_{name}", doc, value=getattr(stats, name))
        yield from _caches()
        yield from leases_metrics()


def leases_metrics() -> Iterator[Metric]:
    """Which single-process duties this process runs now (`projections.lease`): summed over the
    replicas, `returnflow_lease_held` is 1 per duty; lost counts hand-overs."""
    held = GaugeMetricFamily("returnflow_lease_held", "1 while this process runs the duty.", labels=["duty"])
    acquired = CounterMetricFamily(
        "returnflow_lease_acquired", "Times this process took the duty.", labels=["duty"]
    )
    lost = CounterMetricFamily("returnflow_lease_lost", "Times this process lost the duty.", labels=["duty"])
    for lease in live_leases():
        held.add_metric([lease.name], int(lease.held))
        acquired.add_metric([lease.name], lease.acquired)
        lost.add_metric([lease.name], lease.lost)
    yield from (held, acquired, lost)


def _caches() -> Iterator[Metric]:
    """Every bounded cache of this process (`projections.lru`), summed by name: a hit rate that
    falls as the store grows says RETURNFLOW_CACHE_ENTRIES is low for the working set."""
    totals: dict[str, list[int]] = {}
    for c in live_caches():
        sums = totals.setdefault(c.name, [0, 0, 0, 0, 0])
        for n, value in enumerate((c.entries, c.capacity, c.hits, c.misses, c.evictions)):
            sums[n] += value
    families: list[tuple[type[CounterMetricFamily] | type[GaugeMetricFamily], str, str]] = [
        (GaugeMetricFamily, "entries", "Entries a cache holds now."),
        (GaugeMetricFamily, "capacity", "The most entries a cache may hold."),
        (CounterMetricFamily, "hits", "Lookups a cache answered."),
        (CounterMetricFamily, "misses", "Lookups a cache could not answer (the store was read)."),
        (CounterMetricFamily, "evictions", "Entries dropped to stay within the capacity."),
    ]
    for n, (family, name, doc) in enumerate(families):
        metric = family(f"returnflow_cache_{name}", doc, labels=["cache"])
        for cache, sums in sorted(totals.items()):
            metric.add_metric([cache], sums[n])
        yield metric


class AppMetrics:
    """One application's registry and its `/metrics` handler."""

    def __init__(self, counters: Tally[tuple[str, str]], writer_stats: Callable[[], object]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = RequestMetrics(self.registry)
        self.registry.register(_Tallies(counters, writer_stats))
        self.workers: WorkerMetrics | None = None
        """With `serve --workers N`: answers for every worker (see `service.worker_metrics`)."""

    def text(self) -> bytes:
        return generate_latest(self.registry) + generate_latest(REGISTRY)

    async def handler(self, request: web.Request) -> web.Response:
        body = self.text() if self.workers is None else await asyncio.to_thread(self.workers.answer)
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


METRICS: web.AppKey[AppMetrics] = web.AppKey("metrics", AppMetrics)
