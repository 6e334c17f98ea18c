"""Three `returnflow serve` replicas on one PostgreSQL store, driven through all of them at once,
one killed with SIGKILL mid-stream (issue 17's acceptance test).

What a load balancer in front of them would do is done here by the client: a request
whose connection fails is sent again to another replica. Every webhook goes to all
three at once (Commerce's retries and duplicates, concurrently); each return's units
are received one request each, concurrently, through different replicas. Shown at
the end: no 5xx, every acknowledged write in the store, receipts exact, every return
COMPLETE at Commerce, no PUT going back, each projection step sent once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import ClientError, ClientSession

from domain.identity import return_uuid
from domain.returns import ReturnRequest
from projections.positions import side_database
from projections.sync import SyncLedger
from service.store import open_store
from tests.commerce_sim.server import CommerceSimulator
from tests.commerce_sim.webhook_sender import sign
from tests.e2e.scenario import SECRET, TOKEN, commerce_done, order_document, return_document, seed_commerce
from tests.integration.test_cluster_serve import Replica, assert_no_put_regressed, replicas, wait_for
from tests.postgres.plugin import new_database
from tests.postgres.server import PostgresServer
from tests.serve_process import process_tree

RETURNS = range(1, 25)
UNITS = 2
"""Each return's units (the seed line has 2), received one request each."""


@dataclass
class Tally:
    statuses: list[int] = field(default_factory=list)
    retried: int = 0
    refused_as_done: int = 0
    acknowledged: list[str] = field(default_factory=list)


class Cluster:
    """Requests to a chosen replica; a failed connection goes to the next one (as a load
    balancer that has not noticed the death yet)."""

    def __init__(self, http: ClientSession, members: list[Replica]) -> None:
        self.http, self.members, self.tally = http, members, Tally()

    async def send(self, first: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        for attempt in range(12):
            replica = self.members[(first + attempt) % len(self.members)]
            try:
                async with self.http.post(replica.url + path, data=body, headers=headers) as r:
                    answer = await r.json()
                    self.tally.statuses.append(r.status)
                    return r.status, answer
            except (TimeoutError, ClientError, ConnectionError):
                self.tally.retried += 1
                await asyncio.sleep(0.05)
        raise AssertionError(f"no replica answered {path}")

    async def webhook_everywhere(self, path: str, document: Any) -> list[str]:
        body = orjson.dumps(document)
        headers = {"X-Oracle-CC-WebHook-Signature": sign(body, SECRET)}
        answers = await asyncio.gather(
            *(self.send(i, f"/webhooks/{path}", body, headers) for i in range(len(self.members)))
        )
        assert [status for status, _ in answers] == [200] * len(answers), answers
        return [answer.get("status") for _, answer in answers]

    async def act(
        self, first: int, path: str, body: Any, resource: str, done: Callable[[dict[str, Any]], bool]
    ) -> None:
        """An operator action. A 409 records nothing; it is accepted only when the resource
        already shows the effect (an earlier attempt committed before its replica died, or a
        concurrent receipt took the last unit)."""
        headers = {"Authorization": f"Bearer {TOKEN}", "X-Operator": "cluster"}
        status, answer = await self.send(first, path, orjson.dumps(body), headers)
        if status == 409:
            self.tally.refused_as_done += 1
            assert done(await self.read(first, resource)), (path, answer)
            return
        assert status == 200, (path, status, answer)
        self.tally.acknowledged.append(path)

    async def read(self, first: int, path: str) -> dict[str, Any]:
        for attempt in range(len(self.members)):
            replica = self.members[(first + attempt) % len(self.members)]
            try:
                async with self.http.get(
                    replica.url + path, headers={"Authorization": f"Bearer {TOKEN}"}
                ) as r:
                    return dict(await r.json())
            except (ClientError, ConnectionError):
                continue
        raise AssertionError(f"no replica answered GET {path}")


def kill_outright(pid: int) -> None:
    """SIGKILL to the replica and its workers at once, as when its machine or container dies."""
    for each in process_tree(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(each, signal.SIGKILL)


def received(doc: dict[str, Any]) -> int:
    return sum(int(i["quantityReceived"]) for i in doc["returnItemList"])


async def one_return(cluster: Cluster, n: int) -> None:
    order, ret = f"/orders/o{n}", f"/returns/R{n}"
    created = await cluster.webhook_everywhere("order-submit", order_document(n))
    assert created.count("created") == 1, created
    await cluster.act(
        n,
        f"{order}/shipments",
        {"shippingGroupId": "sg20005", "trackingNumber": f"1Z{n}"},
        order,
        lambda d: d["state"] == "NO_PENDING_ACTION",
    )
    created = await cluster.webhook_everywhere("return-request-update", return_document(n))
    assert created.count("created") == 1, created
    await cluster.act(
        n + 1,
        f"{ret}/authorize",
        {"rma": f"RMA{n}"},
        ret,
        lambda d: all(i["state"] == "AWAITING_RETURN" for i in d["returnItemList"]),
    )
    await asyncio.gather(
        *(
            cluster.act(
                n + unit,
                f"{ret}/receive",
                {"items": [{"commerceItemId": "ci2000007", "quantity": 1}]},
                ret,
                lambda d: received(d) == UNITS,
            )
            for unit in range(UNITS)
        )
    )
    await cluster.act(
        n + 2,
        f"{ret}/refund",
        {"action": "initiate"},
        ret,
        lambda d: d["state"] in ("PENDING_REFUND", "COMPLETE"),
    )
    await cluster.act(n, f"{ret}/refund", {"action": "settle"}, ret, lambda d: d["state"] == "COMPLETE")


async def test_three_replicas_survive_a_sigkill_mid_stream(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    store_url = new_database(postgres_server)
    open_store(store_url).close()
    async with CommerceSimulator(latency_ms=20) as sim:
        for n in RETURNS:
            seed_commerce(sim, n)
        async with replicas(store_url, sim, tmp_path, 3) as members, ClientSession() as http:
            cluster = Cluster(http, members)
            await wait_for(lambda: any(r.holds_sync() for r in members), 15, "a sync lease holder")
            holder = next(r for r in members if r.holds_sync())
            work = [asyncio.create_task(one_return(cluster, n)) for n in RETURNS]
            await wait_for(lambda: len(cluster.tally.acknowledged) >= 12, 60, "work under way")
            kill_outright(holder.process.pid)
            killed_at = time.monotonic()
            await asyncio.gather(*work)
            survivors = [r for r in members if r is not holder]
            await wait_for(lambda: any(r.holds_sync() for r in survivors), 15, "a survivor syncing")
            assert time.monotonic() - killed_at < 15
            await wait_for(lambda: all(commerce_done(sim, n) for n in RETURNS), 90, "Commerce settled")
            for n in RETURNS:
                history = (await cluster.read(0, f"/returns/R{n}/history"))["events"]
                recorded = [e for e in history if e["actor"] == "operator:cluster"]
                acked = [p for p in cluster.tally.acknowledged if p.startswith(f"/returns/R{n}/")]
                assert len(recorded) >= len(acked), f"R{n}: an acknowledged action is missing"

    statuses = cluster.tally.statuses
    assert not [s for s in statuses if s >= 500], f"5xx answers: {[s for s in statuses if s >= 500]}"
    assert cluster.tally.retried > 0, "the kill was felt mid-stream"
    print(
        f"{len(statuses)} answers, {cluster.tally.retried} connections failed over, "
        f"{len(cluster.tally.acknowledged)} operator actions acknowledged, "
        f"{cluster.tally.refused_as_done} refused as already done"
    )
    store = open_store(store_url)
    try:
        for n in RETURNS:
            ret = store.repository.get(return_uuid(f"R{n}"))
            assert isinstance(ret, ReturnRequest)
            assert (ret.state, ret.items[0]["quantityReceived"]) == ("COMPLETE", UNITS), f"R{n}"
    finally:
        store.close()
    assert_no_put_regressed(sim, RETURNS)
    ledger = SyncLedger(side_database(store_url))
    try:
        for n in RETURNS:
            sent = [(c["path"], c["version"]) for c in ledger.calls_for(f"R{n}")]
            assert sent and len(sent) == len(set(sent)), f"R{n}: each state projected once: {sent}"
    finally:
        ledger.close()
