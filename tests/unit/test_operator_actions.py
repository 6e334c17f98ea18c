"""The console offers what the machines allow: nothing more, nothing less."""

from __future__ import annotations

from domain.operator_actions import allowed_actions


def test_allowed_actions_follow_the_machines() -> None:
    def view(state: str, item_state: str, received: int = 0, plan: object = None) -> dict[str, object]:
        return {
            "state": state,
            "refundPlan": plan,
            "returnItemList": [
                {
                    "returnItemId": "1",
                    "state": item_state,
                    "quantityToReturn": 2,
                    "quantityReceived": received,
                }
            ],
        }

    def names(v: dict[str, object]) -> set[str]:
        return {a.action for a in allowed_actions(v)}

    assert names(view("PENDING_CUSTOMER_ACTION", "INITIAL")) == {"authorize", "close"}
    assert names(view("PARTIAL_RETURN", "PARTIAL_RETURN", 1)) == {
        "receive",
        "refund_initiate",
        "refund_manual",
        "close",
    }
    assert names(view("PENDING_REFUND", "RETURNED", 2, {"payments": {}})) == {
        "refund_manual",
        "refund_settle",
    }
    assert names(view("COMPLETE", "RETURNED", 2)) == set()
