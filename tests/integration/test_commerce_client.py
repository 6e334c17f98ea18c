"""The Admin API client against the simulator over real loopback HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from projections.commerce_client import CommerceClient, CommerceUnavailable, to_json_bytes
from tests.commerce_sim.server import CommerceSimulator

ORDER = {"id": "o1", "state": "SUBMITTED",
         "paymentGroups": [{"id": "pg1", "amountCredited": 0}, {"id": "pg2", "amountCredited": 0}],
         "shippingGroups": [{"id": "sg1", "state": "INITIAL"}]}


@pytest.fixture
async def sim() -> AsyncIterator[CommerceSimulator]:
    async with CommerceSimulator(app_key="key", token_ttl_s=300) as simulator:
        simulator.seed_order(ORDER)
        simulator.seed_return({"id": "r1", "state": "PENDING_CUSTOMER_ACTION",
                               "returnItemList": [{"id": "ri1", "state": "INITIAL"}]})
        yield simulator


def client(sim: CommerceSimulator, **kw: object) -> CommerceClient:
    options: dict[str, object] = {"backoff_base_s": 0.01, "backoff_cap_s": 0.05, "max_attempts": 4}
    options.update(kw)
    return CommerceClient(sim.url, "key", **options)  # type: ignore[arg-type]


async def test_one_login_serves_many_calls(sim: CommerceSimulator) -> None:
    c = client(sim)
    for state in ("PROCESSING", "NO_PENDING_ACTION", "NO_PENDING_ACTION"):
        outcome = await c.update_order("o1", {"state": state})
        assert outcome.ok and outcome.attempts == 1
    await c.close()
    assert sim.logins == 1
    assert sim.orders["o1"]["state"] == "NO_PENDING_ACTION"


async def test_wrong_app_key_is_unavailable_not_a_crash(sim: CommerceSimulator) -> None:
    c = CommerceClient(sim.url, "wrong", max_attempts=2, backoff_base_s=0.01)
    with pytest.raises(CommerceUnavailable):
        await c.update_order("o1", {"state": "PROCESSING"})
    await c.close()


async def test_expired_token_gets_a_new_one(sim: CommerceSimulator) -> None:
    sim.token_ttl_s = 0.3
    c = client(sim, refresh_margin_s=0.1)
    assert (await c.update_order("o1", {"state": "PROCESSING"})).ok
    await asyncio.sleep(0.4)
    assert (await c.update_order("o1", {"state": "NO_PENDING_ACTION"})).ok
    await c.close()
    assert sim.logins == 2


async def test_token_revoked_mid_stream_relogs_in(sim: CommerceSimulator) -> None:
    c = client(sim)
    assert (await c.update_order("o1", {"state": "PROCESSING"})).ok
    sim.expire_tokens()
    outcome = await c.update_order("o1", {"state": "NO_PENDING_ACTION"})
    await c.close()
    assert outcome.ok and outcome.attempts == 1
    assert sim.logins == 2


async def test_429_with_retry_after_then_success(sim: CommerceSimulator) -> None:
    sim.fail_next(429, 2, prefix="/ccadmin/v1/orders", retry_after=0.05)
    c = client(sim)
    outcome = await c.update_order("o1", {"state": "PROCESSING"})
    await c.close()
    assert (outcome.ok, outcome.attempts) == (True, 3)
    assert outcome.elapsed_ms >= 100


async def test_503_three_times_then_success(sim: CommerceSimulator) -> None:
    sim.fail_next(503, 3, prefix="/ccadmin/v1/orders")
    c = client(sim)
    outcome = await c.update_order("o1", {"state": "PROCESSING"})
    await c.close()
    assert (outcome.ok, outcome.attempts) == (True, 4)


async def test_persistent_500_is_unavailable(sim: CommerceSimulator) -> None:
    sim.fail_next(500, 100, prefix="/ccadmin/v1/orders")
    c = client(sim)
    with pytest.raises(CommerceUnavailable):
        await c.update_order("o1", {"state": "PROCESSING"})
    await c.close()
    assert len([x for x in sim.calls if x.method == "PUT"]) == 4


async def test_400_is_dead_lettered_without_retry(sim: CommerceSimulator) -> None:
    sim.fail_next(400, 1, prefix="/ccadmin/v1/returnRequests", code="INVALID_STATE")
    c = client(sim)
    outcome = await c.update_return_request("r1", {"state": "COMPLETE"})
    await c.close()
    assert (outcome.ok, outcome.attempts, outcome.status) == (False, 1, 400)
    assert outcome.dead_letter_reason is not None and "INVALID_STATE" in outcome.dead_letter_reason


async def test_timeouts_are_retried(sim: CommerceSimulator) -> None:
    sim.latency_ms = 300
    c = client(sim, timeout_s=0.1, max_attempts=2)
    with pytest.raises(CommerceUnavailable):
        await c.update_order("o1", {"state": "PROCESSING"})
    sim.latency_ms = 0
    assert (await c.update_order("o1", {"state": "PROCESSING"})).ok
    await c.close()


async def test_money_is_sent_digit_for_digit(sim: CommerceSimulator) -> None:
    assert to_json_bytes({"a": Decimal("80.41"), "b": [Decimal("0.10")]}) == b'{"a":80.41,"b":[0.10]}'
    c = client(sim)
    await c.update_order("o1", {"paymentGroups": [{"id": "pg1", "amountCredited": Decimal("80.41")},
                                                  {"id": "pg2", "amountCredited": Decimal("0")}]})
    await c.close()
    assert sim.orders["o1"]["paymentGroups"][0]["amountCredited"] == 80.41


async def test_simulator_replaces_lists_like_commerce(sim: CommerceSimulator) -> None:
    """A PUT that leaves a payment group out deletes it: the bug our bodies must not have."""
    c = client(sim)
    await c.update_order("o1", {"paymentGroups": [{"id": "pg1", "amountCredited": 5}]})
    assert [p["id"] for p in sim.orders["o1"]["paymentGroups"]] == ["pg1"]
    assert sim.orders["o1"]["shippingGroups"] == [{"id": "sg1", "state": "INITIAL"}]
    await c.update_order("o1", {"shippingGroups": []})
    assert sim.orders["o1"]["shippingGroups"] == []
    missing = await c.update_order("o404", {"state": "X"})
    assert (missing.status, missing.ok) == (404, False)
    await c.close()
