"""Property (issue 21): a whole return with an agent editing Commerce at random points loses no
agent edit, keeps Commerce's amountCredited equal to the agent's credits plus ours, and never
moves a state back; on the embedded path and through Kafka.

The agent works at the simulator, with no webhook following, right before Commerce answers one
of our GETs of the resource it edits: so every edit lands between two of our calls (an edit
between our GET and our PUT cannot be seen by anyone: the documents give no version to write
against, SPEC section 8). Which resource, whether and what it edits come from the seed.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web

from projections.commerce_bodies import ORDER_EVENTS, RETURN_EVENTS
from projections.commerce_client import CommerceClient
from projections.positions import side_database
from projections.sync import CommerceProjector, KafkaSync, SyncLedger
from service.app import create_app
from service.commerce_changes import record_commerce_changes
from service.config import Settings
from service.context import SERVICES
from tests.commerce_sim.agent import Agent as ConsoleAgent
from tests.commerce_sim.edits import Edit
from tests.commerce_sim.server import API, CommerceSimulator
from tests.conftest import free_port
from tests.e2e.scenario import SECRET, TOKEN, Driver, order_document, seed_commerce
from tests.e2e.test_commerce_contract import return_with_order
from tests.e2e.test_concurrent_writers import eventually
from tests.kafka.broker import KafkaBroker

EMBEDDED_SEEDS = 200
KAFKA_SEEDS = 200
AT_ONCE = 25
RANK = {
    "PENDING_CUSTOMER_ACTION": 0,
    "PARTIAL_RETURN": 1,
    "FULL_RETURN": 2,
    "PENDING_REFUND": 3,
    "MANUAL_REFUND": 4,
    "COMPLETE": 5,
    "INCOMPLETE": 5,
}
KINDS = {"return_state", "order_state", "add_item", "credit", "refund_method"}
MANUAL = {"refundType": "manualRefund", "amount": 0, "maximumRefundAmount": -1, "state": "INCOMPLETE"}


@dataclass
class Agent:
    """One return's agent (the simulator's `Agent`), editing a resource right before Commerce
    answers our GET of it: the return (its state to INCOMPLETE, an added item, a refund
    method's amount) or the order (a credit on any payment group, its state)."""

    sim: CommerceSimulator
    rng: random.Random
    return_id: str
    order_id: str
    edits: list[Edit] = field(default_factory=list)

    def before_get(self, resource: str) -> None:
        if self.rng.random() < 0.4:
            self.random_edit(resource)

    def random_edit(self, resource: str) -> None:
        if resource == self.order_id:
            kinds: tuple[str, ...] = self.rng.choices([("credit",), ("order_state",)], weights=[4, 1])[0]
        else:
            kinds = self.rng.choices(
                [("return_state",), ("add_item",), ("refund_method",)], weights=[1, 3, 2]
            )[0]
        if kinds == ("return_state",):
            self.edits.append(self.sim.agent_set_state(self.return_id, "INCOMPLETE"))
            return
        console = ConsoleAgent(self.sim, self.rng, kinds)
        self.edits.append(console.random_edit(self.return_id, self.order_id))

    def lost_edits(self, ours: dict[str, Decimal]) -> list[Edit]:
        return self.sim.lost_agent_edits(self.edits, ours)

    def credits(self) -> dict[str, Decimal]:
        sums: dict[str, Decimal] = {}
        for edit in self.edits:
            if edit.kind == "credit":
                group = edit.target.split(":", 1)[1]
                sums[group] = sums.get(group, Decimal(0)) + edit.amount
        return sums


class AgentsAtCommerce(CommerceSimulator):
    """The simulator with each return's agent called before a GET of its return or order, and
    every return state Commerce held at those moments recorded."""

    agents: dict[str, Agent]
    seen_states: dict[str, list[str]]
    credit_checks: list[str]
    ledger: SyncLedger | None

    async def _get(self, request: web.Request) -> web.Response:
        resource = request.match_info["id"]
        agent = self.agents.get(resource)
        if agent is not None:
            self._observe(agent, resource)
            agent.before_get(resource)
        return await super()._get(request)

    def _observe(self, agent: Agent, resource: str) -> None:
        if resource == agent.return_id:
            self.seen_states.setdefault(resource, []).append(self.returns[resource]["state"])
        elif self.ledger is not None:
            problem = credit_mismatch(self, agent, self.ledger.credits.applied(resource))
            if problem:
                self.credit_checks.append(problem)


def new_simulator() -> AgentsAtCommerce:
    sim = AgentsAtCommerce()
    sim.agents, sim.seen_states, sim.credit_checks, sim.ledger = {}, {}, [], None
    return sim


def credit_mismatch(sim: CommerceSimulator, agent: Agent, ours: dict[tuple[str, str], Decimal]) -> str | None:
    """Commerce's amountCredited per group against the agent's credits plus ours applied."""
    agents = agent.credits()
    for group in sim.orders[agent.order_id]["paymentGroups"]:
        mine = sum((a for (_, g), a in ours.items() if g == group["id"]), Decimal(0))
        want = agents.get(group["id"], Decimal(0)) + mine
        if Decimal(str(group.get("amountCredited") or 0)) != want:
            return f"{agent.order_id}/{group['id']}: Commerce {group.get('amountCredited')} != {want}"
    return None


async def act(driver: Driver, path: str, body: Any) -> None:
    """An operator action; 409 once the return is final (the agent closed it)."""
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Operator": "property"}
    async with driver.http.post(driver.url + path, json=body, headers=headers) as r:
        assert r.status in (200, 409), await r.text()


async def get(driver: Driver, path: str) -> Any:
    async with driver.http.get(driver.url + path, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def whole_return(driver: Driver, sim: AgentsAtCommerce, n: int) -> None:
    receive = {"items": [{"commerceItemId": "ci2000007", "quantity": 1}]}
    await driver.webhook("order-submit", order_document(n))
    await act(driver, f"/orders/o{n}/shipments", {"shippingGroupId": "sg20005", "trackingNumber": f"1Z{n}"})
    await driver.webhook("return-request-update", return_with_order(n, methods=[MANUAL]))
    await act(driver, f"/returns/R{n}/authorize", {"rma": f"RMA{n}"})
    await act(driver, f"/returns/R{n}/receive", receive)
    await act(driver, f"/returns/R{n}/receive", receive)
    await act(driver, f"/returns/R{n}/refund", {"action": "initiate"})
    await act(driver, f"/returns/R{n}/refund", {"action": "settle"})


async def synced(driver: Driver, ledger: SyncLedger, n: int) -> bool:
    """The ledger has applied every event of the return and its order that the sync sends."""
    for subject, kind in ((f"R{n}", "returns"), (f"o{n}", "orders")):
        events = (await get(driver, f"/{kind}/{subject}/history"))["events"]
        for event in events:
            if event["type"] not in RETURN_EVENTS | ORDER_EVENTS:
                continue
            operation = _operation(event["type"])
            last = await asyncio.to_thread(ledger.last, subject, operation)
            if last is None or last[0] < event["version"]:
                return False
    return True


def _operation(event_type: str) -> str:
    if event_type == "Order.Shipped":
        return "updateOrder:shipment"
    if event_type == "Order.Credited":
        return "updateOrder:credit"
    return "updateReturnRequest"


async def check(driver: Driver, sim: AgentsAtCommerce, ledger: SyncLedger, n: int) -> list[str]:
    await eventually(lambda: synced(driver, ledger, n), f"R{n} synced")
    agent = sim.agents[f"R{n}"]
    ours = (await get(driver, f"/orders/o{n}")).get("creditsByReturn") or {}
    applied = {(r, g): Decimal(a) for r, groups in ours.items() for g, a in groups.items()}
    by_group: dict[str, Decimal] = {}
    for (_, group), amount in applied.items():
        key = f"orders/o{n}/{group}"
        by_group[key] = by_group.get(key, Decimal(0)) + amount
    problems = [f"R{n} lost {e.describe()}" for e in agent.lost_edits(by_group)]
    mismatch = credit_mismatch(sim, agent, applied)
    if mismatch:
        problems.append(mismatch)
    states = [*sim.seen_states.get(f"R{n}", []), sim.returns[f"R{n}"]["state"]]
    if any(RANK[b] < RANK[a] or (RANK[a] == 5 and a != b) for a, b in itertools.pairwise(states)):
        problems.append(f"R{n} state went back: {states}")
    return problems


async def run_seeds(driver: Driver, sim: AgentsAtCommerce, ledger: SyncLedger, seeds: range) -> list[str]:
    async def one(seed: int) -> list[str]:
        n = 1000 + seed
        seed_commerce(sim, n)
        sim.agent_add_refund_method(f"R{n}", dict(MANUAL))
        agent = Agent(sim, random.Random(seed), f"R{n}", f"o{n}")
        sim.agents[f"R{n}"] = sim.agents[f"o{n}"] = agent
        await whole_return(driver, sim, n)
        return await check(driver, sim, ledger, n)

    problems: list[str] = []
    for start in range(seeds.start, seeds.stop, AT_ONCE):
        batch = range(start, min(start + AT_ONCE, seeds.stop))
        for found in await asyncio.gather(*(one(seed) for seed in batch)):
            problems.extend(found)
    return [*problems, *sim.credit_checks]


@asynccontextmanager
async def serving(
    db: Path, sim_url: str, bootstrap: str | None = None
) -> AsyncIterator[tuple[Driver, web.Application]]:
    settings = Settings(
        store=f"sqlite:///{db}",
        kafka_bootstrap=bootstrap,
        webhook_secrets=(SECRET,),
        api_token=TOKEN,
        port=free_port(),
        commerce_url=sim_url,
        commerce_app_key="sim-app-key",
    )
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.port).start()
    try:
        async with ClientSession() as http:
            yield Driver(http, f"http://127.0.0.1:{settings.port}"), app
    finally:
        await runner.cleanup()


def edit_kinds(sim: AgentsAtCommerce) -> set[str]:
    return {e.kind for a in sim.agents.values() for e in a.edits}


async def test_agent_edits_survive_a_whole_return_embedded(tmp_path: Path) -> None:
    sim = new_simulator()
    async with sim:
        db = tmp_path / "rf.db"
        ledger = SyncLedger(side_database(f"sqlite:///{db}"))
        sim.ledger = ledger
        async with serving(db, sim.url) as (driver, _):
            problems = await run_seeds(driver, sim, ledger, range(EMBEDDED_SEEDS))
        ledger.close()
    assert problems == [], "\n".join(problems)
    assert edit_kinds(sim) == KINDS, "every kind of edit was made"
    assert not [c for c in sim.calls_to(API, "PUT") if c.status != 200]


@pytest.mark.kafka
async def test_agent_edits_survive_a_whole_return_through_kafka(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    events, dlq, group = f"prop.{tag}.events", f"prop.{tag}.dlq", f"prop-{tag}"
    sim = new_simulator()
    async with sim:
        ledger = SyncLedger(str(tmp_path / "ledger.db"))
        sim.ledger = ledger
        with pytest.MonkeyPatch.context() as env:
            env.setenv("RETURNFLOW_EVENTS_TOPIC", events)
            env.setenv("RETURNFLOW_DLQ_TOPIC", dlq)
            async with serving(tmp_path / "rf.db", sim.url, kafka_broker.bootstrap) as (driver, app):
                client = CommerceClient(sim.url, sim.app_key)
                writer = app[SERVICES].writer
                projector = CommerceProjector(client, ledger, on_conflict=record_commerce_changes(writer))
                consumer = KafkaSync(
                    kafka_broker.bootstrap, projector, topic=events, dlq_topic=dlq, group_id=group
                )
                stop = asyncio.Event()
                task = asyncio.create_task(consumer.run(stop))
                try:
                    problems = await run_seeds(driver, sim, ledger, range(KAFKA_SEEDS))
                finally:
                    stop.set()
                    await asyncio.wait_for(task, 20)
                    await client.close()
        ledger.close()
    assert problems == [], "\n".join(problems)
    assert edit_kinds(sim) == KINDS
