"""Event webhooks over real loopback HTTP into a real SQLite file."""

from __future__ import annotations

import asyncio
import copy
import io
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from service import logs
from service.signatures import SHA512_HEADER, SIGNATURE_HEADER
from tests.commerce_sim.seeds import seed_order_submit, seed_return_request_update
from tests.commerce_sim.webhook_sender import sign
from tests.conftest import OLD_SECRET, SECRET, RunningService

ORDER = "/webhooks/order-submit"
RETURN = "/webhooks/return-request-update"
SEED_TOKEN = "9997000107329795"
CARD_FIELDS = ("token", "creditCardNumber", "expirationMonth", "expirationYear", "authorizationStatus")


async def post(
    svc: RunningService,
    path: str,
    document: Any,
    *,
    secret: str = SECRET,
    algorithm: str = "sha512",
    header: str = SIGNATURE_HEADER,
    raw: bytes | None = None,
) -> tuple[int, dict[str, Any]]:
    body = raw if raw is not None else orjson.dumps(document)
    headers = {header: sign(body, secret, algorithm), "Content-Type": "application/json"}
    async with svc.http.post(svc.url + path, data=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def get(svc: RunningService, path: str) -> tuple[int, Any]:
    async with svc.http.get(svc.url + path, headers=svc.auth) as response:
        return response.status, await response.json()


def order_variant(order_id: str, modified: int, state: str | None = None) -> dict[str, Any]:
    document = seed_order_submit()
    document["order"]["id"] = order_id
    document["order"]["lastModifiedTime"] = modified
    if state:
        document["order"]["state"] = state
    return document


def return_variant(state: str, received: int, item_state: str, modified: int) -> dict[str, Any]:
    document = seed_return_request_update()
    ret = document["return"]
    ret["state"] = state
    ret["lastModifiedTime"] = modified
    ret["returnItemList"][0]["quantityReceived"] = received
    ret["returnItemList"][0]["state"] = item_state
    return document


def stored_bytes(service: RunningService) -> bytes:
    """Everything the store holds: the SQLite files, or every stored event in PostgreSQL."""
    if service.db_path is not None:
        return b"".join(p.read_bytes() for p in Path(service.db_path).parent.glob("returnflow.db*"))
    import psycopg

    with psycopg.connect(service.store) as conn:
        rows = conn.execute("SELECT topic, state FROM returnflow_events").fetchall()
    return b"".join(topic.encode() + bytes(state) for topic, state in rows)


async def test_seed_order_submit_is_accepted(service: RunningService) -> None:
    status, body = await post(service, ORDER, seed_order_submit())
    assert (status, body["status"], body["id"]) == (200, "created", "o20005")
    status, order = await get(service, "/orders/o20005")
    assert status == 200
    assert order["state"] == "SUBMITTED"
    assert order["priceInfo"]["total"] == "268.40"
    (group,) = order["shippingGroups"]
    assert group["id"] == "sg20005"
    assert {
        "commerceItemId": "ci2000007",
        "quantity": 2,
        "quantityShipped": 0,
        "quantityReturned": 0,
    } in group["items"]
    assert order["paymentGroups"] == [
        {
            "id": "pg20005",
            "paymentMethod": "tokenizedCreditCard",
            "amount": "297.50",
            "amountCredited": "0.00",
            "currencyCode": "USD",
            "state": "AUTHORIZED",
        }
    ]
    status, history = await get(service, "/orders/o20005/history")
    (event,) = history["events"]
    assert (event["type"], event["trigger"], event["from"], event["to"]) == (
        "Order.Submitted",
        "submit",
        None,
        "SUBMITTED",
    )
    assert event["actor"] == "commerce-webhook"
    assert event["cause"].startswith("sha256:")


async def test_seed_return_request_update_creates_return_and_imports_its_order(
    service: RunningService,
) -> None:
    status, body = await post(service, RETURN, seed_return_request_update())
    assert (status, body["status"], body["id"]) == (200, "created", "100003")
    status, ret = await get(service, "/returns/100003")
    assert ret["orderId"] == "o30430"
    assert ret["state"] == "PENDING_CUSTOMER_ACTION"
    assert ret["processName"] == "Return"
    (item,) = ret["returnItemList"]
    assert (item["returnItemId"], item["commerceItemId"], item["shippingGroupId"]) == (
        "100003",
        "ci3000439",
        "sg40430",
    )
    assert (item["state"], item["quantityToReturn"], item["quantityReceived"]) == ("AWAITING_RETURN", 2, 0)
    assert ret["refund"]["totalRefundAmount"] == "80.41"
    assert ret["refund"]["actualTaxRefund"] == "3.75"
    status, order = await get(service, "/orders/o30430")
    assert (status, order["state"], order["origin"]) == (200, "NO_PENDING_ACTION", "return-request-update")
    assert order["priceInfo"]["tax"] == "7.19"


def flat_return(order_id: str = "o30430") -> dict[str, Any]:
    document = seed_return_request_update()
    ret = document["return"]
    del ret["originatingOrder"]
    ret["originatingOrderId"] = order_id
    item = ret["returnItemList"][0]
    del item["commerceItem"]
    item["returnItemId"] = item.pop("id")
    item["commerceItemId"] = "ci3000439"
    return document


async def test_flat_return_item_shape_is_accepted(service: RunningService) -> None:
    document = flat_return()
    document["return"]["currencyCode"] = "USD"
    status, _ = await post(service, RETURN, document)
    assert status == 200
    _, view = await get(service, "/returns/100003")
    assert view["returnItemList"][0]["commerceItemId"] == "ci3000439"
    assert view["currency"] == "USD"


async def test_flat_return_takes_the_stored_orders_currency_never_usd(service: RunningService) -> None:
    """Issue 13 item 5: a flat return without originatingOrder was assumed to be USD."""
    order = order_variant("o-jpy", 1)
    order["order"]["priceInfo"]["currencyCode"] = "JPY"
    assert (await post(service, ORDER, order))[0] == 200
    document = flat_return("o-jpy")
    document["return"]["returnItemList"][0]["refundAmount"] = 6000
    document["return"]["returnItemList"][0]["commerceItemId"] = "ci2000007"
    document["return"]["returnItemList"][0]["shippingGroupId"] = None
    status, _ = await post(service, RETURN, document)
    assert status == 200
    _, view = await get(service, "/returns/100003")
    assert view["currency"] == "JPY"
    assert view["returnItemList"][0]["refundAmount"] == "6000"
    assert view["returnItemList"][0]["shippingGroupId"] == "sg20005", "taken from the order"


async def test_a_return_is_keyed_by_request_id_and_found_by_its_authorization_number(
    service: RunningService,
) -> None:
    """SPEC 4 identity: requestId when the payload has one; a return first seen without one
    stays the same return when a later update adds it."""
    first = return_variant("PENDING_CUSTOMER_ACTION", 0, "AWAITING_RETURN", 1)
    assert (await post(service, RETURN, first))[1]["id"] == "100003"
    later = return_variant("PARTIAL_RETURN", 1, "PARTIAL_RETURN", 2)
    later["return"]["requestId"] = "200001"
    status, receipt = await post(service, RETURN, later)
    assert (status, receipt["id"], receipt["status"]) == (200, "100003", "updated")
    assert (await get(service, "/returns/200001"))[0] == 404
    fresh = return_variant("PENDING_CUSTOMER_ACTION", 0, "AWAITING_RETURN", 3)
    fresh["return"].update(requestId="300001", authorizationNumber="RMA-elsewhere")
    assert (await post(service, RETURN, fresh))[1]["id"] == "300001"


async def test_flat_return_with_no_currency_anywhere_is_refused_in_words(service: RunningService) -> None:
    status, body = await post(service, RETURN, flat_return("o-unknown"))
    assert status == 409
    assert body["errorCode"] == "CURRENCY_UNKNOWN"
    assert "names no currency" in body["message"] and "o-unknown" in body["message"]
    assert (await get(service, "/returns/100003"))[0] == 404


@pytest.mark.parametrize("strip", ["fields", "groups"])
async def test_pci_free_variants_are_accepted(service: RunningService, strip: str) -> None:
    order = seed_order_submit()
    ret = seed_return_request_update()
    for group in order["order"]["paymentGroups"]:
        for field in CARD_FIELDS:
            group.pop(field, None)
    if strip == "groups":
        del order["order"]["paymentGroups"]
        del ret["return"]["originatingOrder"]["paymentGroups"]
    assert (await post(service, ORDER, order))[0] == 200
    assert (await post(service, RETURN, ret))[0] == 200
    _, view = await get(service, "/orders/o20005")
    assert len(view["paymentGroups"]) == (0 if strip == "groups" else 1)


@pytest.mark.parametrize(
    ("secret", "algorithm", "header"),
    [
        (SECRET, "sha512", SIGNATURE_HEADER),
        (SECRET, "sha1", SIGNATURE_HEADER),
        (SECRET, "sha512", SHA512_HEADER),
        (OLD_SECRET, "sha512", SIGNATURE_HEADER),
    ],
    ids=["sha512", "sha1", "sha512-header", "rotated-second-secret"],
)
async def test_valid_signatures_are_accepted(
    service: RunningService, secret: str, algorithm: str, header: str
) -> None:
    status, _ = await post(
        service, ORDER, seed_order_submit(), secret=secret, algorithm=algorithm, header=header
    )
    assert status == 200
    assert service.events_stored() == 1


STALE_SECRET = "c3RhbGUtc2VjcmV0LW5vLWxvbmdlci1jb25maWd1cmVk"


@pytest.mark.parametrize("case", ["forged", "missing", "stale-secret", "tampered"])
async def test_bad_signatures_get_401_and_store_nothing(service: RunningService, case: str) -> None:
    body = orjson.dumps(seed_order_submit())
    headers = {
        "forged": {SIGNATURE_HEADER: "Zm9yZ2Vk" * 11},
        "missing": {},
        "stale-secret": {SIGNATURE_HEADER: sign(body, STALE_SECRET, "sha512")},
        "tampered": {SIGNATURE_HEADER: sign(body + b" ", SECRET, "sha512")},
    }[case]
    async with service.http.post(service.url + ORDER, data=body, headers=headers) as response:
        assert response.status == 401
        error = await response.json()
    assert error["errorCode"] == "UNAUTHORIZED" and error["status"] == "401"
    assert service.events_stored() == 0


async def test_five_shuffled_deliveries_record_one_change_each(service: RunningService) -> None:
    deliveries = [(ORDER, order_variant(f"o{n}", 1000 + n)) for n in range(3)]
    deliveries.append((RETURN, seed_return_request_update()))
    schedule = [d for d in deliveries for _ in range(5)]
    random.Random(7).shuffle(schedule)
    results = await asyncio.gather(*(post(service, path, doc) for path, doc in schedule))
    assert all(status == 200 for status, _ in results)
    outcomes = [body["status"] for _, body in results]
    assert outcomes.count("created") == 4
    assert outcomes.count("duplicate") == 16
    # 3 orders + the return + the return's embedded order o30430 and its link to the return
    assert service.events_stored() == 6
    for n in range(3):
        _, history = await get(service, f"/orders/o{n}/history")
        assert len(history["events"]) == 1


async def test_older_order_snapshot_after_newer_changes_nothing(service: RunningService) -> None:
    newer = order_variant("o20005", 2000, state="PROCESSING")
    older = order_variant("o20005", 1000)
    assert (await post(service, ORDER, older))[1]["status"] == "created"
    assert (await post(service, ORDER, newer))[1]["status"] == "updated"
    assert (await post(service, ORDER, older))[1]["status"] in ("duplicate", "stale")
    _, order = await get(service, "/orders/o20005")
    assert (order["state"], order["lastModifiedTime"]) == ("PROCESSING", 2000)
    assert service.events_stored() == 2


async def test_older_return_update_after_newer_does_not_roll_back(service: RunningService) -> None:
    first = return_variant("PENDING_CUSTOMER_ACTION", 0, "AWAITING_RETURN", 1000)
    received = return_variant("PARTIAL_RETURN", 1, "PARTIAL_RETURN", 2000)
    assert (await post(service, RETURN, first))[1]["status"] == "created"
    assert (await post(service, RETURN, received))[1]["status"] == "updated"
    status, body = await post(service, RETURN, first)
    assert (status, body["status"]) == (200, "duplicate"), "applied once before: a redelivery (SPEC 8)"
    _, ret = await get(service, "/returns/100003")
    assert ret["state"] == "PARTIAL_RETURN"
    assert ret["returnItemList"][0]["quantityReceived"] == 1
    _, history = await get(service, "/returns/100003/history")
    assert [(e["trigger"], e["from"], e["to"]) for e in history["events"]] == [
        ("request", None, "PENDING_CUSTOMER_ACTION"),
        ("receive", "PENDING_CUSTOMER_ACTION", "PARTIAL_RETURN"),
    ]
    assert history["events"][1]["item_steps"][0]["to"] == "PARTIAL_RETURN"


async def test_a_state_the_machines_would_not_reach_is_recorded_as_commerce_override(
    service: RunningService,
) -> None:
    """Issue 13 item 6: this was answered 409, so Commerce retried five times and lost it."""
    await post(service, RETURN, return_variant("PENDING_CUSTOMER_ACTION", 0, "AWAITING_RETURN", 1))
    before = service.events_stored()
    status, answer = await post(service, RETURN, return_variant("FULL_RETURN", 1, "PARTIAL_RETURN", 2))
    assert (status, answer["status"]) == (200, "overridden")
    assert service.events_stored() == before + 1
    _, history = await get(service, "/returns/100003/history")
    last = history["events"][-1]
    assert (last["type"], last["trigger"], last["from"], last["to"]) == (
        "ReturnRequest.CommerceOverridden",
        "commerce_override",
        "PENDING_CUSTOMER_ACTION",
        "FULL_RETURN",
    )
    assert "would not make" in last["reason"]
    async with service.http.get(service.url + "/metrics") as response:
        metrics = await response.text()
    counted = [line for line in metrics.splitlines() if 'outcome="webhook_overridden"' in line]
    assert len(counted) == 1 and counted[0].split()[-1] in ("1", "1.0")


def _without_order_id(d: dict[str, Any]) -> dict[str, Any]:
    del d["order"]["id"]
    return d


def _set(path: list[Any], value: Any, base: dict[str, Any]) -> dict[str, Any]:
    target: Any = base
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return base


BAD_BODIES: list[tuple[str, str, Any, str | None]] = [
    ("malformed-json", ORDER, b'{"order": {"id": "o1",', None),
    ("not-an-object", ORDER, b"[1, 2, 3]", "$"),
    ("empty-body", ORDER, b"", None),
    ("missing-order", ORDER, {"site": {}}, "$.order"),
    ("missing-order-id", ORDER, _without_order_id(seed_order_submit()), "$.order.id"),
    ("empty-order-id", ORDER, _set(["order", "id"], "  ", seed_order_submit()), "$.order.id"),
    (
        "items-not-list",
        ORDER,
        _set(["order", "commerceItems"], {"a": 1}, seed_order_submit()),
        "$.order.commerceItems",
    ),
    (
        "quantity-string",
        ORDER,
        _set(["order", "commerceItems", 0, "quantity"], "two", seed_order_submit()),
        "$.order.commerceItems[0].quantity",
    ),
    (
        "amount-string",
        ORDER,
        _set(["order", "priceInfo", "total"], "lots", seed_order_submit()),
        "$.order.priceInfo.total",
    ),
    (
        "modified-bool",
        ORDER,
        _set(["order", "lastModifiedTime"], True, seed_order_submit()),
        "$.order.lastModifiedTime",
    ),
    (
        "missing-return-id",
        RETURN,
        _set(["return", "authorizationNumber"], None, seed_return_request_update()),
        "$.return.authorizationNumber",
    ),
    (
        "return-items-missing",
        RETURN,
        _set(["return", "returnItemList"], None, seed_return_request_update()),
        "$.return.returnItemList",
    ),
    (
        "negative-quantity",
        RETURN,
        _set(["return", "returnItemList", 0, "quantityToReturn"], -1, seed_return_request_update()),
        "$.return.returnItemList[0].quantityToReturn",
    ),
    (
        "shipment-flag-string",
        RETURN,
        _set(["return", "returnItemList", 0, "returnShipmentRequired"], "yes", seed_return_request_update()),
        "$.return.returnItemList[0].returnShipmentRequired",
    ),
]


@pytest.mark.parametrize(
    ("case", "path", "document", "error_path"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES]
)
async def test_bad_input_is_4xx_errormodel_and_stores_nothing(
    service: RunningService, case: str, path: str, document: Any, error_path: str | None
) -> None:
    raw = document if isinstance(document, bytes) else orjson.dumps(document)
    status, error = await post(service, path, None, raw=raw)
    assert status == 400, error
    assert set(error) >= {"errorCode", "message", "status"}
    assert error["status"] == "400"
    assert error.get("o:errorPath") == error_path
    assert service.events_stored() == 0


async def test_oversize_body_is_413_and_stores_nothing(service: RunningService) -> None:
    document = seed_order_submit()
    document["order"]["padding"] = "x" * (300 * 1024)
    status, error = await post(service, ORDER, document)
    assert status == 413
    assert error["errorCode"] == "PAYLOAD_TOO_LARGE"
    assert service.events_stored() == 0


async def test_card_data_is_never_stored_nor_logged(service: RunningService) -> None:
    captured = io.StringIO()
    logs.configure("json", stream=captured)
    order = seed_order_submit()
    ret = seed_return_request_update()
    ret["return"]["originatingOrder"]["paymentGroups"][0].update(
        copy.deepcopy({k: order["order"]["paymentGroups"][0][k] for k in CARD_FIELDS})
    )
    assert (await post(service, ORDER, order))[0] == 200
    assert (await post(service, RETURN, ret))[0] == 200
    bad = copy.deepcopy(order)
    bad["order"]["commerceItems"][0]["quantity"] = "x"
    assert (await post(service, ORDER, bad))[0] == 400
    stored = stored_bytes(service)
    assert b"ci2000007" in stored, "the events are where this reads"
    assert SEED_TOKEN.encode() not in stored
    assert b"creditCardNumber" not in stored and b"expirationYear" not in stored
    logged = captured.getvalue()
    assert "webhook_received" in logged and "request_failed" in logged
    assert SEED_TOKEN not in logged


async def test_basic_auth_webhooks_over_http(tmp_path: Path) -> None:
    """Commerce set up for HTTP Basic auth instead of signing: right credentials in, others 401."""
    import base64

    from aiohttp import ClientSession

    from service.config import Settings
    from tests.conftest import API_TOKEN, free_port, start_service

    settings = Settings(
        store=f"sqlite:///{tmp_path / 'rf.db'}",
        webhook_basic_auth=("cc:pw",),
        api_token=API_TOKEN,
        port=free_port(),
    )
    runner, services = await start_service(settings)
    body = orjson.dumps(seed_order_submit())
    try:
        async with ClientSession() as http:
            for credentials, expected in ((b"cc:pw", 200), (b"cc:nope", 401)):
                header = "Basic " + base64.b64encode(credentials).decode()
                async with http.post(
                    f"http://127.0.0.1:{settings.port}{ORDER}", data=body, headers={"Authorization": header}
                ) as response:
                    assert response.status == expected
            async with http.post(f"http://127.0.0.1:{settings.port}{ORDER}", data=body) as response:
                assert response.status == 401
        assert services.store.recorder.max_notification_id() == 1
    finally:
        await runner.cleanup()


async def test_every_response_and_log_line_of_a_request_carries_its_request_id(
    service: RunningService,
) -> None:
    captured = io.StringIO()
    logs.configure("json", stream=captured)
    body = orjson.dumps(seed_order_submit())
    headers = {SIGNATURE_HEADER: sign(body, SECRET, "sha512"), "Content-Type": "application/json"}
    ids = []
    for _ in range(3):
        async with service.http.post(service.url + ORDER, data=body, headers=headers) as response:
            assert response.status == 200
            ids.append(response.headers["X-Request-Id"])
    assert len(set(ids)) == 3 and all(len(i) == 16 for i in ids)
    forged = {
        **headers,
        SIGNATURE_HEADER: sign(b"other", SECRET, "sha512"),
        "X-Request-Id": "commerce-trace-1",
    }
    async with service.http.post(service.url + ORDER, data=body, headers=forged) as response:
        assert response.status == 401
        assert response.headers["X-Request-Id"] == "commerce-trace-1", "a caller's id is kept"
    lines = [orjson.loads(line) for line in captured.getvalue().splitlines()]
    received = [line for line in lines if line["event"] == "webhook_received"]
    assert [line["request_id"] for line in received] == ids, "each request's line, each its own id"
    failed = [line for line in lines if line["event"] == "request_failed"]
    assert failed and {line["request_id"] for line in failed} == {"commerce-trace-1"}
    of_requests = [line for line in lines if "path" in line]
    assert of_requests and all(line.get("request_id") in {*ids, "commerce-trace-1"} for line in of_requests)


@pytest.mark.parametrize(
    ("where", "path"), [("return", "$.return.state"), ("item", "$.return.returnItemList[0].state")]
)
async def test_a_state_commerce_does_not_document_is_refused(
    service: RunningService, where: str, path: str
) -> None:
    """An override records Commerce's state, so it must be one the machines know."""
    document = seed_return_request_update()
    target = document["return"] if where == "return" else document["return"]["returnItemList"][0]
    target["state"] = "SHIPPED_BACK"
    status, error = await post(service, RETURN, document)
    assert (status, error["o:errorPath"]) == (400, path)
    assert "PENDING_CUSTOMER_ACTION" in error["message"] or "AWAITING_RETURN" in error["message"]
