"""`/metrics` of `serve --workers N`: whichever worker a scrape reaches answers for all of them.

Each worker has its own figures (its registry, its process). Every second, and on
each scrape, a worker writes its exposition text to `worker-<index>.prom` in a
directory the supervisor made for the workers; a scrape reads every worker's
file and answers them together, each series labelled `worker="<index>"`. So one
scrape target sees every worker, at most a second old for the others. A worker
started again after a crash overwrites its file: its counters restart from zero,
which Prometheus' `rate()` reads as a counter reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

PUBLISH_EVERY_S = 1.0


class WorkerMetrics:
    def __init__(self, directory: Path, worker: int, own: Callable[[], bytes]) -> None:
        self.directory = directory
        self.worker = worker
        self.own = own

    def publish(self) -> None:
        """Atomically (write, then rename), so a reader never sees half a file."""
        target = self.directory / f"worker-{self.worker}.prom"
        scratch = self.directory / f".worker-{self.worker}.{os.getpid()}.tmp"
        scratch.write_bytes(self.own())
        scratch.replace(target)

    def answer(self) -> bytes:
        self.publish()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Labelled(self.directory))
        return generate_latest(registry)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                await asyncio.to_thread(self.publish)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PUBLISH_EVERY_S)


class _Labelled(Collector):
    """Every worker's families, merged by name, each sample labelled with its worker."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for path in sorted(self.directory.glob("worker-*.prom")):
            worker = path.stem.removeprefix("worker-")
            try:
                text = path.read_text()
            except OSError:
                continue
            for family in text_string_to_metric_families(text):
                into = merged.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type, family.unit)
                )
                for sample in family.samples:
                    into.add_sample(
                        sample.name,
                        {**sample.labels, "worker": worker},
                        sample.value,
                        sample.timestamp,
                        sample.exemplar,
                    )
        yield from merged.values()
