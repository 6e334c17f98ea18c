"""Issue 23 item 4: nothing fails silently. Dead letters and give-ups are warnings with a
counter; `reconcile` exits non-zero when Commerce lacks what we hold; every operator action is
logged with who acted, and an action without `X-Operator` is the service credential's
(`service:api`, SPEC section 10), not an anonymous `operator:api`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import structlog
from prometheus_client import REGISTRY

from projections.sync import CommerceProjector, LoggedOutcome, SyncLedger
from tests.commerce_sim.server import CommerceSimulator
from tests.conftest import RunningService
from tests.integration.test_operator_api import fresh_order, get, return_update, webhook
from tests.integration.test_projector import FakeCommerce, message
from tests.integration.test_reconcile import completed, reconcile


def dead_letters(operation: str) -> float:
    return (
        REGISTRY.get_sample_value("returnflow_commerce_dead_letters_total", {"operation": operation}) or 0.0
    )


async def test_a_dead_letter_is_a_warning_and_counted(tmp_path: Path) -> None:
    refused = LoggedOutcome(status=400, attempts=1, ok=False, dead_letter_reason="commerce refused: 400 X")
    ledger = SyncLedger(str(tmp_path / "p.db"))
    before = dead_letters("updateReturnRequest")
    with structlog.testing.capture_logs() as entries:
        await CommerceProjector(FakeCommerce(refused), ledger).project([message(2, "PARTIAL_RETURN", 1)])
    ledger.close()
    (call,) = [e for e in entries if e["event"] == "commerce_call"]
    assert (call["log_level"], call["ok"], call["reason"]) == ("warning", False, "commerce refused: 400 X")
    assert dead_letters("updateReturnRequest") == before + 1


async def test_a_call_commerce_took_stays_at_info(tmp_path: Path) -> None:
    ledger = SyncLedger(str(tmp_path / "p.db"))
    with structlog.testing.capture_logs() as entries:
        await CommerceProjector(FakeCommerce(LoggedOutcome(status=200, attempts=1)), ledger).project(
            [message(2, "PARTIAL_RETURN", 1)]
        )
    ledger.close()
    assert [e["log_level"] for e in entries if e["event"] == "commerce_call"] == ["info"]


async def test_reconcile_fails_when_commerce_lacks_the_return(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with CommerceSimulator() as sim:
        db = await completed(tmp_path, sim, 46)
        del sim.returns["R46"]
        capsys.readouterr()
        code, report = await reconcile(db, sim, capsys)
    verdicts = {(f["subject"], f["verdict"]) for f in report["findings"]}
    assert ("R46", "missing-at-commerce") in verdicts
    assert code == 1


async def _a_return(service: RunningService) -> str:
    assert (await webhook(service, "order-submit", fresh_order()))[0] == 200
    rid = "900046"
    assert (await webhook(service, "return-request-update", return_update(rid)))[0] == 200
    return rid


async def _authorize(service: RunningService, rid: str, headers: dict[str, str]) -> int:
    async with service.http.post(
        f"{service.url}/returns/{rid}/authorize", json={"rma": "RMA-46"}, headers={**service.auth, **headers}
    ) as answer:
        return answer.status


@pytest.mark.parametrize(
    ("headers", "actor"), [({}, "service:api"), ({"X-Operator": "carol"}, "operator:carol")]
)
async def test_an_operator_action_is_logged_and_recorded_with_its_actor(
    service: RunningService, headers: dict[str, str], actor: str
) -> None:
    rid = await _a_return(service)
    with structlog.testing.capture_logs() as entries:
        assert await _authorize(service, rid, headers) == 200
    logged = [e for e in entries if e["event"] == "operator_action"]
    assert [(e["actor"], e["action"], e["subject"], e["outcome"]) for e in logged] == [
        (actor, "authorize", rid, "done")
    ]
    history: Any = await get(service, f"/returns/{rid}/history")
    actors = [entry["actor"] for entry in history["events"]]
    assert actors[-1] == actor and "operator:api" not in actors


async def test_a_refused_operator_action_is_logged_too(service: RunningService) -> None:
    rid = await _a_return(service)
    with structlog.testing.capture_logs() as entries:
        async with service.http.post(
            f"{service.url}/returns/{rid}/refund", json={"action": "settle"}, headers=service.auth
        ) as answer:
            assert answer.status == 409
    (line,) = [e for e in entries if e["event"] == "operator_action"]
    assert (line["actor"], line["action"], line["outcome"], line["error"]) == (
        "service:api",
        "refund",
        "refused",
        "ILLEGAL_TRANSITION",
    )


async def test_the_drift_counter_says_what_counts_it(service: RunningService) -> None:
    async with service.http.get(f"{service.url}/metrics") as answer:
        text = await answer.text()
    (help_line,) = [line for line in text.splitlines() if line.startswith("# HELP returnflow_commerce_drift")]
    assert "reconciliation" in help_line and "until reconciliation exists" not in help_line
