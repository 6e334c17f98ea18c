"""Issue 23 item 6: the age-in-state gauge the runbook's "stuck returns" alert reads."""

from __future__ import annotations

import asyncio
from datetime import datetime

from service.state_ages import ReturnAges
from tests.conftest import RunningService
from tests.integration.test_operator_api import act, fresh_order, get, return_update, webhook

NOW = 2_000_000_000.0


def gauges(ages: ReturnAges) -> dict[tuple[str, str], float]:
    return {(m.name, s.labels["state"]): s.value for m in ages.collect() for s in m.samples}


async def wait_for_state(ages: ReturnAges, state: str) -> dict[tuple[str, str], float]:
    """The read models follow the store: wait on the gauge itself, not on a time."""
    while ("returnflow_returns_in_state", state) not in (seen := gauges(ages)):
        await asyncio.sleep(0.02)
    return seen


async def until(ages: ReturnAges, key: tuple[str, str], value: float) -> dict[tuple[str, str], float]:
    while (seen := gauges(ages)).get(key) != value:
        await asyncio.sleep(0.02)
    return seen


async def test_the_gauge_tells_how_long_returns_wait_in_each_open_state(service: RunningService) -> None:
    ages = ReturnAges(service.services.settings.projections_database, clock=lambda: NOW, refresh_s=0)
    try:
        assert (await webhook(service, "order-submit", fresh_order()))[0] == 200
        for rid in ("700001", "700002"):
            assert (await webhook(service, "return-request-update", return_update(rid)))[0] == 200
        seen = await asyncio.wait_for(
            until(ages, ("returnflow_returns_in_state", "PENDING_CUSTOMER_ACTION"), 2), 30
        )
        history = (await get(service, "/returns/700001/history"))["events"]
        entered = datetime.fromisoformat(history[0]["time"]).timestamp()
        age = seen[("returnflow_return_oldest_in_state_seconds", "PENDING_CUSTOMER_ACTION")]
        assert abs(age - (NOW - entered)) < 1, "the oldest one's wait, to the second"

        assert (await act(service, "/returns/700001/authorize", {"rma": "RMA-1"}))[0] == 200
        receipt = {"items": [{"commerceItemId": "ci2000007", "quantity": 2}]}
        status, received = await act(service, "/returns/700001/receive", receipt)
        assert (status, received["state"]) == (200, "FULL_RETURN")
        seen = await asyncio.wait_for(wait_for_state(ages, "FULL_RETURN"), 30)
        seen = await asyncio.wait_for(
            until(ages, ("returnflow_returns_in_state", "PENDING_CUSTOMER_ACTION"), 1), 30
        )
        assert seen[("returnflow_returns_in_state", "FULL_RETURN")] == 1
    finally:
        ages.close()


async def test_metrics_carries_the_gauge(service: RunningService) -> None:
    async with service.http.get(f"{service.url}/metrics") as answer:
        text = await answer.text()
    assert "# TYPE returnflow_return_oldest_in_state_seconds gauge" in text
    assert "# TYPE returnflow_returns_in_state gauge" in text


async def test_the_runbook_names_only_metrics_that_exist(service: RunningService) -> None:
    """docs/operations.md's alerts and README's metric names are what /metrics answers."""
    import re
    from pathlib import Path

    import projections.sync  # noqa: F401  (registers the sync's and relay's instruments)

    async with service.http.get(f"{service.url}/metrics") as answer:
        text = await answer.text()
    exposed = set(re.findall(r"^# TYPE (\w+) (\w+)", text, re.M))
    names = {name for name, _ in exposed}
    names |= {f"{name}_total" for name, kind in exposed if kind == "counter"}
    names |= {
        f"{name}_{s}" for name, kind in exposed if kind == "histogram" for s in ("bucket", "count", "sum")
    }
    root = Path(__file__).resolve().parents[2]
    for document in ("docs/operations.md", "README.md"):
        named = set(re.findall(r"\breturnflow_[a-z_]+[a-z]\b", (root / document).read_text(encoding="utf-8")))
        named -= {"returnflow_events"}  # the PostgreSQL table
        assert named and named <= names, (document, named - names)
