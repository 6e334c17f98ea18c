"""The Return Request Validation function webhook over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from service import validation
from service.config import Settings
from tests.commerce_sim.webhook_sender import sign
from tests.conftest import API_TOKEN, SECRET, RunningService, free_port, start_service
from tests.integration.test_operator_api import act, fresh_order, get, return_update, webhook


def question(context: str, quantity: int = 1, **request: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "orderId": "o20005",
        "returnItemList": [
            {
                "commerceItemId": "ci2000007",
                "shippingGroupId": "sg20005",
                "quantityToReturn": quantity,
                "productId": "prod20012",
                "nonreturnable": False,
            }
        ],
        **request,
    }
    return {"context": context, "returnRequests": [body]}


async def ship(service: RunningService) -> None:
    assert (await webhook(service, "order-submit", fresh_order()))[0] == 200
    assert (await act(service, "/orders/o20005/shipments", {"shippingGroupId": "sg20005"}))[0] == 200


async def history_length(service: RunningService) -> int:
    return len((await get(service, "/orders/o20005/history"))["events"])


async def test_answer_mirrors_the_request_with_verdicts(service: RunningService) -> None:
    await ship(service)
    status, answer = await webhook(service, "return-request-validation", question("Initiate_Return"))
    assert status == 200 and answer["context"] == "Initiate_Return"
    (request,) = answer["returnRequests"]
    (item,) = request["returnItemList"]
    assert item["productId"] == "prod20012", "request fields are mirrored"
    assert (item["nonreturnable"], item["quantityAvailable"], item["nonReturnableReason"]) == (False, 2, None)
    assert (request["nonreturnable"], request["orderId"]) == (False, "o20005")
    assert {"rma", "trackingNumber", "returnLabel", "additionalProperties"} <= set(request)


async def test_same_question_twice_records_once(service: RunningService) -> None:
    await ship(service)
    before = await history_length(service)
    for _ in range(3):
        await webhook(service, "return-request-validation", question("Initiate_Return"))
    assert await history_length(service) == before + 1


async def test_calculate_refund_reports_and_keeps_the_amounts(service: RunningService) -> None:
    await ship(service)
    await webhook(service, "return-request-validation", question("Initiate_Return"))
    _status, answer = await webhook(
        service, "return-request-validation", question("CalculateRefund_Return", 1)
    )
    extra = answer["returnRequests"][0]["additionalProperties"]
    assert (extra["itemRefund"], extra["refundTotal"], extra["refundPayments"]) == (
        "130.95",
        "130.95",
        "pg20005:130.95",
    )
    assert (
        answer["returnRequests"][0]["returnItemList"][0]["additionalProperties"]["refundAmount"] == "130.95"
    )
    events = (await get(service, "/orders/o20005/history"))["events"]
    assert events[-1]["refund_quote"]["refund_total"] == "130.95"
    assert events[-1]["cause"].startswith("sha256:")


async def test_submit_more_than_available_is_refused_and_records_nothing(
    service: RunningService,
) -> None:
    await ship(service)
    for context in ("Initiate_Return", "CalculateRefund_Return"):
        await webhook(service, "return-request-validation", question(context, 1))
    before = await history_length(service)
    status, answer = await webhook(service, "return-request-validation", question("Submit_Return", 3))
    request = answer["returnRequests"][0]
    assert status == 200 and request["nonreturnable"] is True
    assert "only 2 can be returned" in request["nonReturnableReason"]
    assert await history_length(service) == before


async def test_truncated_list_is_answered_from_the_stored_order(service: RunningService) -> None:
    await ship(service)
    body = {
        "context": "Initiate_Return",
        "returnRequests": [{"orderId": "o20005", "returnItemListIsTruncated": True, "returnItemList": []}],
    }
    _status, answer = await webhook(service, "return-request-validation", body)
    items = answer["returnRequests"][0]["returnItemList"]
    assert [i["commerceItemId"] for i in items] == ["ci2000007"]
    assert items[0]["quantityAvailable"] == 2


async def test_unknown_order_answers_not_found(service: RunningService) -> None:
    status, answer = await webhook(
        service,
        "return-request-validation",
        {
            "context": "Initiate_Return",
            "returnRequests": [
                {"orderId": "o-missing", "returnItemList": [{"commerceItemId": "x", "quantityToReturn": 1}]}
            ],
        },
    )
    request = answer["returnRequests"][0]
    assert status == 200 and request["nonreturnable"] is True
    assert request["additionalProperties"]["reasonCode"] == "NOT_FOUND"
    assert request["returnItemList"][0]["additionalProperties"]["reasonCode"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"context": "Refund_Everything", "returnRequests": [{"orderId": "o1"}]}, "$.context"),
        ({"returnRequests": [{"orderId": "o1"}]}, "$.context"),
        ({"context": "Initiate_Return", "returnRequests": []}, "$.returnRequests"),
        (
            {"context": "Initiate_Return", "returnRequests": [{"returnItemList": []}]},
            "$.returnRequests[0].orderId",
        ),
        (
            {
                "context": "Initiate_Return",
                "returnRequests": [
                    {"orderId": "o1", "returnItemList": [{"commerceItemId": "c", "quantityToReturn": -1}]}
                ],
            },
            "$.returnRequests[0].returnItemList[0].quantityToReturn",
        ),
    ],
)
async def test_bad_questions_are_400_errormodel(service: RunningService, body: Any, path: str) -> None:
    status, error = await webhook(service, "return-request-validation", body)
    assert status == 400 and error["o:errorPath"] == path
    assert service.events_stored() == 0


async def test_unsigned_question_is_401(service: RunningService) -> None:
    body = orjson.dumps(question("Initiate_Return"))
    forged = sign(body, "Zm9yZ2Vk", "sha512")
    async with service.http.post(
        service.url + "/webhooks/return-request-validation",
        data=body,
        headers={"X-Oracle-CC-WebHook-Signature": forged},
    ) as r:
        assert r.status == 401


@pytest.fixture
async def validator(service: RunningService) -> AsyncIterator[RunningService]:
    """A second process's worth (its own store, writer and caches) on the same SQLite file."""
    settings = Settings(
        store=service.store,
        webhook_secrets=(SECRET,),
        api_token=API_TOKEN,
        port=free_port(),
        role="validation",
    )
    runner, services = await start_service(settings)
    yield RunningService(f"http://127.0.0.1:{settings.port}", service.db_path, services, service.http)
    await runner.cleanup()


async def test_a_validation_process_beside_the_main_one_answers_from_its_latest_writes(
    service: RunningService,
    validator: RunningService,
) -> None:
    assert (await webhook(service, "order-submit", fresh_order()))[0] == 200
    status, answer = await webhook(validator, "return-request-validation", question("Initiate_Return"))
    (item,) = answer["returnRequests"][0]["returnItemList"]
    assert status == 200 and (item["nonreturnable"], item["quantityAvailable"]) == (True, 0)
    assert (await act(service, "/orders/o20005/shipments", {"shippingGroupId": "sg20005"}))[0] == 200
    status, answer = await webhook(validator, "return-request-validation", question("Initiate_Return"))
    (item,) = answer["returnRequests"][0]["returnItemList"]
    assert status == 200 and (item["nonreturnable"], item["quantityAvailable"]) == (False, 2), (
        "the shipment the other process stored is seen, not the cached unshipped order"
    )
    history = (await get(service, "/orders/o20005/history"))["events"]
    assert history[-1]["type"] == "Order.ContextValidated", "what the validator records, main sees"
    conflicts = service.services.writer.stats.conflicts
    assert (await webhook(service, "return-request-update", return_update("R1")))[0] == 200
    history = (await get(service, "/orders/o20005/history"))["events"]
    assert [e["type"] for e in history[-2:]] == ["Order.ContextValidated", "Order.ReturnLinked"]
    assert service.services.writer.stats.conflicts == conflicts, (
        "main saw the validator's write before deciding, instead of colliding with it"
    )


async def test_the_validation_role_serves_only_the_function_webhook(validator: RunningService) -> None:
    async with validator.http.post(f"{validator.url}/webhooks/order-submit", data=b"{}") as r:
        assert r.status == 404
    async with validator.http.get(f"{validator.url}/orders/o1", headers=validator.auth) as r:
        assert r.status == 404
    async with validator.http.get(f"{validator.url}/healthz") as r:
        assert r.status == 200
    assert validator.services.settings.role == "validation"


async def test_a_repeated_question_is_answered_from_memory_until_the_order_changes(
    service: RunningService,
) -> None:
    memo = service.services.answers
    await ship(service)
    first = await webhook(service, "return-request-validation", question("Initiate_Return"))
    judged = await webhook(service, "return-request-validation", question("Initiate_Return"))
    assert memo.hits == 0, "the first answer was recorded, the second judged (and remembered)"
    remembered = await webhook(service, "return-request-validation", question("Initiate_Return"))
    assert first == judged == remembered and memo.hits == 1
    assert (await webhook(service, "return-request-update", return_update("R1")))[0] == 200
    status, answer = await webhook(service, "return-request-validation", question("Initiate_Return"))
    (item,) = answer["returnRequests"][0]["returnItemList"]
    assert status == 200 and item["quantityAvailable"] == 0, "judged again on the linked return"
    assert memo.hits == 1


async def test_remembered_answers_expire_and_absences_are_not_remembered(
    service: RunningService,
) -> None:
    memo = service.services.answers
    status, answer = await webhook(service, "return-request-validation", question("Initiate_Return"))
    assert status == 200 and answer["returnRequests"][0]["nonreturnable"] is True
    await ship(service)
    status, answer = await webhook(service, "return-request-validation", question("Initiate_Return"))
    assert answer["returnRequests"][0]["nonreturnable"] is False, "an unknown order is not remembered"
    memo.ttl_s = 0.0
    await webhook(service, "return-request-validation", question("Initiate_Return"))
    await webhook(service, "return-request-validation", question("Initiate_Return"))
    assert memo.hits == 0


async def test_an_answer_is_given_again_only_until_the_moment_verdicts_may_change(
    service: RunningService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    memo = service.services.answers
    await ship(service)
    await webhook(service, "return-request-validation", question("Initiate_Return"))
    monkeypatch.setattr(validation, "verdicts_hold_until", lambda now: now)
    for _ in range(3):
        await webhook(service, "return-request-validation", question("Initiate_Return"))
    assert memo.hits == 0, "an answer that may change at once is judged every time"
    monkeypatch.setattr(validation, "verdicts_hold_until", lambda now: now + timedelta(days=1))
    for _ in range(3):
        await webhook(service, "return-request-validation", question("Initiate_Return"))
    assert memo.hits == 2


@pytest.fixture
async def issuing(tmp_path: Path, service: RunningService) -> AsyncIterator[RunningService]:
    """The same store answered under a policy (TOML file) that issues RMAs and label URLs."""
    policy = tmp_path / "policy.toml"
    policy.write_text(
        'issue_rma_on = ["Submit_Return"]\nrma_prefix = "WH-"\n'
        'return_label_url = "https://labels.test/{rma}.pdf"\n'
    )
    settings = Settings(
        store=service.store,
        webhook_secrets=(SECRET,),
        api_token=API_TOKEN,
        port=free_port(),
        policy_path=str(policy),
    )
    runner, services = await start_service(settings)
    yield RunningService(f"http://127.0.0.1:{settings.port}", service.db_path, services, service.http)
    await runner.cleanup()


async def test_submit_return_is_answered_with_the_policys_rma_and_label_and_records_them(
    issuing: RunningService,
) -> None:
    await ship(issuing)
    for context in ("Initiate_Return", "CalculateRefund_Return"):
        _status, answer = await webhook(issuing, "return-request-validation", question(context, 1))
        assert answer["returnRequests"][0]["rma"] is None
    for _ in range(2):
        status, answer = await webhook(issuing, "return-request-validation", question("Submit_Return", 1))
        request = answer["returnRequests"][0]
        assert status == 200 and request["nonreturnable"] is False
        assert (request["rma"], request["returnLabel"]) == (
            "WH-o20005-1",
            "https://labels.test/WH-o20005-1.pdf",
        )
    events = (await get(issuing, "/orders/o20005/history"))["events"]
    submitted = [e for e in events if e.get("answer", {}).get("context") == "Submit_Return"]
    assert len(submitted) == 1, "asked twice, recorded once"
    assert submitted[0]["answer"]["rma"] == "WH-o20005-1"
    refused = await webhook(issuing, "return-request-validation", question("Submit_Return", 5))
    assert refused[1]["returnRequests"][0]["rma"] is None, "no authorization for a refusal"


async def test_an_answer_about_an_authorized_return_repeats_its_rma_tracking_and_label(
    service: RunningService,
) -> None:
    await ship(service)
    assert (await webhook(service, "return-request-update", return_update("R1", quantity=1)))[0] == 200
    assert (
        await act(
            service,
            "/returns/R1/authorize",
            {"rma": "WH-9", "trackingNumber": "1Z999", "returnLabel": "https://carrier.test/9.pdf"},
        )
    )[0] == 200
    _status, answer = await webhook(
        service, "return-request-validation", question("Initiate_Return", 1, authorizationNumber="R1")
    )
    request = answer["returnRequests"][0]
    assert (request["rma"], request["trackingNumber"], request["returnLabel"]) == (
        "WH-9",
        "1Z999",
        "https://carrier.test/9.pdf",
    )
    _status, answer = await webhook(
        service,
        "return-request-validation",
        question("Initiate_Return", 1, authorizationNumber="R1", trackingNumber="COMMERCE-1"),
    )
    assert answer["returnRequests"][0]["trackingNumber"] == "COMMERCE-1", "Commerce's own wins"
