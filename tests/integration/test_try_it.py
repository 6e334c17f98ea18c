"""The README's "Try it" flow on the example payloads, and Commerce data that does not add up.

Issue 13 item 8: the seed's originating order says returnedQuantity 2 of quantity 1, and the
refund was answered `already_returned['ci3000439'] must be an int >= 0, got -1`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from tests.conftest import RunningService
from tests.integration.test_operator_api import act, get, webhook

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def example(name: str) -> Any:
    return orjson.loads((EXAMPLES / name).read_bytes())


async def test_readme_flow_runs_through_refund_and_settle_without_overrides(service: RunningService) -> None:
    assert (await webhook(service, "order-submit", example("order-submit.json")))[0] == 200
    assert (await webhook(service, "return-request-update", example("return-request-update.json")))[0] == 200
    status, _ = await act(service, "/returns/100003/authorize", {"rma": "RMA-100003"})
    assert status == 200
    status, ret = await act(
        service,
        "/returns/100003/receive",
        {"items": [{"returnItemId": "100003", "quantity": 2}]},
        "warehouse",
    )
    assert (status, ret["state"]) == (200, "FULL_RETURN")
    status, ret = await act(service, "/returns/100003/refund", {"action": "initiate"}, "bob")
    assert status == 200, ret
    plan = ret["refundPlan"]
    # 2 of the 3 units Commerce priced at 30.00 (quantity says 1), their tax; shipping only
    # once the group is fully returned (the default policy)
    assert (plan["source"], plan["total"], plan["payments"]) == ("calculated", "63.75", {"pg30412": "63.75"})
    assert ret["state"] == "PENDING_REFUND"
    status, ret = await act(service, "/returns/100003/refund", {"action": "settle"}, "bob")
    assert (status, ret["state"]) == (200, "COMPLETE")
    order = await get(service, "/orders/o30430")
    assert order["paymentGroups"][0]["amountCredited"] == "63.75"


async def test_commerce_data_that_cannot_be_trusted_is_refused_in_words(service: RunningService) -> None:
    document = example("return-request-update.json")
    item = document["return"]["returnItemList"][0]
    item["quantityToReturn"] = 4
    assert (await webhook(service, "return-request-update", document))[0] == 200
    status, error = await act(service, "/returns/100003/refund", {"action": "initiate"})
    assert status == 409
    assert error["message"] == "ci3000439: returning 4 after 0 exceeds the 3 ordered"
    assert "int >= 0" not in error["message"]
