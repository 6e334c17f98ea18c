"""Credits are applied on a 2xx, kept per return and payment group in the sync ledger, and a
crash between Commerce's 2xx and the ledger write credits nothing twice (issue 21, SPEC
section 8). On SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from projections.commerce_client import CommerceClient
from projections.positions import side_database
from projections.sync import CommerceProjector, SyncLedger
from tests.commerce_sim.server import CommerceSimulator

D = Decimal


@pytest.fixture
def projections(store_url: str) -> str:
    return side_database(store_url)


def credited(version: int, credits: dict[str, dict[str, str]]) -> dict[str, Any]:
    """An Order.Credited CloudEvent as the relay ships it: the order view after the event."""
    return {
        "id": f"o1:{version}",
        "time": "2026-12-03T10:00:00Z",
        "data": {
            "event": {"type": "Order.Credited", "trigger": "credit", "version": version},
            "state": {
                "id": "o1",
                "state": "NO_PENDING_ACTION",
                "currency": "USD",
                "paymentGroups": [
                    {"id": "pg1", "amountCredited": "0.00"},
                    {"id": "pg2", "amountCredited": "0"},
                ],
                "creditsByReturn": credits,
            },
        },
    }


def seed(sim: CommerceSimulator) -> None:
    sim.seed_order(
        {
            "id": "o1",
            "state": "NO_PENDING_ACTION",
            "paymentGroups": [{"id": "pg1", "amountCredited": 0}, {"id": "pg2", "amountCredited": 0}],
        }
    )


async def test_a_crash_after_the_2xx_does_not_credit_twice(
    projections: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with CommerceSimulator() as sim:
        seed(sim)
        ledger = SyncLedger(projections)
        async with CommerceClient(sim.url, sim.app_key) as client:
            projector = CommerceProjector(client, ledger)

            def crash(*_: Any) -> None:
                raise SystemError("the process died after Commerce's 2xx")

            monkeypatch.setattr(ledger.credits, "confirm", crash)
            with pytest.raises(SystemError):
                await projector.project([credited(5, {"R1": {"pg1": "40.00"}})])
            assert sim.orders["o1"]["paymentGroups"][0]["amountCredited"] == 40.0
            sim.agent_credit("o1", "pg2", 2.5)
            monkeypatch.undo()
            restarted = CommerceProjector(client, ledger)
            await restarted.project([credited(5, {"R1": {"pg1": "40.00"}})])
            assert sim.orders["o1"]["paymentGroups"][0]["amountCredited"] == 40.0, "not credited twice"
            sim.agent_credit("o1", "pg1", 5.0)
            await restarted.project([credited(6, {"R1": {"pg1": "40.00"}, "R2": {"pg1": "10.00"}})])
        groups = {g["id"]: g["amountCredited"] for g in sim.orders["o1"]["paymentGroups"]}
        assert groups == {"pg1": 55.0, "pg2": 2.5}, "the agent's credits plus ours"
        assert ledger.credits.applied("o1") == {("R1", "pg1"): D("40.00"), ("R2", "pg1"): D("10.00")}
        ledger.close()
