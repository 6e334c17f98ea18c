"""Commerce is not ours alone (issue 21, SPEC section 8): what an agent does at Commerce between
our calls survives them, in both flavours; a redelivered update changes nothing.

Embedded mode against the simulator; the agent works at the simulator with no webhook following.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, web

from service.app import create_app
from service.config import Settings
from tests.commerce_sim.server import API, CommerceSimulator
from tests.conftest import free_port
from tests.e2e.scenario import SECRET, TOKEN, Driver, seed_commerce, wait_for
from tests.e2e.test_commerce_contract import CARD, credited_at_commerce, refused, return_with_order, ship

AGENT_ITEM = {
    "commerceItemId": "ci2000008",
    "shippingGroupId": "sg20005",
    "quantityToReturn": 1,
    "state": "INITIAL",
    "returnReason": "incorrectItem",
}


@asynccontextmanager
async def serving(
    db: Path, commerce_url: str, flavour: str = "classic", policy: str = ""
) -> AsyncIterator[Driver]:
    """`serve` in this process (embedded sync), with a policy file when one is given."""
    policy_path = None
    if policy:
        policy_path = db.with_suffix(".toml")
        policy_path.write_text(policy)
    settings = Settings(
        store=f"sqlite:///{db}",
        webhook_secrets=(SECRET,),
        api_token=TOKEN,
        port=free_port(),
        commerce_url=commerce_url,
        commerce_app_key="sim-app-key",
        commerce_flavour=flavour,
        policy_path=str(policy_path) if policy_path else None,
    )
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.port).start()
    try:
        async with ClientSession() as http:
            yield Driver(http, f"http://127.0.0.1:{settings.port}")
    finally:
        await runner.cleanup()


async def read(driver: Driver, path: str) -> Any:
    async with driver.http.get(driver.url + path, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait on the condition itself; the deadline only bounds a hang."""
    for _ in range(600):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def test_an_agents_state_and_item_survive_our_authorize(tmp_path: Path) -> None:
    """Issue 21 item 1: the agent sets the return INCOMPLETE and adds an item, no webhook yet;
    our authorize PUT left Commerce at our state and the agent's item was gone."""
    async with CommerceSimulator() as sim:
        seed_commerce(sim, 31)
        async with serving(tmp_path / "rf.db", sim.url) as driver:
            await ship(driver, 31)
            await driver.webhook("return-request-update", return_with_order(31))
            sim.agent_set_state("R31", "INCOMPLETE")
            sim.agent_add_return_item("R31", AGENT_ITEM)
            await driver.act("/returns/R31/authorize", {"rma": "RMA31"})
            await wait_for(lambda: sim.returns["R31"].get("authorizationNumber") == "RMA31", 30, "our PUT")
            held = sim.returns["R31"]
            assert held["state"] == "INCOMPLETE", "their state stands"
            items = {(i.get("commerceItemId"), i.get("shippingGroupId")): i for i in held["returnItemList"]}
            assert items[("ci2000008", "sg20005")]["returnReason"] == "incorrectItem", "the agent's item kept"
            assert ("ci2000007", "sg20005") in items

            async def overridden() -> bool:
                events = (await read(driver, "/returns/R31/history"))["events"]
                return any(
                    e["type"].endswith("CommerceOverridden")
                    and e["actor"] == "commerce:agent"
                    and e["to"] == "INCOMPLETE"
                    for e in events
                )

            await eventually(overridden, "the agent's change recorded as theirs")
            assert (await read(driver, "/returns/R31"))["state"] == "INCOMPLETE"
        assert sim.calls_to(f"{API}returnRequests/R31", "GET"), "read just before"
        assert refused(sim) == []


async def test_an_agents_credits_survive_without_a_webhook(tmp_path: Path) -> None:
    """Issue 21 item 2: Commerce's figure came from webhooks, whose documented samples carry no
    amountCredited, so an agent's credit was overwritten. It is read from Commerce now."""
    async with CommerceSimulator() as sim:
        seed_commerce(sim, 32)
        async with serving(tmp_path / "rf.db", sim.url) as driver:
            await ship(driver, 32)
            await driver.webhook("return-request-update", return_with_order(32, quantity=1))
            await driver.act("/returns/R32/authorize", {"rma": "RMA32"})
            await driver.act(
                "/returns/R32/receive", {"items": [{"commerceItemId": "ci2000007", "quantity": 1}]}
            )
            await driver.act("/returns/R32/refund", {"action": "initiate"})
            sim.agent_credit("o32", CARD, 5.0)
            sim.agent_credit("o32", "pg32-gift", 3.0)
            await driver.act("/returns/R32/refund", {"action": "settle"})
            await wait_for(lambda: credited_at_commerce(sim, 32) not in (0, 5.0), 30, "our credit")
            await wait_for(lambda: sim.returns["R32"]["state"] == "COMPLETE", 30, "completion")
        assert credited_at_commerce(sim, 32) == 5.0 + 130.95
        assert credited_at_commerce(sim, 32, "pg32-gift") == 3.0
        assert refused(sim) == []


async def test_a_redelivered_update_changes_nothing_whatever_came_between(tmp_path: Path) -> None:
    """Issue 21 item 3: A, then B (INCOMPLETE), then Commerce's retry of A took the return back
    (recorded as an override) and the next PUT pushed the rolled-back state to Commerce."""
    async with CommerceSimulator() as sim:
        seed_commerce(sim, 33)
        async with serving(tmp_path / "rf.db", sim.url) as driver:
            await ship(driver, 33)
            first = return_with_order(33)
            await driver.webhook("return-request-update", first)
            later = return_with_order(33)
            later["return"]["state"] = "INCOMPLETE"
            later["return"]["agentId"] = "agent-7"
            await driver.webhook("return-request-update", later)
            events = len((await read(driver, "/returns/R33/history"))["events"])
            receipt = await driver.webhook("return-request-update", first)
            assert receipt["status"] == "duplicate"
            assert len((await read(driver, "/returns/R33/history"))["events"]) == events, "nothing recorded"
            assert (await read(driver, "/returns/R33"))["state"] == "INCOMPLETE"


async def test_op_flavour_never_lets_commerce_refund_its_own_figures_over_a_fee(tmp_path: Path) -> None:
    """Issue 21 item 7: `initiateRefund` went out although no operation of that release carries
    the return fee: Commerce refunded its own figures and ignored the configured fee."""
    async with CommerceSimulator(flavour="op") as sim:
        seed_commerce(sim, 34)
        async with serving(tmp_path / "rf.db", sim.url, "op", 'return_fee = "5.00"\n') as driver:
            await driver.full(34)
            await wait_for(
                lambda: sim.returns["R34"]["state"] in ("MANUAL_REFUND", "PENDING_REFUND", "COMPLETE"),
                30,
                "the refund step at Commerce",
            )
        ops = [c.body["op"] for c in sim.puts("/ccadmin/v1/returnRequests/R34")]
        assert "initiateRefund" not in ops
        assert "markManualRefund" in ops
        assert sim.issued_refunds == [], "Commerce refunded nothing of its own"
        assert refused(sim) == []


async def test_op_flavour_sends_no_operation_over_an_agents_state(tmp_path: Path) -> None:
    """Issue 21 item 7 with item 1: an operation changes the state; none goes over an agent's."""
    async with CommerceSimulator(flavour="op") as sim:
        seed_commerce(sim, 35)
        async with serving(tmp_path / "rf.db", sim.url, "op") as driver:
            await ship(driver, 35)
            await driver.webhook("return-request-update", return_with_order(35))
            await driver.act("/returns/R35/authorize", {"rma": "RMA35"})
            sim.agent_set_state("R35", "INCOMPLETE")
            await driver.act(
                "/returns/R35/receive", {"items": [{"commerceItemId": "ci2000007", "quantity": 2}]}
            )
            await wait_for(lambda: bool(sim.calls_to(f"{API}returnRequests/R35", "GET")), 30, "the read")

            async def overridden() -> bool:
                events = (await read(driver, "/returns/R35/history"))["events"]
                return any(
                    e["type"].endswith("CommerceOverridden") and e["actor"] == "commerce:agent"
                    for e in events
                )

            await eventually(overridden, "the agent's change recorded")
        assert sim.returns["R35"]["state"] == "INCOMPLETE"
        assert sim.puts("/ccadmin/v1/returnRequests/R35") == []
