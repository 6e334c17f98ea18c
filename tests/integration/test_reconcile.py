"""`returnflow reconcile` against the Commerce simulator over real HTTP (issue 16).

Each test runs a whole return through `serve` (embedded sync) so Commerce holds what
Returnflow sent, injects one kind of drift at the simulator, and shows `reconcile`
reporting it, `--fix` repairing it, and a second `reconcile` finding nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from projections.commerce_client import CommerceClient
from projections.reconcile_log import ReconcileLog
from projections.sync import CommerceProjector, SyncLedger
from service.cli import main
from service.config import Settings
from service.reconcile_command import in_sync
from tests.commerce_sim.server import CommerceSimulator
from tests.e2e.scenario import Driver, credits_sent, seed_commerce, wait_for
from tests.e2e.test_commerce_contract import return_with_order, ship
from tests.e2e.test_sync_kafka import serving

CARD = "pg20005"


async def reconcile(
    db: Path, sim: CommerceSimulator, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, Any]]:
    """The CLI, as an operator runs it (its own event loop, in a thread beside the simulator)."""
    capsys.readouterr()
    code = await asyncio.to_thread(
        main,
        [
            "reconcile",
            "--store",
            f"sqlite:///{db}",
            "--commerce-url",
            sim.url,
            "--commerce-app-key",
            "sim-app-key",
            "--format",
            "json",
            "--rate",
            "0",
            *extra,
        ],
    )
    out = capsys.readouterr().out
    return code, orjson.loads(out) if out.startswith("{") else {"raw": out}


def by_field(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(f["subject"], f["field"]): f for f in report["findings"]}


async def completed(tmp_path: Path, sim: CommerceSimulator, n: int) -> Path:
    """Return n run to COMPLETE through `serve`; Commerce holds it credited."""
    seed_commerce(sim, n)
    db = tmp_path / "rf.db"
    async with serving(db, None, commerce_url=sim.url, flavour=sim.flavour) as driver:
        await driver.full(n)
        await wait_for(lambda: sim.returns[f"R{n}"]["state"] == "COMPLETE", 30, "completion")
        if sim.flavour == "classic":
            await wait_for(lambda: _credited(sim, n) == 268.4, 30, "the credit")
    return db


def _credited(sim: CommerceSimulator, n: int) -> Any:
    return {p["id"]: p.get("amountCredited") for p in sim.orders[f"o{n}"]["paymentGroups"]}[CARD]


async def test_in_sync_reports_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with CommerceSimulator() as sim:
        db = await completed(tmp_path, sim, 40)
        code, report = await reconcile(db, sim, capsys)
        gets = sim.calls_to("/ccadmin/v1/", "GET")
    assert (code, report["findings"], report["checked"]) == (0, [], 1)
    assert {c.path for c in gets} == {"/ccadmin/v1/returnRequests/R40", "/ccadmin/v1/orders/o40"}


async def test_restored_backup_lost_puts_are_reported_and_redriven(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Commerce restored from a backup taken before receipt: every later PUT is lost."""
    async with CommerceSimulator() as sim:
        seed_commerce(sim, 41)
        db = tmp_path / "rf.db"
        async with serving(db, None, commerce_url=sim.url) as driver:
            await driver.order_and_return(41)
            await driver.act("/returns/R41/authorize", {"rma": "RMA41"})
            await wait_for(lambda: sim.returns["R41"].get("authorizationNumber") == "RMA41", 30, "RMA")
            backup = copy.deepcopy(sim.returns["R41"])
            await _receive_refund(driver, 41)
            await wait_for(lambda: sim.returns["R41"]["state"] == "COMPLETE", 30, "completion")
        sim.returns["R41"] = backup
        code, report = await reconcile(db, sim, capsys)
        found = by_field(report)
        assert code == 1
        state = found[("R41", "state")]
        assert (state["ours"], state["theirs"], state["verdict"]) == ("COMPLETE", backup["state"], "drift")
        assert state["event"]["type"] == "ReturnRequest.RefundSettled"
        received = found[("R41", "returnItemList[ci2000007/sg20005].quantityReceived")]
        assert (received["ours"], received["theirs"]) == ("2", "0")
        assert received["event"]["type"] == "ReturnRequest.ItemsReceived"
        assert found[("R41", "actualShippingRefund")]["verdict"] == "drift"

        code, report = await reconcile(db, sim, capsys, "--fix")
        assert code == 0 and all(f["fixed"] for f in report["findings"])
        assert sim.returns["R41"]["state"] == "COMPLETE"
        assert sim.returns["R41"]["returnItemList"][0]["quantityReceived"] == 2
        assert sim.returns["R41"]["agentId"] == "service", "nothing of Commerce's erased"
        code, report = await reconcile(db, sim, capsys)
        assert (code, report["findings"]) == (0, [])


async def _receive_refund(driver: Driver, n: int) -> None:
    for _ in range(2):
        await driver.act(
            f"/returns/R{n}/receive", {"items": [{"commerceItemId": "ci2000007", "quantity": 1}]}
        )
    await driver.act(f"/returns/R{n}/refund", {"action": "initiate"})
    await driver.act(f"/returns/R{n}/refund", {"action": "settle"})


async def test_a_dead_lettered_put_is_found_and_redriven(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Commerce refused the settling PUT (dead-lettered, the ledger moved on): only reconcile sees it."""
    async with CommerceSimulator() as sim:
        seed_commerce(sim, 42)
        db = tmp_path / "rf.db"
        async with serving(db, None, commerce_url=sim.url) as driver:
            await driver.order_and_return(42)
            await driver.act("/returns/R42/authorize", {"rma": "RMA42"})
            for _ in range(2):
                await driver.act(
                    "/returns/R42/receive", {"items": [{"commerceItemId": "ci2000007", "quantity": 1}]}
                )
            await driver.act("/returns/R42/refund", {"action": "initiate"})
            await wait_for(lambda: sim.returns["R42"]["state"] == "PENDING_REFUND", 30, "refund")
            sim.fail_next(400, prefix="/ccadmin/v1/returnRequests/R42")
            await driver.act("/returns/R42/refund", {"action": "settle"})
            await wait_for(lambda: any(c.status == 400 for c in sim.calls), 30, "the refusal")
            await wait_for(lambda: _credited(sim, 42) == 268.4, 30, "the credit")
        code, report = await reconcile(db, sim, capsys, "--fix")
        assert by_field(report)[("R42", "state")]["theirs"] == "PENDING_REFUND"
        assert code == 0 and sim.returns["R42"]["state"] == "COMPLETE"
        assert (await reconcile(db, sim, capsys))[1]["findings"] == []


async def test_an_edited_state_is_set_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with CommerceSimulator() as sim:
        db = await completed(tmp_path, sim, 43)
        sim.agent_set_state("R43", "PENDING_REFUND")
        code, report = await reconcile(db, sim, capsys, "--id", "R43")
        assert code == 1
        assert [(f["field"], f["ours"], f["theirs"], f["verdict"]) for f in report["findings"]] == [
            ("state", "COMPLETE", "PENDING_REFUND", "drift")
        ]
        puts = len(sim.puts())
        code, report = await reconcile(db, sim, capsys, "--id", "R43", "--fix")
        assert code == 0 and report["findings"][0]["fixed"] is True
        assert sim.returns["R43"]["state"] == "COMPLETE"
        assert len(sim.puts()) == puts + 1, "one PUT: the return; the order had not drifted"
        assert (await reconcile(db, sim, capsys))[1]["findings"] == []


async def test_a_missing_credit_is_redriven_once_and_absolute(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with CommerceSimulator() as sim:
        db = await completed(tmp_path, sim, 44)
        for group in sim.orders["o44"]["paymentGroups"]:
            group["amountCredited"] = 0
        code, report = await reconcile(db, sim, capsys)
        credit = by_field(report)[("o44", f"paymentGroups[{CARD}].amountCredited")]
        assert (code, credit["ours"], credit["theirs"], credit["verdict"]) == (1, "268.40", "0", "drift")
        assert credit["event"]["type"] == "Order.Credited"
        for _ in range(2):
            await reconcile(db, sim, capsys, "--fix")
        assert _credited(sim, 44) == 268.4, "re-driven twice, credited once"
        assert credits_sent(sim, 44)[-1] == 268.4
        assert (await reconcile(db, sim, capsys))[1]["findings"] == []


MANUAL = {"refundType": "manualRefund", "amount": 0, "maximumRefundAmount": -1}


async def completed_with_manual_method(tmp_path: Path, sim: CommerceSimulator, n: int) -> Path:
    """Return n COMPLETE, Commerce holding a manualRefund method that our refund filled in."""
    seed_commerce(sim, n)
    sim.agent_add_refund_method(f"R{n}", {**MANUAL, "state": "INCOMPLETE"})
    db = tmp_path / "rf.db"
    async with serving(db, None, commerce_url=sim.url) as driver:
        await ship(driver, n)
        await driver.webhook("return-request-update", return_with_order(n, methods=[MANUAL]))
        await driver.act(f"/returns/R{n}/authorize", {"rma": f"RMA{n}"})
        await _receive_refund(driver, n)
        await wait_for(lambda: sim.returns[f"R{n}"]["state"] == "COMPLETE", 30, "completion")
        await wait_for(lambda: _credited(sim, n) == 268.4, 30, "the credit")
    return db


async def test_a_deleted_refund_method_is_put_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with CommerceSimulator() as sim:
        db = await completed_with_manual_method(tmp_path, sim, 45)
        sim.returns["R45"]["refundMethodList"] = []
        code, report = await reconcile(db, sim, capsys)
        method = by_field(report)[("R45", "refundMethodList[type:manualRefund].amount")]
        assert (code, method["ours"], method["theirs"], method["verdict"]) == (1, "268.40", None, "drift")
        await reconcile(db, sim, capsys, "--fix")
        assert sim.returns["R45"]["refundMethodList"] == [{"refundType": "manualRefund", "amount": 268.4}]
        code, report = await reconcile(db, sim, capsys)
        assert [(f["field"], f["verdict"]) for f in report["findings"]] == [("state", "commerce-owned")], (
            "the order state the return's update reported stands"
        )
        assert code == 0


async def test_commerces_own_differences_are_reported_and_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An agent's gift card method, a credit beyond ours and an edited return reason stand."""
    gift = {"refundType": "giftCard", "amount": 10, "state": "INCOMPLETE"}
    async with CommerceSimulator() as sim:
        db = await completed_with_manual_method(tmp_path, sim, 46)
        sim.agent_add_refund_method("R46", gift)
        sim.agent_credit("o46", CARD, 5.0)
        sim.returns["R46"]["returnItemList"][0]["returnReason"] = "didNotLike"
        before = copy.deepcopy((sim.returns["R46"], sim.orders["o46"]))
        code, report = await reconcile(db, sim, capsys, "--fix")
        found = by_field(report)
        assert code == 0
        assert {k[1]: f["verdict"] for k, f in found.items()} == {
            "refundMethodList[type:giftCard].amount": "commerce-owned",
            f"paymentGroups[{CARD}].amountCredited": "commerce-owned",
            "returnItemList[ci2000007/sg20005].returnReason": "commerce-owned",
            "state": "commerce-owned",  # the order state the return's update reported
        }
        assert (
            found[("R46", "returnItemList[ci2000007/sg20005].returnReason")]["event"]["type"]
            == "ReturnRequest.Received"
        )
        assert not any(f["fixed"] for f in report["findings"])
        assert (sim.returns["R46"], sim.orders["o46"]) == before, "nothing of Commerce's fixed"


async def test_a_run_records_what_it_found_for_the_audit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with CommerceSimulator() as sim:
        db = await completed(tmp_path, sim, 47)
        sim.agent_set_state("R47", "PENDING_REFUND")
        await reconcile(db, sim, capsys, "--fix")
        capsys.readouterr()
        assert await asyncio.to_thread(main, ["audit", "R47", "--store", f"sqlite:///{db}"]) == 0
        audit = capsys.readouterr().out
    assert "Reconciliation" in audit
    assert "state: ours COMPLETE, Commerce PENDING_REFUND -> drift, fixed" in audit
    runs = ReconcileLog(str(tmp_path / "rf.projections.db"))
    try:
        (run,) = runs.runs()
    finally:
        runs.close()
    assert (run["status"], run["checked"], run["drift"], run["fixed"]) == ("finished", 1, 1, 1)


async def test_op_flavour_redrives_with_operations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """In op, a lost markAsComplete goes again as markAsComplete; initiateRefund never does."""
    async with CommerceSimulator(flavour="op") as sim:
        db = await completed(tmp_path, sim, 48)
        sim.agent_set_state("R48", "PENDING_REFUND")
        argv = ("--commerce-flavour", "op")
        code, report = await reconcile(db, sim, capsys, *argv, "--fix")
        assert [(f["field"], f["verdict"], f["fixed"]) for f in report["findings"]] == [
            ("state", "drift", True)
        ]
        assert sim.puts()[-1].body == {"op": "markAsComplete"}
        assert sim.returns["R48"]["state"] == "COMPLETE"
        sim.agent_set_state("R48", "FULL_RETURN")
        code, report = await reconcile(db, sim, capsys, *argv, "--fix")
        assert (code, report["findings"][0]["fixed"]) == (1, False), "no second refund"
        assert [c.body["op"] for c in sim.puts("/ccadmin/v1/returnRequests/")].count("initiateRefund") == 1


async def three_completed(tmp_path: Path, sim: CommerceSimulator) -> tuple[Path, str]:
    """Returns 50, 51, 52 COMPLETE; answers the db and a time between 50 and 51."""
    db = tmp_path / "rf.db"
    between = ""
    async with serving(db, None, commerce_url=sim.url) as driver:
        for n in (50, 51, 52):
            seed_commerce(sim, n)
            await driver.full(n)
            if n == 50:
                await asyncio.sleep(0.05)
                between = datetime.now(UTC).isoformat()
                await asyncio.sleep(0.05)
        await wait_for(lambda: all(_credited(sim, n) == 268.4 for n in (50, 51, 52)), 30, "sync")
    return db, between


async def test_an_interrupted_run_resumes_after_its_last_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with CommerceSimulator() as sim:
        db, _ = await three_completed(tmp_path, sim)
        sim.fail_next(503, 50, prefix="/ccadmin/v1/returnRequests/R52")
        code, _ = await reconcile(db, sim, capsys, "--page-size", "1")
        assert code == 3, "Commerce away: the run stops, resumable"
        sim.clear_faults()
        for n in (50, 52):
            sim.agent_set_state(f"R{n}", "PENDING_REFUND")
        sim.calls.clear()
        code, report = await reconcile(db, sim, capsys, "--page-size", "1", "--resume")
        gets = {c.path for c in sim.calls_to("/ccadmin/v1/", "GET")}
    assert gets == {"/ccadmin/v1/returnRequests/R52", "/ccadmin/v1/orders/o52"}
    assert [(f["subject"], f["field"]) for f in report["findings"]] == [("R52", "state")]
    runs = ReconcileLog(str(tmp_path / "rf.projections.db"))
    try:
        assert [(r["status"], r["checked"]) for r in runs.runs()] == [("finished", 3)]
    finally:
        runs.close()


async def test_since_checks_only_what_changed_after(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with CommerceSimulator() as sim:
        db, between = await three_completed(tmp_path, sim)
        sim.agent_set_state("R50", "PENDING_REFUND")
        code, report = await reconcile(db, sim, capsys, "--since", between)
        assert (code, report["checked"], report["findings"]) == (0, 2, [])
        code, report = await reconcile(db, sim, capsys)
        assert (code, report["checked"], len(report["findings"])) == (1, 3, 1)


async def test_sync_reconciles_periodically_and_counts_drift(tmp_path: Path) -> None:
    async with CommerceSimulator() as sim:
        db = await completed(tmp_path, sim, 53)
        sim.agent_set_state("R53", "PENDING_REFUND")
        settings = Settings(store=f"sqlite:///{db}", reconcile_interval_s=0.05, reconcile_fix=True)
        counted: list[int] = []
        stop = asyncio.Event()
        ledger = SyncLedger(settings.projections_database)
        async with CommerceClient(sim.url, "sim-app-key") as commerce:
            projector = CommerceProjector(commerce, ledger)
            task = asyncio.create_task(in_sync(settings, commerce, projector, stop, counted.append))
            await wait_for(lambda: len(counted) >= 2, 10, "two rounds")
            stop.set()
            await task
        ledger.close()
    assert counted[:2] == [1, 0], "the first round found and fixed the drift"
    assert sim.returns["R53"]["state"] == "COMPLETE"


async def test_a_recorded_commerce_override_is_reported_as_accepted_not_undone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The agent completed the return in Commerce (recorded as an override); Commerce is later
    restored from a backup taken before: the state is Commerce's word, reconcile does not push it."""
    async with CommerceSimulator() as sim:
        seed_commerce(sim, 54)
        db = tmp_path / "rf.db"
        async with serving(db, None, commerce_url=sim.url) as driver:
            await ship(driver, 54)
            await driver.webhook("return-request-update", return_with_order(54))
            await driver.act("/returns/R54/authorize", {"rma": "RMA54"})
            await wait_for(lambda: sim.returns["R54"].get("authorizationNumber") == "RMA54", 30, "RMA")
            backup = copy.deepcopy(sim.returns["R54"])
            sim.agent_set_state("R54", "COMPLETE")
            closed = return_with_order(
                54, authorization="RMA54", item_state="AWAITING_RETURN", modified_after=2000
            )
            closed["return"]["state"] = "COMPLETE"
            assert (await driver.webhook("return-request-update", closed))["status"] == "overridden"
        sim.returns["R54"] = backup
        puts = len(sim.puts())
        code, report = await reconcile(db, sim, capsys, "--id", "R54", "--fix")
        state = by_field(report)[("R54", "state")]
        assert (state["ours"], state["theirs"], state["verdict"], state["fixed"]) == (
            "COMPLETE",
            backup["state"],
            "accepted-override",
            False,
        )
        assert state["event"]["type"] == "ReturnRequest.CommerceOverridden"
        assert len(sim.puts()) == puts and code == 0


async def test_drift_the_sync_has_not_sent_yet_is_pending_and_left_to_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ledger has no record of the return's calls (the sync is behind): not re-driven."""
    async with CommerceSimulator() as sim:
        db = await completed(tmp_path, sim, 55)
        sim.agent_set_state("R55", "PENDING_REFUND")
        with contextlib.closing(sqlite3.connect(tmp_path / "rf.projections.db")) as connection:
            connection.execute("DELETE FROM rf_sync_ledger WHERE subject = 'R55'")
            connection.commit()
        puts = len(sim.puts())
        code, report = await reconcile(db, sim, capsys, "--fix")
        assert [(f["field"], f["verdict"], f["fixed"]) for f in report["findings"]] == [
            ("state", "pending", False)
        ]
        assert code == 0 and len(sim.puts()) == puts


async def test_the_table_names_both_values_and_the_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with CommerceSimulator() as sim:
        db = await completed(tmp_path, sim, 56)
        sim.agent_set_state("R56", "PENDING_REFUND")
        capsys.readouterr()
        argv = ["reconcile", "--store", f"sqlite:///{db}", "--commerce-url", sim.url]
        code = await asyncio.to_thread(main, [*argv, "--commerce-app-key", "sim-app-key"])
        table = capsys.readouterr().out.splitlines()
        assert code == 1
        assert table[0].split() == ["subject", "field", "ours", "theirs", "verdict", "set", "by", "fixed"]
        assert table[1].split()[:6] == [
            "R56",
            "state",
            "COMPLETE",
            "PENDING_REFUND",
            "drift",
            "ReturnRequest.RefundSettled",
        ]
        assert table[-1].startswith("run 1: 1 returns checked, 2 GETs")
        assert await asyncio.to_thread(main, ["reconcile", "--runs", "--store", f"sqlite:///{db}"]) == 0
        assert "run 1 " in capsys.readouterr().out
