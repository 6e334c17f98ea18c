"""The Commerce simulator behaves like Commerce's Admin API (and the webhook sender like its webhooks).

Everything goes over real loopback HTTP with a plain aiohttp client, so these tests pin the
simulator's own semantics independently of Returnflow's client.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import ClientConnectionError, ClientSession, web
from aiohttp.test_utils import TestClient, TestServer

from service.signatures import SignatureVerifier
from tests.commerce_sim import CommerceSimulator, WebhookSender, create_app, sign
from tests.commerce_sim.server import SIMULATOR_KEY
from tests.commerce_sim.webhook_sender import SIGNATURE_HEADER, SIGNATURE_HEADER_SHA512, Algo

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
    "refundMethodList": [{"paymentGroupId": "pg1", "amount": 10, "refundType": "originalPayment"}],
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
            "refundMethodList": [{"paymentGroupId": "pg1", "amount": 49.99}],
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
        {"paymentGroupId": "pg1", "amount": 49.99, "refundType": "originalPayment"}
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
        {"refundMethodList": [{"refundType": "manualRefund", "amount": 1, "maximumRefundAmount": 1}]},
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


async def test_refund_methods_match_by_payment_group_else_type(
    sim: CommerceSimulator, http: ClientSession
) -> None:
    sim.agent_add_refund_method(
        "100003",
        {"refundType": "manualRefund", "amount": 0, "state": "INCOMPLETE", "maximumRefundAmount": -1},
    )
    bearer = await token(http, sim)
    await call(
        http,
        sim,
        "PUT",
        "/ccadmin/v1/returnRequests/100003",
        bearer,
        {
            "refundMethodList": [
                {"paymentGroupId": "pg1", "amount": 5},
                {"refundType": "manualRefund", "amount": 7},
            ]
        },
    )
    assert sim.returns["100003"]["refundMethodList"] == [
        {"paymentGroupId": "pg1", "amount": 5, "refundType": "originalPayment"},
        {"refundType": "manualRefund", "amount": 7, "state": "INCOMPLETE", "maximumRefundAmount": -1},
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
    sim.flavour = "op"
    bearer = await token(http, sim)
    path = "/ccadmin/v1/returnRequests/100003"
    status, body, _ = await call(
        http,
        sim,
        "PUT",
        path,
        bearer,
        {
            "op": "receiveReturns",
            "returnItems": [
                {"returnItemId": "ri1", "quantityReceived": 1, "dispositionReason": "resell"},
                {"returnItemId": "ri2", "quantityReceived": 1},
            ],
        },
    )
    assert status == 200
    assert body["state"] == "PARTIAL_RETURN"
    assert [(i["state"], i["quantityReceived"]) for i in body["returnItemList"]] == [
        ("RETURNED", 1),
        ("PARTIAL_RETURN", 1),
    ]
    assert body["returnItemList"][0]["disposition"] == "resell"
    for op, state in (("initiateRefund", "PENDING_REFUND"), ("markAsComplete", "COMPLETE")):
        status, body, _ = await call(http, sim, "PUT", path, bearer, {"op": op})
        assert (status, body["state"]) == (200, state)
    assert body["refundIssuedByCommerce"] is True


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
        await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, {"state": "P"}) for _ in range(3)
    ]
    assert [a[0] for a in answers] == [429, 429, 200]
    assert answers[0][2]["Retry-After"] == "3"
    assert_error_model(answers[0][1], 429)
    assert sim.orders["o1"]["state"] == "P"


async def test_5xx_for_the_next_calls_only_under_the_prefix(
    sim: CommerceSimulator, http: ClientSession
) -> None:
    bearer = await token(http, sim)
    sim.fail_next(503, 2, prefix="/ccadmin/v1/returnRequests")
    assert (await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, {"state": "P"}))[0] == 200
    statuses = [
        (await call(http, sim, "PUT", "/ccadmin/v1/returnRequests/100003", bearer, {"state": "COMPLETE"}))[0]
        for _ in range(3)
    ]
    assert statuses == [503, 503, 200]


async def test_unprefixed_faults_spare_login(sim: CommerceSimulator, http: ClientSession) -> None:
    sim.fail_next(500, 1)
    bearer = await token(http, sim)
    assert (await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, {"state": "P"}))[0] == 500
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
    assert (await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, {"state": "P"}))[0] == 502
    async with http.post(f"{sim.url}/__sim/faults", json={"status": 500, "times": 9}):
        pass
    async with http.delete(f"{sim.url}/__sim/faults") as response:
        assert response.status == 204
    assert (await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, {"state": "P"}))[0] == 200
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
        await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, {"state": "P"})
    assert (await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, {"state": "P"}))[0] == 200
    assert [c.status for c in sim.calls_to("/ccadmin/v1/orders/o1")] == [0, 0, 200]


async def test_latency_for_the_next_calls_and_persistent(sim: CommerceSimulator, http: ClientSession) -> None:
    bearer = await token(http, sim)

    async def timed() -> float:
        started = time.monotonic()
        assert (await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, {"state": "P"}))[0] == 200
        return time.monotonic() - started

    sim.delay_next(150, 1)
    assert await timed() >= 0.15
    assert await timed() < 0.1
    sim.latency_ms = 100
    assert min([await timed(), await timed()]) >= 0.1
    sim.fail_next(503, 1, latency_ms=50)
    started = time.monotonic()
    assert (await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, {"state": "P"}))[0] == 503
    assert time.monotonic() - started >= 0.15


async def test_a_slow_call_still_applies_after_the_client_gives_up(
    sim: CommerceSimulator, http: ClientSession
) -> None:
    """Like a real server: a timed-out PUT may have landed, which is why bodies are absolute."""
    bearer = await token(http, sim)
    sim.delay_next(200, 1)
    with pytest.raises(asyncio.TimeoutError):
        async with asyncio.timeout(0.05):
            await call(http, sim, "PUT", "/ccadmin/v1/orders/o1", bearer, {"state": "LATE"})
    await asyncio.sleep(0.3)
    assert sim.orders["o1"]["state"] == "LATE"


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
