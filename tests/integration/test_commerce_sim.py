"""The Commerce simulator behaves like Commerce's Admin API (and the webhook sender like its webhooks).

Everything goes over real loopback HTTP with a plain aiohttp client, so these tests pin the
simulator's own semantics independently of Returnflow's client.
"""

from __future__ import annotations

import asyncio
import base64
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
from aiohttp import ClientConnectionError, ClientSession, web
from aiohttp.test_utils import TestClient, TestServer

from service.signatures import SignatureVerifier
from tests.commerce_sim import CommerceSimulator, WebhookSender, create_app, sign
from tests.commerce_sim.agent import Agent
from tests.commerce_sim.documents import ORDER_STATES, RETURN_STATES
from tests.commerce_sim.rules import return_item_key as rules_key
from tests.commerce_sim.seeds import seed_order_submit, seed_return_request_update
from tests.commerce_sim.server import SIMULATOR_KEY
from tests.commerce_sim.webhook_sender import SIGNATURE_HEADER, SIGNATURE_HEADER_SHA512, Algo
from tests.conftest import SECRET, RunningService
from tests.integration.test_operator_api import get as operator_get

KEY = "app-key"
ORDER: dict[str, Any] = {
    "id": "o1",
    "state": "SUBMITTED",
    "priceInfo": {"total": 100},
    "paymentGroups": [
        {"id": "pg1", "paymentMethod": "creditCard", "amount": 80, "amountCredited": 0},
        {"id": "pg2", "paymentMethod": "giftCard", "amount": 20, "amountCredited": 0},
    ],
    "shippingGroups": [{"id": "sg1", "state": "INITIAL"}],
}
RETURN: dict[str, Any] = {
    "authorizationNumber": "100003",
    "state": "PENDING_CUSTOMER_ACTION",
    "additionalProperties": {"a": "1", "b": "2"},
    "refundMethodList": [{"refundType": "creditCard", "amount": 10, "maximumRefundAmount": -1}],
    "returnItemList": [
        {
            "id": "ri1",
            "commerceItemId": "ci1",
            "shippingGroupId": "sg1",
            "state": "INITIAL",
            "quantityToReturn": 1,
            "returnReason": "defective",
        },
        {
            "id": "ri2",
            "commerceItemId": "ci2",
            "shippingGroupId": "sg1",
            "state": "INITIAL",
            "quantityToReturn": 2,
            "returnReason": "incorrectSize",
        },
    ],
}


@pytest.fixture
async def sim() -> AsyncIterator[CommerceSimulator]:
    async with CommerceSimulator(app_key=KEY) as simulator:
        simulator.seed_order(ORDER)
        simulator.seed_return(RETURN)
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession() as session:
        yield session


async def login(http: ClientSession, sim: CommerceSimulator, key: str = KEY) -> tuple[int, Any]:
    async with http.post(
        f"{sim.url}/ccadmin/v1/login",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Bearer {key}"},
    ) as response:
        return response.status, await response.json()


async def token(http: ClientSession, sim: CommerceSimulator) -> str:
    status, body = await login(http, sim)
    assert status == 200
    return str(body["access_token"])


async def call(
    http: ClientSession,
    sim: CommerceSimulator,
    method: str,
    path: str,
    bearer: str,
    body: Any = None,
    raw: bytes | None = None,
) -> tuple[int, Any, Any]:
    data = raw if raw is not None else (None if body is None else orjson.dumps(body))
    async with http.request(
        method,
        sim.url + path,
        data=data,
        headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"},
    ) as response:
        return response.status, await response.json(content_type=None), response.headers


def assert_error_model(body: Any, status: int) -> None:
    assert set(body) >= {"errorCode", "message", "status"}
    assert body["status"] == str(status) and isinstance(body["errorCode"], str) and body["message"]


# --- authentication ---------------------------------------------------------------------------------


async def test_login_returns_a_bearer_token(sim: CommerceSimulator, http: ClientSession) -> None:
    status, body = await login(http, sim)
    assert status == 200
    assert body["token_type"] == "bearer" and body["expires_in"] == 300 and body["access_token"]
    assert sim.logins == 1
    assert sim.calls[-1].body == {"grant_type": "client_credentials"}


async def test_wrong_app_key_is_401_error_model(sim: CommerceSimulator, http: ClientSession) -> None:
    status, body = await login(http, sim, key="not-the-key")
    assert status == 401
    assert_error_model(body, 401)
    assert sim.logins == 0


async def test_login_needs_client_credentials_grant(sim: CommerceSimulator, http: ClientSession) -> None:
    async with http.post(
        f"{sim.url}/ccadmin/v1/login",
        data={"grant_type": "password"},
        headers={"Authorization": f"Bearer {KEY}"},
    ) as response:
        assert response.status == 400
        assert_error_model(await response.json(), 400)


async def test_missing_unknown_and_expired_tokens_get_401(
    sim: CommerceSimulator, http: ClientSession
) -> None:
    sim.token_ttl_s = 0.2
    status, body = await login(http, sim)
    assert body["expires_in"] == 0.2
    bearer = body["access_token"]
    assert (await call(http, sim, "GET", "/ccadmin/v1/orders/o1", bearer))[0] == 200
    for bad in ("", "made-up"):
        status, error, _ = await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bad, {"state": "X"})
        assert status == 401
        assert_error_model(error, 401)
    await asyncio.sleep(0.3)
    for method in ("GET", "PUT"):
        status, error, _ = await call(http, sim, method, "/ccadmin/v1/orders/o1", bearer, {"state": "X"})
        assert status == 401
    assert sim.orders["o1"]["state"] == "SUBMITTED"


async def test_refresh_issues_a_new_working_token(sim: CommerceSimulator, http: ClientSession) -> None:
    old = await token(http, sim)
    async with http.post(
        f"{sim.url}/ccadmin/v1/refresh", headers={"Authorization": f"Bearer {old}"}
    ) as response:
        assert response.status == 200
        body = await response.json()
    assert body["access_token"] != old and body["token_type"] == "bearer"
    status, _, _ = await call(
        http, sim, "PUT", "/ccadmin/v1/orders/o1", body["access_token"], {"state": "PROCESSING"}
    )
    assert status == 200 and sim.refreshes == 1


async def test_refresh_with_an_expired_token_is_401(sim: CommerceSimulator, http: ClientSession) -> None:
    old = await token(http, sim)
    sim.expire_tokens()
    async with http.post(
        f"{sim.url}/ccadmin/v1/refresh", headers={"Authorization": f"Bearer {old}"}
    ) as response:
        assert response.status == 401
        assert_error_model(await response.json(), 401)


# --- PUT semantics ----------------------------------------------------------------------------------


async def test_scalars_overwrite_and_omitted_properties_stay(
    sim: CommerceSimulator, http: ClientSession
) -> None:
    bearer = await token(http, sim)
    status, body, _ = await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, {"state": "PROCESSING"})
    assert status == 200 and body == {**ORDER, "state": "PROCESSING"}
    assert sim.order("o1") == body


async def test_payment_group_left_out_is_deleted(sim: CommerceSimulator, http: ClientSession) -> None:
    """The classic mistake: crediting one payment group in a body that omits the other."""
    bearer = await token(http, sim)
    await call(
        http,
        sim,
        "PUT",
        "/ccadmin/v1/orders/o1",
        bearer,
        {"paymentGroups": [{"id": "pg1", "amountCredited": 80.41}]},
    )
    groups = sim.orders["o1"]["paymentGroups"]
    assert groups == [{"id": "pg1", "paymentMethod": "creditCard", "amount": 80, "amountCredited": 80.41}]
    assert sim.orders["o1"]["shippingGroups"] == ORDER["shippingGroups"], "lists not sent are untouched"


async def test_every_member_sent_keeps_every_member(sim: CommerceSimulator, http: ClientSession) -> None:
    bearer = await token(http, sim)
    await call(
        http,
        sim,
        "PUT",
        "/ccadmin/v1/orders/o1",
        bearer,
        {"paymentGroups": [{"id": "pg2"}, {"id": "pg1", "amountCredited": 5}]},
    )
    assert sim.orders["o1"]["paymentGroups"] == [
        ORDER["paymentGroups"][1],
        {**ORDER["paymentGroups"][0], "amountCredited": 5},
    ]


async def test_unmatched_member_is_created(sim: CommerceSimulator, http: ClientSession) -> None:
    bearer = await token(http, sim)
    await call(
        http,
        sim,
        "PUT",
        "/ccadmin/v1/orders/o1",
        bearer,
        {"shippingGroups": [{"id": "sg1"}, {"id": "sg2", "state": "INITIAL"}]},
    )
    assert sim.orders["o1"]["shippingGroups"] == [
        {"id": "sg1", "state": "INITIAL"},
        {"id": "sg2", "state": "INITIAL"},
    ]


async def test_empty_list_deletes_all_members(sim: CommerceSimulator, http: ClientSession) -> None:
    bearer = await token(http, sim)
    await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, {"shippingGroups": []})
    assert sim.orders["o1"]["shippingGroups"] == []
    assert len(sim.orders["o1"]["paymentGroups"]) == 2


async def test_return_items_match_by_commerce_item_and_shipping_group(
    sim: CommerceSimulator, http: ClientSession
) -> None:
    """seed oms-integration-overview.txt:411,414: a member is the commerce item in its group."""
    bearer = await token(http, sim)
    status, body, _ = await call(
        http,
        sim,
        "PUT",
        "/ccadmin/v1/returnRequests/100003",
        bearer,
        {
            "state": "PARTIAL_RETURN",
            "returnItemList": [
                {
                    "commerceItemId": "ci1",
                    "shippingGroupId": "sg1",
                    "state": "RETURNED",
                    "quantityReceived": 1,
                },
                {"commerceItemId": "ci2", "shippingGroupId": "sg1", "state": "AWAITING_RETURN"},
            ],
            "refundMethodList": [{"refundType": "creditCard", "amount": 49.99}],
        },
    )
    assert status == 200
    first, second = body["returnItemList"]
    assert (first["id"], first["state"], first["quantityReceived"], first["returnReason"]) == (
        "ri1",
        "RETURNED",
        1,
        "defective",
    )
    assert (second["id"], second["state"], second["quantityToReturn"]) == ("ri2", "AWAITING_RETURN", 2)
    assert body["refundMethodList"] == [
        {"refundType": "creditCard", "amount": 49.99, "maximumRefundAmount": -1}
    ]


async def test_a_member_in_another_shipping_group_is_a_new_member(
    sim: CommerceSimulator, http: ClientSession
) -> None:
    bearer = await token(http, sim)
    await call(
        http,
        sim,
        "PUT",
        "/ccadmin/v1/returnRequests/100003",
        bearer,
        {
            "returnItemList": [
                {"commerceItemId": "ci1", "shippingGroupId": "sg9", "state": "RETURNED"},
                {"commerceItemId": "ci2", "shippingGroupId": "sg1"},
            ]
        },
    )
    items = sim.returns["100003"]["returnItemList"]
    assert [i.get("id") for i in items] == [None, "ri2"], "ri1 was replaced by a new member"
    assert "returnReason" not in items[0]


@pytest.mark.parametrize(
    "body",
    [
        {"rma": "RMA1"},
        {"totalRefundAmount": 10},
        {"returnItemList": [{"id": "ri1", "state": "RETURNED"}]},
        {"returnItemList": [{"commerceItemId": "ci1", "shippingGroupId": "sg1", "quantityToReturn": 1}]},
        {"refundMethodList": [{"refundType": "manualRefund", "amount": 1, "paymentGroupId": "pg1"}]},
        {"additionalProperties": {"a": 1}},
        {"op": "receiveReturns"},
    ],
)
async def test_a_field_the_documented_body_lacks_is_refused(
    sim: CommerceSimulator, http: ClientSession, body: Any
) -> None:
    bearer = await token(http, sim)
    before = sim.return_request("100003")
    status, answer, _ = await call(http, sim, "PUT", "/ccadmin/v1/returnRequests/100003", bearer, body)
    assert status == 400
    assert_error_model(answer, 400)
    assert "$." in answer["message"]
    assert sim.return_request("100003") == before


@pytest.mark.parametrize(
    "body",
    [
        {"priceInfo": {"total": 1}},
        {"paymentGroups": [{"id": "pg1", "amount": 1}]},
        {"shippingGroups": [{"id": "sg1", "items": []}]},
    ],
)
async def test_an_order_field_outside_the_contract_is_refused(
    sim: CommerceSimulator, http: ClientSession, body: Any
) -> None:
    bearer = await token(http, sim)
    status, _, _ = await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, body)
    assert status == 400
    assert sim.order("o1") == ORDER


async def test_refund_methods_match_by_type_and_rank(sim: CommerceSimulator, http: ClientSession) -> None:
    """A1: refundType is the only documented key of a method; the n-th of a type is the n-th held."""
    for amount in (0, 1):
        sim.agent_add_refund_method(
            "100003",
            {
                "refundType": "manualRefund",
                "amount": amount,
                "state": "INCOMPLETE",
                "maximumRefundAmount": -1,
            },
        )
    bearer = await token(http, sim)
    status, _, _ = await call(
        http,
        sim,
        "PUT",
        "/ccadmin/v1/returnRequests/100003",
        bearer,
        {
            "refundMethodList": [
                {"refundType": "manualRefund", "amount": 7},
                {"refundType": "creditCard", "amount": 5},
                {"refundType": "manualRefund", "amount": 8},
            ]
        },
    )
    assert status == 200
    assert sim.returns["100003"]["refundMethodList"] == [
        {"refundType": "manualRefund", "amount": 7, "state": "INCOMPLETE", "maximumRefundAmount": -1},
        {"refundType": "creditCard", "amount": 5, "maximumRefundAmount": -1},
        {"refundType": "manualRefund", "amount": 8, "state": "INCOMPLETE", "maximumRefundAmount": -1},
    ]


async def test_return_item_left_out_is_deleted(sim: CommerceSimulator, http: ClientSession) -> None:
    bearer = await token(http, sim)
    await call(
        http,
        sim,
        "PUT",
        "/ccadmin/v1/returnRequests/100003",
        bearer,
        {
            "returnItemList": [
                {"commerceItemId": "ci2", "shippingGroupId": "sg1", "state": "AWAITING_RETURN"}
            ],
            "refundMethodList": [],
        },
    )
    assert [i["id"] for i in sim.returns["100003"]["returnItemList"]] == ["ri2"]
    assert sim.returns["100003"]["refundMethodList"] == []


async def test_agent_edits_are_what_commerce_then_holds(sim: CommerceSimulator, http: ClientSession) -> None:
    sim.agent_credit("o1", "pg1", 5.0)
    sim.agent_set_state("100003", "MANUAL_REFUND")
    bearer = await token(http, sim)
    _, order, _ = await call(http, sim, "GET", "/ccadmin/v1/orders/o1", bearer)
    _, ret, _ = await call(http, sim, "GET", "/ccadmin/v1/returnRequests/100003", bearer)
    assert order["paymentGroups"][0]["amountCredited"] == 5.0
    assert ret["state"] == "MANUAL_REFUND"


async def test_op_flavour_runs_the_documented_operations(sim: CommerceSimulator, http: ClientSession) -> None:
    """README :31-38 names the ops and fields; A14: a receipt adds to what was received."""
    sim.flavour = "op"
    bearer = await token(http, sim)
    path = "/ccadmin/v1/returnRequests/100003"

    async def receive(*items: dict[str, Any]) -> Any:
        status, body, _ = await call(
            http, sim, "PUT", path, bearer, {"op": "receiveReturns", "returnItems": list(items)}
        )
        assert status == 200, body
        return body

    body = await receive(
        {"returnItemId": "ri1", "quantityReceived": 1, "dispositionReason": "resell"},
        {"returnItemId": "ri2", "quantityReceived": 1},
    )
    assert body["state"] == "PARTIAL_RETURN"
    assert [(i["state"], i["quantityReceived"]) for i in body["returnItemList"]] == [
        ("RETURNED", 1),
        ("PARTIAL_RETURN", 1),
    ]
    assert body["returnItemList"][0]["disposition"] == "resell"
    status, refused, _ = await call(
        http,
        sim,
        "PUT",
        path,
        bearer,
        {"op": "receiveReturns", "returnItems": [{"returnItemId": "ri2", "quantityReceived": 2}]},
    )
    assert status == 400 and refused["o:errorPath"] == "$.returnItems[0].quantityReceived", (
        "only 1 outstanding"
    )
    body = await receive({"returnItemId": "ri2", "quantityReceived": 1})
    assert body["state"] == "FULL_RETURN" and body["returnItemList"][1]["quantityReceived"] == 2
    status, body, _ = await call(
        http, sim, "PUT", path, bearer, {"op": "adjustRefundAmounts", "adjustedTaxRefund": 1.5}
    )
    assert (status, body["actualTaxRefund"]) == (200, 1.5)
    for op, state in (("initiateRefund", "PENDING_REFUND"), ("markAsComplete", "COMPLETE")):
        status, body, _ = await call(http, sim, "PUT", path, bearer, {"op": op})
        assert (status, body["state"]) == (200, state)
    assert "refundIssuedByCommerce" not in body, "no invented field"
    assert [(r.return_id, r.total) for r in sim.issued_refunds] == [("100003", Decimal(10))]
    status, _, _ = await call(http, sim, "PUT", path, bearer, {"op": "markManualRefund"})
    assert status == 400, "COMPLETE is final (A6)"


@pytest.mark.parametrize(
    "body",
    [
        {"state": "COMPLETE"},
        {"op": "ReceiveReturns", "returnItems": []},
        {"op": "initiateRefund", "returnItemList": []},
        {"op": "receiveReturns", "returnItems": [{"returnItemId": "nope", "quantityReceived": 1}]},
    ],
)
async def test_op_flavour_refuses_other_bodies(
    sim: CommerceSimulator, http: ClientSession, body: Any
) -> None:
    sim.flavour = "op"
    bearer = await token(http, sim)
    status, _, _ = await call(http, sim, "PUT", "/ccadmin/v1/returnRequests/100003", bearer, body)
    assert status == 400


async def test_a_map_in_the_body_replaces_the_stored_map(sim: CommerceSimulator, http: ClientSession) -> None:
    bearer = await token(http, sim)
    await call(
        http, sim, "PUT", "/ccadmin/v1/returnRequests/100003", bearer, {"additionalProperties": {"b": "3"}}
    )
    assert sim.returns["100003"]["additionalProperties"] == {"b": "3"}
    await call(http, sim, "PUT", "/ccadmin/v1/returnRequests/100003", bearer, {"additionalProperties": {}})
    assert sim.returns["100003"]["additionalProperties"] == {}


async def test_unknown_ids_are_404(sim: CommerceSimulator, http: ClientSession) -> None:
    bearer = await token(http, sim)
    for method, path in (
        ("PUT", "/ccadmin/v1/orders/o404"),
        ("PUT", "/ccadmin/v1/returnRequests/404"),
        ("GET", "/ccadmin/v1/orders/o404"),
    ):
        status, body, _ = await call(http, sim, method, path, bearer, {"state": "X"})
        assert status == 404
        assert_error_model(body, 404)
    assert set(sim.orders) == {"o1"}


@pytest.mark.parametrize("raw", [b"[1, 2]", b"not json", b"", b'"text"'])
async def test_body_must_be_a_json_object(sim: CommerceSimulator, http: ClientSession, raw: bytes) -> None:
    bearer = await token(http, sim)
    status, body, _ = await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, raw=raw)
    assert status == 400
    assert_error_model(body, 400)
    assert sim.orders["o1"] == ORDER


async def test_unknown_route_answers_an_error_model(sim: CommerceSimulator, http: ClientSession) -> None:
    status, body, _ = await call(http, sim, "GET", "/ccadmin/v1/nothing", "x")
    assert status == 404
    assert_error_model(body, 404)


# --- recording --------------------------------------------------------------------------------------


async def test_every_request_is_recorded_with_its_attempt(
    sim: CommerceSimulator, http: ClientSession
) -> None:
    bearer = await token(http, sim)
    sim.fail_next(503, 1)
    for _ in range(2):
        await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, raw=b'{"state": "PROCESSING"}')
    puts = sim.calls_to("/ccadmin/v1/orders/o1", "PUT")
    assert [(c.status, c.attempt, c.fault) for c in puts] == [(503, 1, True), (200, 2, False)]
    assert puts[1].body == {"state": "PROCESSING"} and puts[1].raw == b'{"state": "PROCESSING"}'
    assert puts[0].time <= puts[1].time <= time.time()
    assert "Authorization" not in puts[1].headers and "authorization" not in puts[1].headers
    assert sim.puts() == [puts[1]]


# --- faults and latency -----------------------------------------------------------------------------


async def test_429_carries_retry_after(sim: CommerceSimulator, http: ClientSession) -> None:
    bearer = await token(http, sim)
    sim.fail_next(429, 2, retry_after=3)
    answers = [
        await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, {"state": "PROCESSING"})
        for _ in range(3)
    ]
    assert [a[0] for a in answers] == [429, 429, 200]
    assert answers[0][2]["Retry-After"] == "3"
    assert_error_model(answers[0][1], 429)
    assert sim.orders["o1"]["state"] == "PROCESSING"


async def test_5xx_for_the_next_calls_only_under_the_prefix(
    sim: CommerceSimulator, http: ClientSession
) -> None:
    bearer = await token(http, sim)
    sim.fail_next(503, 2, prefix="/ccadmin/v1/returnRequests")
    assert (await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, {"state": "PROCESSING"}))[0] == 200
    statuses = [
        (await call(http, sim, "PUT", "/ccadmin/v1/returnRequests/100003", bearer, {"state": "COMPLETE"}))[0]
        for _ in range(3)
    ]
    assert statuses == [503, 503, 200]


async def test_unprefixed_faults_spare_login(sim: CommerceSimulator, http: ClientSession) -> None:
    sim.fail_next(500, 1)
    bearer = await token(http, sim)
    assert (await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, {"state": "PROCESSING"}))[0] == 500
    sim.fail_next(503, 1, prefix="/ccadmin/v1/login")
    assert (await login(http, sim))[0] == 503


async def test_a_given_4xx_with_its_error_model(sim: CommerceSimulator, http: ClientSession) -> None:
    bearer = await token(http, sim)
    sim.fail_next(400, prefix="/ccadmin/v1/returnRequests", code="28101", message="return is locked")
    status, body, _ = await call(
        http, sim, "PUT", "/ccadmin/v1/returnRequests/100003", bearer, {"state": "COMPLETE"}
    )
    assert (status, body) == (400, {"errorCode": "28101", "message": "return is locked", "status": "400"})
    assert sim.returns["100003"]["state"] == "PENDING_CUSTOMER_ACTION", "a refused call changes nothing"


async def test_faults_over_http(sim: CommerceSimulator, http: ClientSession) -> None:
    bearer = await token(http, sim)
    async with http.post(
        f"{sim.url}/__sim/faults", json={"status": 502, "times": 1, "prefix": "/ccadmin/v1/orders"}
    ) as response:
        assert response.status == 201
    async with http.get(f"{sim.url}/__sim/faults") as response:
        assert [f["status"] for f in await response.json()] == [502]
    assert (await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, {"state": "PROCESSING"}))[0] == 502
    async with http.post(f"{sim.url}/__sim/faults", json={"status": 500, "times": 9}):
        pass
    async with http.delete(f"{sim.url}/__sim/faults") as response:
        assert response.status == 204
    assert (await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, {"state": "PROCESSING"}))[0] == 200
    async with http.get(f"{sim.url}/__sim/calls") as response:
        assert [c["status"] for c in await response.json() if c["method"] == "PUT"] == [502, 200]


async def test_seed_and_state_over_http(sim: CommerceSimulator, http: ClientSession) -> None:
    """How a benchmark drives a simulator running in its own process."""
    async with http.post(
        f"{sim.url}/__sim/seed",
        json={
            "orders": [{"id": "o9", "state": "SUBMITTED", "paymentGroups": [{"id": "pg9"}]}],
            "returns": [{"id": "R9", "state": "PENDING_CUSTOMER_ACTION"}],
        },
    ) as response:
        assert response.status == 201
    async with http.post(f"{sim.url}/__sim/seed", json={"returns": [{"state": "x"}]}) as response:
        assert response.status == 400
    bearer = await token(http, sim)
    assert (
        await call(
            http, sim, "PUT", "/ccadmin/v1/orders/o9", bearer, {"state": "PROCESSING", "paymentGroups": []}
        )
    )[0] == 200
    async with http.get(f"{sim.url}/__sim/state") as response:
        state = await response.json()
    assert state["orders"]["o9"] == {"id": "o9", "state": "PROCESSING", "paymentGroups": []}
    assert state["returns"]["R9"]["state"] == "PENDING_CUSTOMER_ACTION"
    assert set(state["orders"]) == {"o1", "o9"}


async def test_dropped_connection(sim: CommerceSimulator, http: ClientSession) -> None:
    """No answer at all. aiohttp itself resends an idempotent request once when the connection
    drops, so two drops are what a client sees as one failure."""
    bearer = await token(http, sim)
    sim.drop_next(2)
    with pytest.raises(ClientConnectionError):
        await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, {"state": "PROCESSING"})
    assert (await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, {"state": "PROCESSING"}))[0] == 200
    assert [c.status for c in sim.calls_to("/ccadmin/v1/orders/o1")] == [0, 0, 200]


async def test_latency_for_the_next_calls_and_persistent(sim: CommerceSimulator, http: ClientSession) -> None:
    bearer = await token(http, sim)

    async def timed() -> float:
        started = time.monotonic()
        assert (await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, {"state": "PROCESSING"}))[
            0
        ] == 200
        return time.monotonic() - started

    sim.delay_next(150, 1)
    assert await timed() >= 0.15
    assert await timed() < 0.1
    sim.latency_ms = 100
    assert min([await timed(), await timed()]) >= 0.1
    sim.fail_next(503, 1, latency_ms=50)
    started = time.monotonic()
    assert (await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, {"state": "PROCESSING"}))[0] == 503
    assert time.monotonic() - started >= 0.15


async def test_a_slow_call_still_applies_after_the_client_gives_up(
    sim: CommerceSimulator, http: ClientSession
) -> None:
    """Like a real server: a timed-out PUT may have landed, which is why bodies are absolute."""
    bearer = await token(http, sim)
    sim.delay_next(200, 1)
    with pytest.raises(asyncio.TimeoutError):
        async with asyncio.timeout(0.05):
            await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, {"state": "NO_PENDING_ACTION"})
    await asyncio.sleep(0.3)
    assert sim.orders["o1"]["state"] == "NO_PENDING_ACTION"


async def test_app_factory_serves_in_a_test_server() -> None:
    app = create_app()
    simulator = app[SIMULATOR_KEY]
    simulator.app_key = KEY
    simulator.seed_order(ORDER)
    async with TestClient(TestServer(app)) as client:
        response = await client.post(
            "/ccadmin/v1/login",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Bearer {KEY}"},
        )
        bearer = (await response.json())["access_token"]
        response = await client.get("/ccadmin/v1/orders/o1", headers={"Authorization": f"Bearer {bearer}"})
        assert (await response.json())["id"] == "o1"


# --- webhook sender ---------------------------------------------------------------------------------


def test_sign_matches_rfc_vectors() -> None:
    """RFC 4231 / RFC 2202 test case 2 (key "Jefe"), so the signer is checked against outside truth."""
    secret = base64.b64encode(b"Jefe").decode()
    body = b"what do ya want for nothing?"
    assert base64.b64decode(sign(body, secret)).hex() == (
        "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
        "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
    )
    assert base64.b64decode(sign(body, secret, "sha1")).hex() == "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
    with pytest.raises(ValueError):
        sign(body, secret, "md5")


Seen = list[tuple[bytes, dict[str, str]]]
Receiver = tuple[str, Seen, list[int], str]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook endpoint that verifies signatures and answers the queued statuses, then 200."""
    secret = base64.b64encode(b"hook-secret").decode()
    verifier = SignatureVerifier([secret])
    seen: Seen = []
    answers: list[int] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append((body, dict(request.headers)))
        if not verifier.verify(body, request.headers):
            return web.json_response({"errorCode": "401", "message": "bad signature"}, status=401)
        return web.json_response({"ok": True}, status=answers.pop(0) if answers else 200)

    app = web.Application()
    app.router.add_post("/webhooks/order-submit", hook)
    async with TestServer(app) as server:
        yield secret, seen, answers, str(server.make_url(""))


async def test_sender_signs_raw_bytes_with_either_header(receiver: Receiver) -> None:
    secret, seen, _, url = receiver
    raw = b'{"order": {"id": "o1", "total": 80.41}}'
    cases: list[tuple[Algo, str]] = [
        ("sha512", SIGNATURE_HEADER),
        ("sha1", SIGNATURE_HEADER),
        ("sha512", SIGNATURE_HEADER_SHA512),
    ]
    for algo, header in cases:
        async with WebhookSender(url, secret, algo, header) as sender:
            delivery = await sender.send("/webhooks/order-submit", raw)
        assert delivery.ok and delivery.json() == {"ok": True}
        assert seen[-1][0] == raw and header in seen[-1][1]
        assert seen[-1][1]["Content-Type"] == "application/json"
    async with WebhookSender(url, base64.b64encode(b"wrong").decode()) as forger:
        assert (await forger.send("webhooks/order-submit", {"order": {"id": "o1"}})).status == 401


async def test_deliver_resends_the_same_bytes_until_2xx(receiver: Receiver) -> None:
    secret, seen, answers, url = receiver
    answers.extend([500, 503])
    async with WebhookSender(url, secret) as sender:
        deliveries = await sender.deliver("/webhooks/order-submit", {"order": {"id": "o1"}}, interval_s=0.01)
    assert [d.status for d in deliveries] == [500, 503, 200]
    assert [d.attempt for d in deliveries] == [1, 2, 3]
    assert len({body for body, _ in seen}) == 1, "the same bytes each time"
    assert not any("id" in name.lower() for _, headers in seen for name in headers), "no message id"


async def test_deliver_gives_up_after_max_attempts(receiver: Receiver) -> None:
    secret, seen, answers, url = receiver
    answers.extend([500] * 10)
    async with WebhookSender(url, secret) as sender:
        deliveries = await sender.deliver("/webhooks/order-submit", b"{}", max_attempts=5)
    assert len(deliveries) == 5 and not any(d.ok for d in deliveries) and len(seen) == 5


async def test_deliver_to_nobody_counts_failed_attempts() -> None:
    async with WebhookSender("http://127.0.0.1:9", "c2VjcmV0") as sender:
        deliveries = await sender.deliver("/webhooks/order-submit", b"{}", max_attempts=2)
    assert [d.status for d in deliveries] == [0, 0] and deliveries[0].error


# --- documented types, vocabularies and precision ---------------------------------------------------

SEED_PUT: dict[str, Any] = {
    # seed oms-integration-overview.txt, "Update the return request", :375-428, verbatim
    "shippingTaxRefund": 0,
    "agentId": "service",
    "secondaryCurrencyShippingTaxRefund": 0,
    "actualShippingRefund": 12.5,
    "actualTaxRefund": 4,
    "otherRefund": 0,
    "secondaryCurrencyActualTaxRefund": 0,
    "refundMethodList": [{"refundType": "manualRefund", "amount": 66.49, "state": "INCOMPLETE"}],
    "returnLabel": "https://www.example.com/returnLabel/234977gege4",
    "authorizationNumber": "200001",
    "returnFee": 0,
    "requestId": "200001",
    "secondaryCurrencyActualShippingRefund": 0,
    "links": [{"rel": "self", "href": "http://www.example.com/ccadmin/v1/returnRequests/200001"}],
    "state": "PENDING_CUSTOMER_ACTION",
    "additionalProperties": {"key1": "value1"},
    "originOfReturn": "contactCenter",
    "trackingNumber": "178923",
    "returnItemList": [
        {
            "secondaryCurrencyActualTaxRefundShare": 0,
            "comments": None,
            "shippingGroupId": "sg70428",
            "secondaryCurrencyActualShippingSurchargeRefundShare": 0,
            "quantityWithFractionReceived": 0,
            "commerceItemId": "ci6000446",
            "secondaryCurrencyActualShippingRefundShare": 0,
            "actualShippingSurchargeRefundShare": 0,
            "returnReason": "defective",
            "actualShippingRefundShare": 12.5,
            "state": "AWAITING_RETURN",
            "additionalProperties": {},
            "actualTaxRefundShare": 4,
            "quantityReceived": 0,
            "refundAmount": 49.99,
        }
    ],
    "actualShippingSurchargeRefund": 0,
    "secondaryCurrencyActualShippingSurchargeRefund": 0,
}


async def test_the_documented_body_is_accepted_as_it_stands(
    sim: CommerceSimulator, http: ClientSession
) -> None:
    sim.seed_return(
        {
            "requestId": "200001",
            "state": "PENDING_CUSTOMER_ACTION",
            "returnItemList": [
                {"commerceItemId": "ci6000446", "shippingGroupId": "sg70428", "state": "INITIAL"}
            ],
        }
    )
    bearer = await token(http, sim)
    status, body, _ = await call(http, sim, "PUT", "/ccadmin/v1/returnRequests/200001", bearer, SEED_PUT)
    assert status == 200, body
    assert "links" not in body, "A11: links are Commerce's"
    assert body["returnItemList"][0]["refundAmount"] == 49.99 and body["state"] == "PENDING_CUSTOMER_ACTION"


ITEM: dict[str, Any] = {"commerceItemId": "ci1", "shippingGroupId": "sg1"}


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"actualTaxRefund": "4.00"}, "$.actualTaxRefund"),
        ({"actualTaxRefund": True}, "$.actualTaxRefund"),
        ({"actualTaxRefund": 1.005}, "$.actualTaxRefund"),
        ({"returnFee": -1}, "$.returnFee"),
        ({"state": "BOGUS"}, "$.state"),
        ({"state": None}, "$.state"),
        ({"agentId": 7}, "$.agentId"),
        ({"returnItemList": [{**ITEM, "shippingGroupId": None}]}, "$.returnItemList[0].shippingGroupId"),
        ({"returnItemList": [{"commerceItemId": "ci1"}]}, "$.returnItemList[0].shippingGroupId"),
        ({"returnItemList": [{**ITEM, "commerceItemId": ""}]}, "$.returnItemList[0].commerceItemId"),
        ({"returnItemList": [ITEM, ITEM]}, "$.returnItemList[1]"),
        ({"returnItemList": [{**ITEM, "state": "DONE"}]}, "$.returnItemList[0].state"),
        ({"returnItemList": [{**ITEM, "refundAmount": "49.99"}]}, "$.returnItemList[0].refundAmount"),
        ({"returnItemList": [{**ITEM, "refundAmount": 49.999}]}, "$.returnItemList[0].refundAmount"),
        ({"returnItemList": [{**ITEM, "quantityReceived": 0.5}]}, "$.returnItemList[0].quantityReceived"),
        ({"returnItemList": [{**ITEM, "returnReason": "changedMind"}]}, "$.returnItemList[0].returnReason"),
        (
            {"refundMethodList": [{"refundType": "manualRefund", "paymentGroupId": "pg1"}]},
            "$.refundMethodList[0].paymentGroupId",
        ),
        ({"refundMethodList": [{"amount": 1}]}, "$.refundMethodList[0].refundType"),
        (
            {"refundMethodList": [{"refundType": "manualRefund", "amount": "1"}]},
            "$.refundMethodList[0].amount",
        ),
        (
            {"refundMethodList": [{"refundType": "manualRefund", "state": "PENDING"}]},
            "$.refundMethodList[0].state",
        ),
        ({"additionalProperties": {"a": None}}, "$.additionalProperties"),
        ({"requestId": "999"}, "$.requestId"),
    ],
)
async def test_a_documented_rule_refuses_what_it_should(
    sim: CommerceSimulator, http: ClientSession, body: Any, path: str
) -> None:
    sim.returns["100003"]["requestId"] = "100003"
    bearer = await token(http, sim)
    before = sim.return_request("100003")
    status, answer, _ = await call(http, sim, "PUT", "/ccadmin/v1/returnRequests/100003", bearer, body)
    assert status == 400, answer
    assert_error_model(answer, 400)
    assert answer["o:errorPath"] == path
    assert sim.return_request("100003") == before


async def test_amounts_follow_the_currency_digits(sim: CommerceSimulator, http: ClientSession) -> None:
    """A4: USD 2 digits (AGENT :650); a JPY order takes whole amounts only."""
    bearer = await token(http, sim)
    order = "/ccadmin/v1/orders/o1"
    ok = {"paymentGroups": [{"id": "pg1", "amountCredited": 12.5}, {"id": "pg2"}]}
    assert (await call(http, sim, "PUT", order, bearer, ok))[0] == 200
    sim.orders["o1"]["priceInfo"]["currencyCode"] = "JPY"
    status, body, _ = await call(http, sim, "PUT", order, bearer, ok)
    assert status == 400 and body["o:errorPath"] == "$.paymentGroups[0].amountCredited"
    whole = {"paymentGroups": [{"id": "pg1", "amountCredited": 13}, {"id": "pg2"}]}
    assert (await call(http, sim, "PUT", order, bearer, whole))[0] == 200


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"state": "SHIPPED"}, "$.state"),
        ({"state": 1}, "$.state"),
        ({"paymentGroups": [{"id": "pg1", "amountCredited": "5.00"}]}, "$.paymentGroups[0].amountCredited"),
        ({"paymentGroups": [{"id": None}]}, "$.paymentGroups[0].id"),
        ({"paymentGroups": [{"id": "pg1", "amount": 1}]}, "$.paymentGroups[0].amount"),
        ({"paymentGroups": [{"id": "pg1", "refunds": []}]}, "$.paymentGroups[0].refunds"),
        ({"paymentGroups": [{"id": "pg1"}, {"id": "pg1"}]}, "$.paymentGroups[1]"),
        ({"shippingGroups": [{"id": "sg1", "state": "GONE"}]}, "$.shippingGroups[0].state"),
        ({"shippingGroups": [{"id": "sg1", "shippingMethod": "air"}]}, "$.shippingGroups[0].shippingMethod"),
        ({"shippingGroups": [{"id": "sg1", "trackingNumber": 5}]}, "$.shippingGroups[0].trackingNumber"),
        ({"priceInfo": {"total": 1}}, "$.priceInfo"),
    ],
)
async def test_an_order_body_outside_the_documents_is_refused(
    sim: CommerceSimulator, http: ClientSession, body: Any, path: str
) -> None:
    bearer = await token(http, sim)
    status, answer, _ = await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, body)
    assert (status, answer.get("o:errorPath")) == (400, path), answer
    assert sim.order("o1") == ORDER


async def test_groups_go_back_as_held_and_codes_may_stay(sim: CommerceSimulator, http: ClientSession) -> None:
    """A9, A10: the Order Submit sample's groups, sent back whole with only writable fields changed."""
    order = seed_order_submit()["order"]
    sim.seed_order(order)
    bearer = await token(http, sim)
    shipping = {**order["shippingGroups"][0], "trackingNumber": "1Z999", "state": "PENDING_SHIPMENT"}
    payment = {**order["paymentGroups"][0], "amountCredited": 80.41}
    status, body, _ = await call(
        http,
        sim,
        "PUT",
        "/ccadmin/v1/orders/o20005",
        bearer,
        {"state": "PROCESSING", "shippingGroups": [shipping], "paymentGroups": [payment]},
    )
    assert status == 200, body
    assert body["paymentGroups"][0]["state"] == 1, "the code sent back as held"
    assert body["shippingGroups"][0]["trackingNumber"] == "1Z999"
    status, body, _ = await call(
        http,
        sim,
        "PUT",
        "/ccadmin/v1/orders/o20005",
        bearer,
        {"shippingGroups": [{**shipping, "state": "INITIAL"}]},
    )
    assert (status, body["o:errorPath"]) == (400, "$.shippingGroups[0].state"), "A8"
    status, body, _ = await call(
        http, sim, "PUT", "/ccadmin/v1/orders/o20005", bearer, {"state": "SUBMITTED"}
    )
    assert status == 400, "A8"


@pytest.mark.parametrize(
    ("held", "sent", "ok"),
    [
        ("PENDING_CUSTOMER_ACTION", "PARTIAL_RETURN", True),
        ("PENDING_CUSTOMER_ACTION", "PENDING_REFUND", True),
        ("PENDING_REFUND", "MANUAL_REFUND", True),
        ("MANUAL_REFUND", "PENDING_REFUND", True),
        ("PARTIAL_RETURN", "INCOMPLETE", True),
        ("FULL_RETURN", "PARTIAL_RETURN", False),
        ("PENDING_REFUND", "FULL_RETURN", False),
        ("INCOMPLETE", "PENDING_CUSTOMER_ACTION", False),
        ("COMPLETE", "INCOMPLETE", False),
        ("COMPLETE", "COMPLETE", True),
    ],
)
async def test_a_return_state_never_goes_back(
    sim: CommerceSimulator, http: ClientSession, held: str, sent: str, ok: bool
) -> None:
    """A6."""
    sim.agent_set_state("100003", held)
    bearer = await token(http, sim)
    status, _, _ = await call(http, sim, "PUT", "/ccadmin/v1/returnRequests/100003", bearer, {"state": sent})
    assert status == (200 if ok else 400)
    assert sim.returns["100003"]["state"] == (sent if ok else held)


async def test_an_item_state_and_received_quantity_never_go_back(
    sim: CommerceSimulator, http: ClientSession
) -> None:
    """A7."""
    bearer = await token(http, sim)
    path = "/ccadmin/v1/returnRequests/100003"
    two: list[dict[str, Any]] = [
        {**ITEM, "state": "PARTIAL_RETURN", "quantityReceived": 1},
        {"commerceItemId": "ci2", "shippingGroupId": "sg1"},
    ]
    assert (await call(http, sim, "PUT", path, bearer, {"returnItemList": two}))[0] == 200
    for change in ({"state": "AWAITING_RETURN"}, {"quantityReceived": 0}):
        body = {"returnItemList": [{**two[0], **change}, two[1]]}
        status, answer, _ = await call(http, sim, "PUT", path, bearer, body)
        assert status == 400 and answer["o:errorPath"].startswith("$.returnItemList[0].")


# --- the agent ----------------------------------------------------------------------------------------


async def test_agent_edits_are_checked_logged_and_found_lost(
    sim: CommerceSimulator, http: ClientSession
) -> None:
    with pytest.raises(ValueError):
        sim.agent_set_state("100003", "BOGUS")
    with pytest.raises(ValueError):
        sim.agent_add_refund_method("100003", {"refundType": "giftCard", "paymentGroupId": "pg2"})
    state = sim.agent_set_state("100003", "PARTIAL_RETURN")
    item = sim.agent_add_return_item(
        "100003", {"commerceItemId": "ci3", "shippingGroupId": "sg1", "state": "AWAITING_RETURN"}
    )
    credit = sim.agent_credit("o1", "pg2", "5.25")
    method = sim.agent_change_refund_method("100003", 0, amount=3)
    assert sim.agent_log == [state, item, credit, method] and sim.lost_agent_edits() == []
    assert sim.orders["o1"]["paymentGroups"][1]["amountCredited"] == 5.25
    bearer = await token(http, sim)
    kept_items = [{"commerceItemId": c, "shippingGroupId": "sg1"} for c in ("ci1", "ci2", "ci3")]
    status, _, _ = await call(
        http,
        sim,
        "PUT",
        "/ccadmin/v1/returnRequests/100003",
        bearer,
        {
            "state": "FULL_RETURN",
            "returnItemList": kept_items,
            "refundMethodList": [{"refundType": "creditCard", "amount": 3}],
        },
    )
    assert status == 200
    assert sim.lost_agent_edits() == [state], "the state was overwritten; item and method kept"
    await call(
        http,
        sim,
        "PUT",
        "/ccadmin/v1/orders/o1",
        bearer,
        {"paymentGroups": [{"id": "pg1"}, {"id": "pg2", "amountCredited": 2}]},
    )
    assert sim.lost_agent_edits() == [state, credit]
    assert sim.lost_agent_edits(others_credits={"orders/o1/pg2": Decimal(0)}) == [state, credit]
    sim.agent_set_state("100003", "PENDING_REFUND")
    assert state not in sim.lost_agent_edits(), "a later edit of the same field supersedes"


async def test_credits_add_up_with_others(sim: CommerceSimulator, http: ClientSession) -> None:
    first = sim.agent_credit("o1", "pg1", 5)
    bearer = await token(http, sim)
    body = {"paymentGroups": [{"id": "pg1", "amountCredited": 15}, {"id": "pg2"}]}
    assert (await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, body))[0] == 200
    second = sim.agent_credit("o1", "pg1", 1.5)
    assert sim.lost_agent_edits(others_credits={"orders/o1/pg1": Decimal(10)}) == []
    assert sim.lost_agent_edits(others_credits={"orders/o1/pg1": Decimal(12)}) == [first, second]


async def test_random_agent_is_reproducible_and_documented(sim: CommerceSimulator) -> None:
    def run(seed: int) -> list[str]:
        simulator = CommerceSimulator()
        simulator.seed_order(ORDER)
        simulator.seed_return(RETURN)
        agent = Agent(simulator, random.Random(seed))
        edits = [agent.random_edit("100003", "o1") for _ in range(30)]
        assert agent.edits == edits == simulator.agent_log
        assert agent.lost_edits() == [], "nothing else wrote"
        ret = simulator.returns["100003"]
        assert ret["state"] in RETURN_STATES and simulator.orders["o1"]["state"] in ORDER_STATES
        assert all(rules_key(i) is not None for i in ret["returnItemList"])
        return [e.describe() for e in edits]

    assert run(7) == run(7)
    kinds = {line.split()[1] for seed in range(10) for line in run(seed)}
    assert kinds >= {"return_state", "order_state", "add_item", "credit", "refund_method"}


async def test_agent_over_the_control_endpoints(sim: CommerceSimulator, http: ClientSession) -> None:
    async def post(action: str, spec: Any) -> tuple[int, Any]:
        async with http.post(f"{sim.url}/_sim/agent/{action}", json=spec) as response:
            return response.status, await response.json()

    assert (await post("credit", {"order": "o1", "paymentGroup": "pg1", "amount": "2.50"}))[0] == 201
    assert (await post("set-state", {"return": "100003", "state": "BOGUS"}))[0] == 400
    assert (await post("credit", {"order": "o404", "paymentGroup": "pg1", "amount": 1}))[0] == 404
    status, edit = await post(
        "add-item", {"return": "100003", "item": {"commerceItemId": "ci9", "shippingGroupId": "sg1"}}
    )
    assert status == 201 and edit["target"] == "item:ci9|sg1"
    async with http.get(f"{sim.url}/_sim/returnRequests/100003") as response:
        assert [i["commerceItemId"] for i in (await response.json())["returnItemList"]][-1] == "ci9"
    async with http.get(f"{sim.url}/_sim/agent/lost") as response:
        assert await response.json() == []
    async with http.get(f"{sim.url}/_sim/agent/edits") as response:
        assert [e["kind"] for e in await response.json()] == ["credit", "add_item"]
    assert not sim.calls, "control calls are not Commerce API calls"


# --- the command line ---------------------------------------------------------------------------------


def sim_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.commerce_sim", *argv], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_cli_serves_seeds_returnflow_and_edits_as_an_agent(service: RunningService) -> None:
    """The README's Try it: serve, seed both samples (stored, then delivered signed), an agent's edit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.commerce_sim", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.to_thread(proc.stdout.readline)
        url = line.split(" at ")[1].split()[0]
        seeded = await asyncio.to_thread(
            sim_cli,
            "seed",
            "--commerce",
            url,
            "--returnflow",
            service.url,
            "--secret",
            SECRET,
            "order-submit-webhook",
            "return-request-update-webhook",
        )
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
        async with service.http.get(f"{url}/_sim/state") as response:
            state = await response.json()
        assert set(state["orders"]) == {"o20005", "o30430"} and set(state["returns"]) == {"100003"}
        assert (await operator_get(service, "/orders/o20005"))["id"] == "o20005"
        assert (await operator_get(service, "/returns/100003"))["state"] == "PENDING_CUSTOMER_ACTION"
        edit = ("agent", "--commerce", url, "--returnflow", service.url, "--secret", SECRET)
        done = await asyncio.to_thread(sim_cli, *edit, "set-state", "100003", "INCOMPLETE")
        assert done.returncode == 0 and "delivered: 200" in done.stdout, done.stdout + done.stderr
        credited = await asyncio.to_thread(
            sim_cli, "agent", "--commerce", url, "credit", "o30430", "pg30412", "5"
        )
        assert credited.returncode == 0, credited.stderr
        shown = await asyncio.to_thread(sim_cli, "agent", "--commerce", url, "show", "orders/o30430")
        assert orjson.loads(shown.stdout)["paymentGroups"][0]["amountCredited"] == 5
        lost = await asyncio.to_thread(sim_cli, "agent", "--commerce", url, "lost")
        assert orjson.loads(lost.stdout) == []
        refused = await asyncio.to_thread(sim_cli, "agent", "--commerce", url, "set-state", "100003", "BOGUS")
        assert refused.returncode == 1
    finally:
        proc.terminate()
        proc.wait(20)


def test_every_rule_names_its_source_and_every_assumption_is_listed() -> None:
    """Item 4 of issue 21: the assumptions live in one place; code names them, they all exist."""
    import re
    from pathlib import Path

    from tests.commerce_sim import documents
    from tests.commerce_sim.assumptions import BY_KEY

    fields = [
        *documents.RETURN_REQUEST_FIELDS.values(),
        *documents.RETURN_ITEM_FIELDS.values(),
        *documents.REFUND_METHOD_FIELDS.values(),
        *documents.ORDER_FIELDS.values(),
        *documents.SHIPPING_GROUP_WRITABLE.values(),
        *documents.PAYMENT_GROUP_WRITABLE.values(),
        *documents.OP_RETURN_ITEM_FIELDS.values(),
        *documents.OP_ADJUST_FIELDS.values(),
    ]
    assert all(re.search(r"\.(txt|md)\b.*:\d+", f.source) for f in fields)
    assert not any("agent-api" in f.source for f in fields), "no Admin API rule cites the Agent API"
    source = "".join(p.read_text() for p in Path(documents.__file__).parent.glob("*.py"))
    named = set(re.findall(r"\bA\d+\b", source))
    assert named <= set(BY_KEY) and set(BY_KEY) <= named


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_agent_edit_with_the_webhook_that_follows(service: RunningService) -> None:
    document = seed_return_request_update()
    sim = CommerceSimulator()
    sim.seed_order(document["return"]["originatingOrder"])
    sim.seed_return(document["return"])
    agent = Agent(sim, random.Random(3), kinds=("return_state",))
    async with WebhookSender(service.url, SECRET) as sender:
        assert (await agent.send_update(sender, "100003"))[-1].ok
        edit = agent.random_edit("100003", "o30430")
        assert (await agent.send_update(sender, "100003"))[-1].ok
    assert (await operator_get(service, "/returns/100003"))["state"] == edit.expect["state"]
    assert agent.lost_edits() == []


async def test_an_added_methods_amount_is_the_refunds_a_changed_one_the_agents(
    sim: CommerceSimulator, http: ClientSession
) -> None:
    added = sim.agent_add_refund_method(
        "100003", {"refundType": "manualRefund", "amount": 0, "state": "INCOMPLETE"}
    )
    bearer = await token(http, sim)
    path = "/ccadmin/v1/returnRequests/100003"
    methods = [{"refundType": "creditCard", "amount": 10}, {"refundType": "manualRefund", "amount": 5}]
    assert (await call(http, sim, "PUT", path, bearer, {"refundMethodList": methods}))[0] == 200
    assert sim.lost_agent_edits() == [], "the refund set the added method's amount"
    changed = sim.agent_change_refund_method("100003", 1, amount=7)
    assert (await call(http, sim, "PUT", path, bearer, {"refundMethodList": methods}))[0] == 200
    assert sim.lost_agent_edits() == [changed], "the agent's own amount was overwritten"
    assert (await call(http, sim, "PUT", path, bearer, {"refundMethodList": methods[:1]}))[0] == 200
    assert sim.lost_agent_edits() == [added, changed], "the method itself is gone"


async def test_a_return_shows_its_order_as_commerce_holds_it_now(
    sim: CommerceSimulator, http: ClientSession
) -> None:
    """A16: stored under requestId, else id, else authorizationNumber; the nested order is today's."""
    document = seed_return_request_update()["return"]
    sim.seed_order(document["originatingOrder"])
    assert sim.seed_return(document) == "100003"
    assert sim.seed_return({**document, "requestId": "200001"}) == "200001"
    sim.agent_credit("o30430", "pg30412", "1.10")
    bearer = await token(http, sim)
    status, held, _ = await call(http, sim, "GET", "/ccadmin/v1/returnRequests/100003", bearer)
    assert status == 200 and held["originatingOrder"]["paymentGroups"][0]["amountCredited"] == 1.1
    assert sim.webhook_body("100003")["return"]["originatingOrder"] == sim.order("o30430")
    status, missing, _ = await call(http, sim, "GET", "/ccadmin/v1/orders/o404", bearer)
    assert (status, missing["errorCode"]) == (404, "210105"), "AGENT :713"
