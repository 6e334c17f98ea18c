"""The README's "Try it" flow on the example payloads, and Commerce data that does not add up.

Issue 13 item 8: the seed's originating order says returnedQuantity 2 of quantity 1, and the
refund was answered `already_returned['ci3000439'] must be an int >= 0, got -1`.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from service.cli import main
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


README = Path(__file__).resolve().parents[2] / "README.md"
CURL = re.compile(
    r"curl -s (?P<post>-XPOST )?localhost:8080(?P<path>\S+)(?P<headers>(?:\s+-H '[^']+')*)"
    r"(?:\s+-d '(?P<body>[^']*)'|\s+-d @(?P<file>[^\s`]+))?"
)


def try_it_commands(heading: str = "Try it") -> list[dict[str, Any]]:
    """Every curl of a README section ("Try it" by default), continuation lines joined, in order."""
    text = README.read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    joined = re.sub(r"\\\n\s*", " ", section)
    return [m.groupdict() for m in CURL.finditer(joined)]


async def run_command(service: RunningService, command: dict[str, Any]) -> tuple[int, Any]:
    """The README's curl, signed and authorized as the test service requires."""
    path = command["path"]
    if not command["post"]:
        return 200, await get(service, path)
    body = example(Path(command["file"]).name) if command["file"] else orjson.loads(command["body"])
    if path.startswith("/webhooks/"):
        return await webhook(service, path.removeprefix("/webhooks/"), body)
    operator = re.search(r"X-Operator: ([^']+)", command["headers"] or "")
    return await act(service, path, body, operator.group(1) if operator else "readme")


async def test_the_readme_try_it_commands_tell_the_truth(
    service: RunningService, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = [c for c in try_it_commands() if not c["path"].endswith("/close")]
    assert next(c["path"] for c in commands if c["post"]) == "/webhooks/return-request-update"
    for command in commands:
        status, answer = await run_command(service, command)
        assert status == 200, (command, answer)
    order = await get(service, "/orders/o30430")
    assert order["paymentGroups"][0]["amountCredited"] == "63.75"
    assert (await get(service, "/returns/100003"))["state"] == "COMPLETE"
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["audit", "100003", "--store", service.store]) == 0
    printed = capsys.readouterr().out
    text = README.read_text(encoding="utf-8")
    shown = text.split("State:\n", 1)[1].split("```", 1)[0].strip()
    assert shown in printed, "the README's audit sample shows today's state and refund"
    assert "return 100003 (version 5)" in printed and "return 100003 (version 5)" in text


async def test_the_readme_exchange_commands_tell_the_truth(service: RunningService) -> None:
    """The README's exchange, after its return story: even, so COMPLETE by itself, nothing credited,
    a refund action refused in words, and the replacement order an order of its own."""
    for command in [c for c in try_it_commands() if not c["path"].endswith("/close")]:
        assert (await run_command(service, command))[0] == 200, command
    exchange = try_it_commands("An exchange")
    assert next(c["path"] for c in exchange if c["post"]) == "/webhooks/return-request-update"
    for command in exchange:
        status, answer = await run_command(service, command)
        if command["path"] == "/returns/100004/refund":
            assert (status, answer["errorCode"]) == (409, "NO_REFUND_OWED"), answer
            assert "no refund owed on exchange 100004" in answer["message"]
        else:
            assert status == 200, (command, answer)
    assert (await get(service, "/returns/100004"))["state"] == "COMPLETE"
    replacement = await get(service, "/orders/o30431")
    assert replacement["exchangeOf"]["orderId"] == "o30430"
    assert replacement["state"] != "SUBMITTED", "the README ships the replacement"
    original = await get(service, "/orders/o30430")
    assert [link["orderId"] for link in original["replacementOrders"]] == ["o30431"]
    assert original["paymentGroups"][0]["amountCredited"] == "63.75", "the exchange credits nothing"


async def test_the_readme_close_example_closes(service: RunningService) -> None:
    (close,) = [c for c in try_it_commands() if c["path"].endswith("/close")]
    assert (await webhook(service, "return-request-update", example("return-request-update.json")))[0] == 200
    assert (await act(service, "/returns/100003/authorize", {"rma": "RMA-100003"}))[0] == 200
    status, answer = await run_command(service, close)
    assert (status, answer["state"]) == (200, "INCOMPLETE")
