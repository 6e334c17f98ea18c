"""The projector on its own: coalescing, dedupe and dead letters, with a fake Commerce."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from projections.sync import CommerceProjector, LoggedOutcome, SyncLedger


class FakeCommerce:
    """Answers from a script; records what it was sent."""

    def __init__(self, outcome: LoggedOutcome) -> None:
        self.outcome = outcome
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def update_return_request(self, return_id: str, body: dict[str, Any]) -> LoggedOutcome:
        self.sent.append((return_id, body))
        return self.outcome

    async def update_order(self, order_id: str, body: dict[str, Any]) -> LoggedOutcome:
        self.sent.append((order_id, body))
        return self.outcome


def message(version: int, state: str, received: int) -> dict[str, Any]:
    return {
        "id": f"x:{version}",
        "time": "2026-11-24T10:00:00Z",
        "data": {
            "event": {"type": "ReturnRequest.ItemsReceived", "trigger": "receive", "version": version},
            "state": {
                "id": "R9",
                "state": state,
                "returnItemList": [
                    {
                        "returnItemId": "R9-1",
                        "commerceItemId": "c",
                        "state": "PARTIAL_RETURN",
                        "quantityToReturn": 2,
                        "quantityReceived": received,
                    }
                ],
            },
        },
    }


async def test_a_burst_becomes_one_call_and_replays_are_skipped(tmp_path: Path) -> None:
    commerce = FakeCommerce(LoggedOutcome(status=200, attempts=1))
    ledger = SyncLedger(str(tmp_path / "p.db"))
    projector = CommerceProjector(commerce, ledger)
    await projector.project([message(3, "PARTIAL_RETURN", 1), message(4, "FULL_RETURN", 2)])
    assert [(i, b["state"]) for i, b in commerce.sent] == [("R9", "FULL_RETURN")]
    await projector.project([message(3, "PARTIAL_RETURN", 1), message(4, "FULL_RETURN", 2)])
    assert len(commerce.sent) == 1, "already applied versions are not sent again"
    assert [c["status"] for c in ledger.calls_for("R9")] == [200]
    ledger.close()


async def test_dead_letters_carry_the_reason_and_no_card_data(tmp_path: Path) -> None:
    refused = LoggedOutcome(
        status=400,
        attempts=1,
        ok=False,
        dead_letter_reason="commerce refused: 400 X",
        response={"paymentGroups": [{"id": "pg", "token": "4111111111111111"}]},
    )
    commerce = FakeCommerce(refused)
    letters: list[dict[str, Any]] = []

    async def dead_letter(record: dict[str, Any]) -> None:
        letters.append(record)

    ledger = SyncLedger(str(tmp_path / "p.db"))
    await CommerceProjector(commerce, ledger, dead_letter).project([message(2, "PARTIAL_RETURN", 1)])
    (letter,) = letters
    assert letter["reason"] == "commerce refused: 400 X" and letter["status"] == 400
    assert "4111111111111111" not in str(letter)
    assert ledger.calls_for("R9")[0]["reason"] == "commerce refused: 400 X"
    ledger.close()


def refund_message(version: int) -> dict[str, Any]:
    plan = {
        "total": "10.00",
        "payments": {"pg": "10.00"},
        "manualReasons": [],
        "calculation": {
            "items": [],
            "tax_total": "1.00",
            "shipping_total": "2.00",
            "shipping_tax_total": "0.50",
            "surcharge_total": "0.00",
            "fee": "0.00",
        },
    }
    document = message(version, "PENDING_REFUND", 2)
    document["data"]["event"].update(type="ReturnRequest.RefundStep", trigger="initiate_refund")
    document["data"]["state"]["refundPlan"] = plan
    return document


async def test_op_flavour_sends_one_returns_operations_in_event_order(tmp_path: Path) -> None:
    """A burst keeps every operation (an op is not an absolute state) and their order."""
    commerce = FakeCommerce(LoggedOutcome(status=200, attempts=1))
    ledger = SyncLedger(str(tmp_path / "p.db"))
    projector = CommerceProjector(commerce, ledger, flavour="op")
    await projector.project(
        [message(3, "PARTIAL_RETURN", 1), message(4, "FULL_RETURN", 2), refund_message(5)]
    )
    assert [b["op"] for _, b in commerce.sent] == ["receiveReturns", "adjustRefundAmounts", "initiateRefund"]
    assert commerce.sent[0][1]["returnItems"][0]["quantityReceived"] == 2, "the latest receipt"
    await projector.project([refund_message(5)])
    assert len(commerce.sent) == 3, "applied operations are not sent again"
    ledger.close()
