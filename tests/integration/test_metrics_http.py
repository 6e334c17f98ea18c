"""`/metrics` over real HTTP: prometheus-client's text, with the histograms the dashboards read."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from projections.metrics import serve_metrics
from projections.positions import PositionStore
from projections.relay import Relay
from tests.conftest import RunningService, free_port
from tests.integration.test_operator_api import act, fresh_order, return_update, webhook


async def scrape(svc: RunningService) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with svc.http.get(svc.url + "/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await r.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_requests_are_timed_per_route_and_outcome(service: RunningService) -> None:
    before = await scrape(service)
    assert (await webhook(service, "order-submit", fresh_order()))[0] == 200
    assert (await webhook(service, "return-request-update", return_update("R9")))[0] == 200
    status, _ = await act(service, "/returns/R9/refund", {"action": "settle"})
    assert status == 409
    async with service.http.get(service.url + "/returns/R9", headers={"Authorization": "Bearer no"}) as r:
        assert r.status == 401
    after = await scrape(service)

    count = "returnflow_http_request_seconds_count"
    assert value(after, count, route="/webhooks/order-submit", method="POST", outcome="200") == 1
    assert value(after, count, route="/returns/{id}/refund", method="POST", outcome="409") == 1
    assert value(after, count, route="/returns/{id}", method="GET", outcome="401") == 1
    assert (
        value(
            after,
            "returnflow_http_request_seconds_bucket",
            route="/webhooks/order-submit",
            method="POST",
            outcome="200",
            le="+Inf",
        )
        == 1
    )
    assert (
        value(after, "returnflow_requests_total", outcome="webhook_created", path="/webhooks/order-submit")
        == 1
    )
    assert value(after, "returnflow_writer_commands_total") >= 2
    batches = "returnflow_writer_batch_size_count"
    assert value(after, batches) - value(before, batches) >= 2
    assert value(after, "returnflow_writer_commit_seconds_count") > value(
        before, "returnflow_writer_commit_seconds_count"
    )


async def test_commerce_calls_are_timed_per_operation_and_outcome(service: RunningService) -> None:
    """Embedded default, no Commerce URL: the calls are logged, and counted as such."""
    metric = "returnflow_commerce_call_seconds_count"
    before = value(await scrape(service), metric, operation="updateReturnRequest", outcome="logged")
    await webhook(service, "order-submit", fresh_order())
    await webhook(service, "return-request-update", return_update("R10"))
    assert (await act(service, "/returns/R10/authorize", {"rma": "RMA10"}))[0] == 200

    for _ in range(200):
        samples = await scrape(service)
        if value(samples, metric, operation="updateReturnRequest", outcome="logged") > before:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the embedded sync's call was not timed")
    assert value(samples, "returnflow_sync_lag_seconds_count") >= 1


async def test_the_grafana_dashboard_reads_only_metrics_the_service_exposes(service: RunningService) -> None:
    dashboard = json.loads((Path(__file__).parents[2] / "docs" / "grafana-dashboard.json").read_text())
    wanted = {
        re.sub(r"_(bucket|count|sum|total)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"returnflow_\w+", target["expr"])
    }
    async with service.http.get(service.url + "/metrics") as r:
        exposed = {family.name for family in text_string_to_metric_families(await r.text())}
    assert len(wanted) >= 10
    assert wanted <= exposed, wanted - exposed


async def test_relay_lag_is_exposed_by_a_standalone_process_endpoint(service: RunningService) -> None:
    """`returnflow relay` has no HTTP server: `--metrics-port` serves the same registry."""
    await webhook(service, "order-submit", fresh_order())
    stored = service.events_stored()
    relay = Relay(service.services.store, PositionStore(":memory:"), "127.0.0.1:1")
    relay._measure_lag({"time": "2020-01-01T00:00:00Z"}, 0)
    server = serve_metrics(free_port())
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
    finally:
        server.shutdown()
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["returnflow_relay_lag_events"] == stored
    assert samples["returnflow_relay_lag_seconds"] > 365 * 24 * 3600
