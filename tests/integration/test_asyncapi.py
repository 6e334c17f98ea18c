"""The AsyncAPI document cannot drift from the domain's events or from the messages built."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from eventsourcing.domain import DomainEvent
from jsonschema import Draft7Validator, Draft202012Validator

from domain.orders import Order
from domain.returns import ReturnRequest
from projections.cloudevents import StateFolder
from projections.relay import cloudevents_page
from service.api_description import document
from tests.conftest import RunningService
from tests.contracts.asyncapi import TYPE_PREFIX, problems, spec
from tests.integration.test_operator_api import act, return_update, shipped_order, validation, webhook

RENAMED = {"source": "from", "target": "to"}
HIDDEN = {"snapshot", "fingerprint"}
COMMON = {"version", "time", "type"}


def domain_events() -> dict[str, type[DomainEvent]]:
    return {
        cls.__qualname__: cls
        for aggregate in (Order, ReturnRequest)
        for name, cls in vars(aggregate).items()
        if isinstance(cls, type) and issubclass(cls, DomainEvent) and name not in ("Event", "Created")
    }


def test_every_event_type_has_a_message_with_exactly_its_fields() -> None:
    messages = {m["name"]: m for m in spec()["components"]["messages"].values()}
    events = domain_events()
    assert set(messages) - {"DeadLetter"} == {TYPE_PREFIX + q for q in events}
    schemas = spec()["components"]["schemas"]
    for qualname, cls in events.items():
        described = schemas[qualname.replace(".", "") + "Event"]["properties"]
        fields = {RENAMED.get(f, f) for f in cls.__annotations__ if f not in HIDDEN} | COMMON
        if qualname in ("Order.Submitted", "ReturnRequest.Received"):
            fields.add("originator_topic")
        assert set(described) == fields, f"{qualname}: update service/contracts/asyncapi.json"


def test_the_resource_states_are_the_http_apis() -> None:
    openapi = orjson.loads(document("openapi.json"))["components"]["schemas"]
    for name in ("Order", "Return", "ReturnItem"):
        assert spec()["components"]["schemas"][name] == openapi[name]


def test_the_document_is_valid_asyncapi_3() -> None:
    """Against the official AsyncAPI 3.0.0 JSON Schema (tests/contracts/asyncapi-3.0.0.schema.json,
    from the npm package @asyncapi/specs 6.11.1, schemas/3.0.0-without-$id.json, Apache-2.0)."""
    official = json.loads(
        (Path(__file__).parents[1] / "contracts" / "asyncapi-3.0.0.schema.json").read_text()
    )
    assert not [e.message for e in Draft7Validator(official).iter_errors(spec())]
    broken = {**spec(), "operations": {"x": {"action": "publish", "channel": {"$ref": "#/channels/events"}}}}
    assert list(Draft7Validator(official).iter_errors(broken)), "the official schema does catch mistakes"


def test_every_schema_is_valid_json_schema_and_every_reference_resolves() -> None:
    document_ = spec()
    assert document_["asyncapi"].startswith("3.")
    for schema in document_["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return ([node["$ref"]] if "$ref" in node else []) + [r for v in node.values() for r in refs(v)]
        return [r for v in node for r in refs(v)] if isinstance(node, list) else []

    for ref in refs(document_):
        target: Any = document_
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
    assert {c["address"] for c in document_["channels"].values()} == {
        "returnflow.events",
        "returnflow.commerce.dlq",
    }


async def test_the_messages_of_a_whole_return_match_the_document(service: RunningService) -> None:
    await shipped_order(service)
    for context in ("Initiate_Return", "CalculateRefund_Return", "Submit_Return"):
        await webhook(service, "return-request-validation", validation(context, 2))
    await webhook(service, "return-request-update", return_update("R1"))
    for path, body in (
        ("authorize", {"rma": "RMA1"}),
        ("receive", {"items": [{"commerceItemId": "ci2000007", "quantity": 1}]}),
        ("receive", {"items": [{"commerceItemId": "ci2000007", "quantity": 1}]}),
        ("refund", {"action": "initiate"}),
        ("refund", {"action": "settle"}),
    ):
        assert (await act(service, f"/returns/R1/{path}", body))[0] == 200
    await webhook(service, "return-request-update", return_update("R2", quantity=1))
    assert (await act(service, "/returns/R2/close", {"reason": "never came"}))[0] == 200
    store = service.services.store
    page = cloudevents_page(store, StateFolder(store), 0, 1000)
    seen = {m["type"] for m in page.messages}
    assert len(seen) >= 11, seen
    for message in page.messages:
        assert problems(orjson.loads(orjson.dumps(message)), "events") == []
    assert problems({"type": "com.returnflow.Order.Invented"}, "events")
