"""The OpenAPI document cannot drift: it validates, names every route, and describes real answers.

A whole return is driven over real HTTP (webhooks, operator actions, reads, refusals);
each request body and each answer is checked against the operation the document gives
for its route, method and status, and every documented operation must have been seen.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from service.api_description import document
from tests.commerce_sim.webhook_sender import sign
from tests.conftest import SECRET, RunningService
from tests.integration.test_operator_api import fresh_order, return_update, validation

SPEC: dict[str, Any] = orjson.loads(document("openapi.json"))
UNDOCUMENTED = re.compile(r"^/console")
"""The console is HTML for people, not API."""


def _route_of(path: str) -> str:
    for template in SPEC["paths"]:
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path.split("?")[0]):
            return template
    raise AssertionError(f"{path} is not in the OpenAPI document")


def _schema_check(schema: dict[str, Any], instance: Any, what: str) -> None:
    validator = Draft202012Validator(
        {**schema, "components": SPEC["components"]}, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    problems = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)
    ]
    assert not problems, f"{what} does not match the document: {problems}"


def _resolve(item: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in item:
        name = item["$ref"].split("/")[-1]
        item = SPEC["components"]["responses"][name]
    return item


class Contract:
    """Calls the service and checks both sides of each exchange against the document."""

    def __init__(self, svc: RunningService) -> None:
        self.svc = svc
        self.seen: set[tuple[str, str, str]] = set()

    async def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        status: int,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Any:
        route = _route_of(path)
        operation = SPEC["paths"][route][method.lower()]
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
        if body is not None and status < 400:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            _schema_check(schema, body, f"{method} {route} request")
        sent = {**self.svc.auth, **(headers or {})}
        if route.startswith("/webhooks/"):
            sent["X-Oracle-CC-WebHook-Signature"] = sign(data or b"", SECRET, "sha512")
        async with self.svc.http.request(method, self.svc.url + path, data=data, headers=sent) as r:
            assert r.status == status, await r.text()
            answer = await r.read()
            content_type = r.content_type
        described = operation["responses"].get(str(status))
        assert described is not None, f"{method} {route} answered {status}, which is not documented"
        media = _resolve(described)["content"]
        assert content_type in media, f"{method} {route} {status}: {content_type} not documented"
        self.seen.add((method.lower(), route, str(status)))
        if content_type != "application/json":
            return answer.decode()
        document_ = orjson.loads(answer)
        _schema_check(media[content_type]["schema"], document_, f"{method} {route} {status} answer")
        return document_


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(SPEC)
    assert SPEC["openapi"].startswith("3.1")


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    routes = {
        (r.method.lower(), r.resource.canonical)
        for r in _router().routes()
        if r.method != "HEAD" and r.resource is not None and not UNDOCUMENTED.match(r.resource.canonical)
    }
    documented = {(method, path) for path, item in SPEC["paths"].items() for method in item}
    assert routes == documented


def _router() -> Any:
    from service.app import create_app
    from service.config import Settings

    return create_app(Settings(store="memory:", api_token="t", webhook_secrets=(SECRET,))).router


@pytest.fixture
def contract(service: RunningService) -> Contract:
    return Contract(service)


async def test_a_whole_return_answers_as_documented(contract: Contract) -> None:
    await contract("POST", "/webhooks/order-submit", fresh_order(), status=200)
    await contract("POST", "/webhooks/order-submit", fresh_order(), status=200)
    await contract(
        "POST",
        "/orders/o20005/shipments",
        {"shippingGroupId": "sg20005", "trackingNumber": "1Z9"},
        status=200,
    )
    for context in ("Initiate_Return", "CalculateRefund_Return", "Submit_Return"):
        await contract("POST", "/webhooks/return-request-validation", validation(context, 2), status=200)
    await contract("POST", "/webhooks/return-request-update", return_update("R1"), status=200)
    await contract("POST", "/returns/R1/authorize", {"rma": "RMA1"}, status=200)
    await contract(
        "POST", "/returns/R1/receive", {"items": [{"commerceItemId": "ci2000007", "quantity": 2}]}, status=200
    )
    await contract("POST", "/returns/R1/refund", {"action": "initiate"}, status=200)
    await contract("POST", "/returns/R1/close", {"reason": "too late"}, status=409)
    await contract("POST", "/returns/R1/refund", {"action": "settle"}, status=200)
    for path in (
        "/orders/o20005",
        "/returns/R1",
        "/orders/o20005/history",
        "/returns/R1/history",
        "/returns/R1/history?as_of=2000-01-01T00:00:00Z",
    ):
        await contract("GET", path, status=200)
    await contract("POST", "/webhooks/return-request-update", return_update("R2"), status=200)
    await contract("POST", "/returns/R2/close", {"reason": "never sent"}, status=200)
    await refusals(contract)
    documented = {(method, path) for path, item in SPEC["paths"].items() for method in item}
    assert {(method, path) for method, path, _ in contract.seen} == documented, "all exercised"


async def refusals(contract: Contract) -> None:
    """Each kind of refusal, answered in the documented errorModel."""
    await contract("GET", "/returns/nope", status=404)
    await contract("GET", "/orders/nope/history", status=404)
    await contract("GET", "/returns/nope/history?as_of=yesterday", status=400)
    await contract("POST", "/returns/nope/receive", {}, status=400)
    await contract("POST", "/returns/nope/refund", {"action": "settle"}, status=404)
    await contract("GET", "/orders/o1", status=401, headers={"Authorization": "Bearer wrong"})
    await contract("POST", "/webhooks/order-submit", {"nothing": True}, status=400)
    await contract("POST", "/webhooks/return-request-update", raw=b"{", status=400)
    await contract("POST", "/webhooks/order-submit", raw=b"x" * 300_000, status=413)
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        await contract("GET", path, status=200)
