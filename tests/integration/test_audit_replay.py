"""Audit and replay over a real SQLite store built through the real HTTP path."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest

from domain.identity import order_uuid, return_uuid
from domain.orders import Order
from domain.returns import ReturnRequest
from projections.audit import NotFound, parse_time, timeline
from projections.positions import side_database
from projections.read_models import ReadModels, transition_row, transition_row_from_view
from projections.relay import Partition, read_page
from projections.replay import invariant_problems, rebuild
from service.cli import main
from service.store import EventStore, open_store
from tests.commerce_sim.server import CommerceSimulator
from tests.conftest import RunningService
from tests.e2e.scenario import commerce_done, seed_commerce, wait_for
from tests.e2e.test_sync_kafka import serving
from tests.integration.test_operator_api import act, get, return_update, shipped_order, webhook


def projections_db(db: Path) -> str:
    return side_database(f"sqlite:///{db}")


def live_position(db: Path) -> int:
    # closing: a connection left to the garbage collector closes (and checkpoints) at random
    with contextlib.closing(sqlite3.connect(projections_db(db))) as connection:
        row = connection.execute("SELECT position FROM rf_read_model_position").fetchone()
        return int(row[0]) if row else 0


def stored(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return int(connection.execute("SELECT MAX(rowid) FROM stored_events").fetchone()[0])


@pytest.fixture
async def store_db(tmp_path: Path) -> Path:
    db = tmp_path / "rf.db"
    async with CommerceSimulator() as sim:
        seed_commerce(sim, 1)
        async with serving(db, None, commerce_url=sim.url) as driver:
            await driver.full(1)
            await driver.order_and_return(2)
            await wait_for(lambda: commerce_done(sim, 1), 20, "Commerce calls")
            await wait_for(lambda: live_position(db) == stored(db), 20, "live read models")
    return db


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_clean_store_verifies(store_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "replay", "--verify", "--store", f"sqlite:///{store_db}")
    assert code == 0, out
    report = orjson.loads(out.splitlines()[0])
    assert report["problems"] == 0 and report["events"] == stored(store_db)
    assert "events/s" not in err, "no progress bar off a terminal (tests/unit/test_progress.py)"
    phases = report["phaseSeconds"]
    assert list(phases) == ["fold", "views", "swap"]
    assert all(took >= 0 for took in phases.values())
    assert sum(phases.values()) <= report["seconds"] + 0.002, "phases lie within the whole"


def test_a_corrupted_row_is_reported_exactly(store_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with sqlite3.connect(projections_db(store_db)) as connection:
        connection.execute(
            "UPDATE rf_return_view SET document = ? WHERE id = 'R1'",
            (orjson.dumps({"state": "PENDING_CUSTOMER_ACTION"}),),
        )
    code, out, _ = run(capsys, "replay", "--verify", "--store", f"sqlite:///{store_db}")
    assert code == 1
    mismatches = [line for line in out.splitlines() if line.startswith("MISMATCH")]
    assert mismatches == ["MISMATCH rf_return_view id=R1: live row differs from the rebuilt one"]
    assert run(capsys, "replay", "--store", f"sqlite:///{store_db}")[0] == 0
    assert run(capsys, "replay", "--verify", "--store", f"sqlite:///{store_db}")[0] == 0


def test_replaying_twice_gives_byte_identical_exports(
    store_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{store_db}"
    outputs = []
    for n, fmt in enumerate(["csv", "csv", "jsonl", "jsonl"]):
        assert run(capsys, "replay", "--store", url)[0] == 0
        target = tmp_path / f"export{n}.{fmt}"
        assert run(capsys, "audit", "--all", "--format", fmt, "--output", str(target), "--store", url)[0] == 0
        outputs.append(target.read_bytes())
    assert outputs[0] == outputs[1] and outputs[2] == outputs[3]
    header = outputs[0].decode().splitlines()[0]
    assert header == (
        "notification_id,kind,subject,version,time,type,trigger,from_state,to_state,"
        "actor,cause,quantities,amounts"
    )
    assert len(outputs[0].decode().splitlines()) == stored(store_db) + 1


def test_export_window(store_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "audit",
        "--all",
        "--format",
        "jsonl",
        "--since",
        "2999-01-01T00:00:00Z",
        "--store",
        f"sqlite:///{store_db}",
    )
    assert code == 0 and out == ""


def test_audit_of_a_return_shows_timeline_calls_and_state(
    store_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{store_db}"
    code, out, _ = run(capsys, "audit", "R1", "--store", url)
    assert code == 0
    assert "return R1 (version 6)" in out
    assert "ItemsReceived" in out and "PARTIAL_RETURN -> FULL_RETURN" in out
    assert "operator:e2e" in out and "commerce-webhook" in out
    assert "PUT /ccadmin/v1/returnRequests/R1  -> 200" in out
    assert "state COMPLETE" in out and "refund 268.40 USD" in out
    code, out, _ = run(capsys, "audit", "R1", "--version", "3", "--format", "json", "--store", url)
    document = orjson.loads(out)
    assert (document["version"], document["state"]["state"]) == (3, "PARTIAL_RETURN")
    assert [e["version"] for e in document["events"]] == [1, 2, 3]
    first_time = document["events"][0]["time"]
    code, out, _ = run(capsys, "audit", "R1", "--as-of", first_time, "--format", "json", "--store", url)
    assert orjson.loads(out)["state"]["state"] == "PENDING_CUSTOMER_ACTION"
    code, out, _ = run(capsys, "audit", "R1", "--format", "csv", "--store", url)
    assert out.splitlines()[0].startswith("kind,subject,version,time,type,trigger")
    assert len(out.splitlines()) == 7


def test_audit_of_an_order_and_of_nothing(store_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{store_db}"
    code, out, _ = run(capsys, "audit", "o1", "--store", url)
    assert code == 0 and "payment pg20005 (tokenizedCreditCard): paid 297.50, credited 268.40" in out
    code, _, err = run(capsys, "audit", "nope", "--store", url)
    assert code == 1 and "no return or order nope" in err


async def test_history_as_of_is_the_audit_as_of(
    service: RunningService, capsys: pytest.CaptureFixture[str]
) -> None:
    """`GET …/history?as_of=T` and `returnflow audit --as-of T` cut the history at the same event."""
    await shipped_order(service)
    assert (await webhook(service, "return-request-update", return_update("R1")))[0] == 200
    await act(service, "/returns/R1/authorize", {"rma": "RMA-1"})
    for _ in range(2):
        await act(service, "/returns/R1/receive", {"items": [{"returnItemId": "R1-1", "quantity": 1}]})
    events = (await get(service, "/returns/R1/history"))["events"]
    assert [e["version"] for e in events] == [1, 2, 3, 4]
    where = ["--store", service.store, "--projections", service.services.settings.projections_database]
    for event in events:
        cut = (await get(service, f"/returns/R1/history?as_of={quote(event['time'])}"))["events"]
        line = timeline(service.services.store, "R1", as_of=parse_time(event["time"]))
        assert cut == line.events == events[: event["version"]]
        code, out, _ = run(capsys, "audit", "R1", "--as-of", event["time"], "--format", "json", *where)
        document = orjson.loads(out)
        assert (code, document["version"], document["events"]) == (0, event["version"], cut)
    naive = events[1]["time"].removesuffix("Z")
    assert [e["version"] for e in (await get(service, f"/returns/R1/history?as_of={naive}"))["events"]] == [
        1,
        2,
    ], "a time without a zone is UTC, as in the audit"
    assert timeline(service.services.store, "R1", as_of=parse_time(naive)).version == 2
    before = "2000-01-01T00:00:00Z"
    assert (await get(service, f"/returns/R1/history?as_of={before}"))["events"] == []
    with pytest.raises(NotFound):
        timeline(service.services.store, "R1", as_of=parse_time(before))
    async with service.http.get(
        f"{service.url}/returns/R1/history?as_of=yesterday", headers=service.auth
    ) as response:
        assert response.status == 400
        assert (await response.json())["o:errorPath"] == "as_of"


def test_invariants_name_each_broken_aggregate(store_db: Path) -> None:
    store = open_store(f"sqlite:///{store_db}")
    scratch = ReadModels(":memory:")
    try:
        folded = rebuild(store, scratch).aggregates
    finally:
        scratch.close()
        store.close()
    assert invariant_problems(folded) == []
    ret = folded[return_uuid("R1")]
    order = folded[order_uuid("o1")]
    assert isinstance(ret, ReturnRequest) and isinstance(order, Order)
    ret.items[0]["quantityReceived"] = ret.items[0]["quantityToReturn"] + 1
    assert ret.refund_plan is not None
    group = next(iter(ret.refund_plan["payments"]))
    ret.refund_plan["payments"][group] = "9999.00"
    order.credited[group] = "9999.00"
    problems = sorted(invariant_problems(folded))
    assert [p.split(":")[0] for p in problems] == ["order o1 v7"] + ["return R1 v6"] * 3, problems
    assert "credited 9999.00" in problems[0] and "which paid" in problems[0]
    assert any("received 3 of 2" in p for p in problems[1:])
    assert any("!= refund total" in p for p in problems[1:])
    assert any("refunds 9999.00" in p and "which paid" in p for p in problems[1:])


def test_fast_transition_rows_equal_the_rows_defined_by_the_event_view(store_db: Path) -> None:
    store = open_store(f"sqlite:///{store_db}")
    try:
        folded: dict[object, object] = {}
        rows = 0
        for notification_id, event in read_page(store, 0, 10_000):
            aggregate = event.mutate(folded.get(event.originator_id))  # type: ignore[attr-defined]
            folded[event.originator_id] = aggregate
            assert transition_row(notification_id, event, aggregate) == transition_row_from_view(
                notification_id, event, aggregate
            ), type(event).__qualname__
            rows += 1
        assert rows == stored(store_db)
    finally:
        store.close()


def test_projections_can_live_in_a_file_of_their_own(
    store_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """RETURNFLOW_PROJECTIONS / --projections: e.g. a volume several containers share."""
    elsewhere = tmp_path / "shared" / "projections.db"
    elsewhere.parent.mkdir()
    default_before = Path(projections_db(store_db)).read_bytes()
    url = f"sqlite:///{store_db}"
    assert run(capsys, "replay", "--store", url, "--projections", str(elsewhere))[0] == 0
    with sqlite3.connect(elsewhere) as connection:
        rows = connection.execute("SELECT COUNT(*) FROM rf_transitions").fetchone()[0]
    assert rows == stored(store_db)
    assert Path(projections_db(store_db)).read_bytes() == default_before, "default left alone"
    assert run(capsys, "replay", "--verify", "--store", url, "--projections", str(elsewhere))[0] == 0


def read_models_of(db: Path) -> dict[str, list[tuple[object, ...]]]:
    models = ReadModels(projections_db(db))
    try:
        tables = ("rf_order_view", "rf_return_view", "rf_transitions")
        return {t: list(models.rows(t)) for t in tables} | {"position": [(models.position(),)]}
    finally:
        models.close()


def test_a_parallel_rebuild_gives_the_read_models_of_one_process(
    store_db: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"sqlite:///{store_db}"
    assert run(capsys, "replay", "--workers", "1", "--store", url)[0] == 0
    alone = read_models_of(store_db)
    code, out, err = run(capsys, "replay", "--workers", "3", "--store", url)
    report = orjson.loads(out)
    assert code == 0 and (report["workers"], report["events"]) == (3, stored(store_db))
    assert list(report["phaseSeconds"]) == ["fold", "merge", "swap"]
    assert sum(report["phaseSeconds"].values()) <= report["seconds"] + 0.002
    assert report["aggregates"] == len(alone["rf_order_view"]) + len(alone["rf_return_view"])
    assert "events/s" not in err, "no progress bar off a terminal"
    assert read_models_of(store_db) == alone
    assert run(capsys, "replay", "--verify", "--store", url)[0] == 0


def test_partitions_cover_every_event_once_up_to_their_bound(store_db: Path) -> None:
    store = open_store(f"sqlite:///{store_db}")
    try:
        until = stored(store_db) - 3
        seen = []
        for low, high in (("0", "5"), ("5", "a"), ("a", "g")):
            position = 0
            while page := read_page(store, position, 4, Partition(low, high, until)):
                assert all(low <= event.originator_id.hex < high for _, event in page)
                seen += [notification_id for notification_id, _ in page]
                position = page[-1][0]
    finally:
        store.close()
    assert sorted(seen) == list(range(1, until + 1))


def unreachable_store() -> EventStore:
    raise RuntimeError("store unreachable")


def test_a_failing_worker_fails_the_replay_and_leaves_the_live_models(store_db: Path) -> None:
    before = read_models_of(store_db)
    store = open_store(f"sqlite:///{store_db}")
    live = ReadModels(projections_db(store_db))
    try:
        with pytest.raises(RuntimeError, match="store unreachable"):
            rebuild(store, live, workers=2, reopen=unreachable_store)
    finally:
        live.close()
        store.close()
    assert read_models_of(store_db) == before


async def test_a_commerce_override_is_shown_by_the_audit(
    service: RunningService, capsys: pytest.CaptureFixture[str]
) -> None:
    await shipped_order(service)
    assert (await webhook(service, "return-request-update", return_update("R1")))[0] == 200
    completed = return_update("R1")
    completed["return"]["state"] = "COMPLETE"
    completed["return"]["lastModifiedTime"] = 2
    status, answer = await webhook(service, "return-request-update", completed)
    assert (status, answer["status"]) == (200, "overridden")
    code, out, _ = run(
        capsys,
        "audit",
        "R1",
        "--store",
        service.store,
        "--projections",
        service.services.settings.projections_database,
    )
    assert code == 0
    assert "CommerceOverridden  commerce_override  PENDING_CUSTOMER_ACTION -> COMPLETE" in out
    assert "Commerce overrides (Commerce's word stands):" in out
    assert "v2  PENDING_CUSTOMER_ACTION -> COMPLETE: Commerce reported a change" in out
    store = open_store(service.store)
    try:
        folded: dict[object, object] = {}
        for notification_id, event in read_page(store, 0, 100):
            aggregate = event.mutate(folded.get(event.originator_id))  # type: ignore[attr-defined]
            folded[event.originator_id] = aggregate
            assert transition_row(notification_id, event, aggregate) == transition_row_from_view(
                notification_id, event, aggregate
            )
    finally:
        store.close()
