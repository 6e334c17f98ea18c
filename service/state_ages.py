"""How long returns have waited in each open state, for `/metrics`: the alert on returns stuck
in a state longer than N hours reads `returnflow_return_oldest_in_state_seconds`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from projections.read_models import ReadModels

FINAL_STATES = frozenset({"COMPLETE", "INCOMPLETE"})
REFRESH_S = 15.0
"""A scrape reads the read models at most this often (one grouped query over rf_transitions)."""


class ReturnAges(Collector):
    """Returns in each open state and the age of the oldest there (read models' view)."""

    def __init__(
        self, database: str, clock: Callable[[], float] = time.time, refresh_s: float = REFRESH_S
    ) -> None:
        self.database = database
        self.clock = clock
        self.refresh_s = refresh_s
        self._read_models: ReadModels | None = None
        self._rows: list[tuple[str, int, str]] = []
        self._read_at = float("-inf")

    def _current(self) -> list[tuple[str, int, str]]:
        now = time.monotonic()
        if now - self._read_at >= self.refresh_s:
            if self._read_models is None:
                self._read_models = ReadModels(self.database)
            self._rows = self._read_models.returns_by_state()
            self._read_at = now
        return self._rows

    def collect(self) -> Iterator[GaugeMetricFamily]:
        count = GaugeMetricFamily(
            "returnflow_returns_in_state", "Open returns by the state they are in now.", labels=["state"]
        )
        oldest = GaugeMetricFamily(
            "returnflow_return_oldest_in_state_seconds",
            "Seconds the longest-waiting open return has been in its state (since its last transition).",
            labels=["state"],
        )
        now = self.clock()
        for state, returns, since in self._current():
            if state in FINAL_STATES:
                continue
            count.add_metric([state], returns)
            oldest.add_metric(
                [state], max(0.0, now - datetime.fromisoformat(since).astimezone(UTC).timestamp())
            )
        yield count
        yield oldest

    def close(self) -> None:
        if self._read_models is not None:
            self._read_models.close()
            self._read_models = None
