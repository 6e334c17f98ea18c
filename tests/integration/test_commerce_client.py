"""The Admin API client against the simulator over real loopback HTTP."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import structlog.testing
from aiohttp import ClientSession

from projections.commerce_client import (
    CallOutcome,
    CommerceClient,
    CommerceUnavailable,
    is_retriable,
    to_json_bytes,
)
from tests.commerce_sim.server import CommerceSimulator

KEY = "key"
ORDER = {
    "id": "o1",
    "state": "SUBMITTED",
    "paymentGroups": [{"id": "pg1", "amountCredited": 0}, {"id": "pg2", "amountCredited": 0}],
    "shippingGroups": [{"id": "sg1", "state": "INITIAL"}],
}
ORDERS = "/ccadmin/v1/orders"


@pytest.fixture
async def sim() -> AsyncIterator[CommerceSimulator]:
    async with CommerceSimulator(app_key=KEY, token_ttl_s=300) as simulator:
        simulator.seed_order(ORDER)
        simulator.seed_return(
            {
                "id": "r1",
                "state": "PENDING_CUSTOMER_ACTION",
                "returnItemList": [{"id": "ri1", "state": "INITIAL"}],
            }
        )
        yield simulator


@pytest.fixture
async def make_client(sim: CommerceSimulator) -> AsyncIterator[Any]:
    clients: list[CommerceClient] = []

    def make(**options: Any) -> CommerceClient:
        settings: dict[str, Any] = {
            "backoff_base_s": 0.01,
            "backoff_cap_s": 0.05,
            "max_attempts": 4,
            "timeout_s": 2.0,
        }
        settings.update(options)
        client = CommerceClient(sim.url, settings.pop("app_key", KEY), **settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def put_statuses(sim: CommerceSimulator, prefix: str = ORDERS) -> list[int]:
    return [c.status for c in sim.calls_to(prefix, "PUT")]


# --- tokens -----------------------------------------------------------------------------------------


async def test_one_login_serves_many_calls(sim: CommerceSimulator, make_client: Any) -> None:
    c = make_client()
    for state in ("PROCESSING", "NO_PENDING_ACTION", "NO_PENDING_ACTION"):
        outcome = await c.update_order("o1", {"state": state})
        assert outcome.ok and outcome.attempts == 1 and outcome.status == 200
        assert outcome.response["state"] == state
    await asyncio.gather(
        *(c.update_return_request("r1", {"state": "PENDING_CUSTOMER_ACTION"}) for _ in range(20))
    )
    assert (sim.logins, sim.refreshes) == (1, 0)
    assert sim.orders["o1"]["state"] == "NO_PENDING_ACTION"


async def test_concurrent_first_calls_share_one_login(sim: CommerceSimulator, make_client: Any) -> None:
    c = make_client()
    outcomes = await asyncio.gather(*(c.update_order("o1", {"state": "PROCESSING"}) for _ in range(10)))
    assert all(o.ok for o in outcomes)
    assert sim.logins == 1


async def test_explicit_login(sim: CommerceSimulator, make_client: Any) -> None:
    c = make_client()
    await c.login()
    assert sim.logins == 1
    assert (await c.update_order("o1", {"state": "PROCESSING"})).ok
    assert sim.logins == 1


async def test_refreshes_shortly_before_expiry(sim: CommerceSimulator, make_client: Any) -> None:
    """expires_in 300 and a 30 s margin: at 280 s the token is refreshed, not replaced by a login."""
    clock = FakeClock()
    c = make_client(clock=clock)
    assert (await c.update_order("o1", {"state": "PROCESSING"})).ok
    clock.now += 260
    assert (await c.update_order("o1", {"state": "PROCESSING"})).ok
    assert (sim.logins, sim.refreshes) == (1, 0)
    clock.now += 20
    assert (await c.update_order("o1", {"state": "PROCESSING"})).ok
    assert (sim.logins, sim.refreshes) == (1, 1)
    assert put_statuses(sim) == [200, 200, 200], "no call was made with a dying token"


async def test_short_lived_tokens_refresh_at_a_fifth_of_their_life(
    sim: CommerceSimulator, make_client: Any
) -> None:
    sim.token_ttl_s = 1
    clock = FakeClock()
    c = make_client(clock=clock)
    await c.login()
    clock.now += 0.7
    assert (await c.update_order("o1", {"state": "PROCESSING"})).ok
    assert sim.refreshes == 0
    clock.now += 0.15
    assert (await c.update_order("o1", {"state": "PROCESSING"})).ok
    assert sim.refreshes == 1


async def test_expired_token_means_a_new_login(sim: CommerceSimulator, make_client: Any) -> None:
    sim.token_ttl_s = 1
    c = make_client()
    assert (await c.update_order("o1", {"state": "PROCESSING"})).ok
    await asyncio.sleep(1.05)
    outcome = await c.update_order("o1", {"state": "NO_PENDING_ACTION"})
    assert outcome.ok and outcome.attempts == 1
    assert (sim.logins, sim.refreshes) == (2, 0)
    assert 401 not in put_statuses(sim)


async def test_401_mid_stream_logs_in_again_and_succeeds(sim: CommerceSimulator, make_client: Any) -> None:
    c = make_client()
    assert (await c.update_order("o1", {"state": "PROCESSING"})).ok
    sim.expire_tokens()
    outcome = await c.update_order("o1", {"state": "NO_PENDING_ACTION"})
    assert outcome.ok and outcome.attempts == 2
    assert put_statuses(sim) == [200, 401, 200]
    assert sim.logins == 2
    assert sim.orders["o1"]["state"] == "NO_PENDING_ACTION"


async def test_failed_refresh_falls_back_to_login(sim: CommerceSimulator, make_client: Any) -> None:
    clock = FakeClock()
    c = make_client(clock=clock)
    await c.login()
    sim.expire_tokens()
    clock.now += 290
    assert (await c.update_order("o1", {"state": "PROCESSING"})).ok
    assert [(x.path.rsplit("/", 1)[-1], x.status) for x in sim.calls] == [
        ("login", 200),
        ("refresh", 401),
        ("login", 200),
        ("o1", 200),
    ]


async def test_401_even_after_a_fresh_login_is_unavailable_not_dead(
    sim: CommerceSimulator, make_client: Any
) -> None:
    sim.fail_next(401, 5, prefix=ORDERS)
    c = make_client()
    with pytest.raises(CommerceUnavailable):
        await c.update_order("o1", {"state": "PROCESSING"})
    assert put_statuses(sim) == [401, 401] and sim.logins == 2


async def test_wrong_app_key_is_unavailable_at_once(sim: CommerceSimulator, make_client: Any) -> None:
    c = make_client(app_key="wrong")
    with pytest.raises(CommerceUnavailable, match="401"):
        await c.update_order("o1", {"state": "PROCESSING"})
    assert len(sim.calls) == 1 and put_statuses(sim) == []


async def test_login_failures_are_retried(sim: CommerceSimulator, make_client: Any) -> None:
    sim.fail_next(503, 2, prefix="/ccadmin/v1/login")
    c = make_client()
    outcome = await c.update_order("o1", {"state": "PROCESSING"})
    assert outcome.ok and outcome.attempts == 1
    assert [x.status for x in sim.calls_to("/ccadmin/v1/login")] == [503, 503, 200]


# --- retries ----------------------------------------------------------------------------------------


async def test_429_with_retry_after_then_success(sim: CommerceSimulator, make_client: Any) -> None:
    sim.fail_next(429, 2, prefix=ORDERS, retry_after=0.2)
    c = make_client()
    outcome = await c.update_order("o1", {"state": "PROCESSING"})
    assert (outcome.ok, outcome.attempts) == (True, 3)
    assert outcome.elapsed_ms >= 400
    times = [x.at for x in sim.calls_to(ORDERS)]
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.2, "waited as asked"


async def test_retry_after_beyond_the_limit_gives_up_at_once(
    sim: CommerceSimulator, make_client: Any
) -> None:
    sim.fail_next(429, 1, prefix=ORDERS, retry_after=3600)
    c = make_client(max_retry_after_s=5)
    with pytest.raises(CommerceUnavailable, match="Retry-After"):
        await c.update_order("o1", {"state": "PROCESSING"})
    assert put_statuses(sim) == [429]


async def test_503_three_times_then_success(sim: CommerceSimulator, make_client: Any) -> None:
    sim.fail_next(503, 3, prefix=ORDERS)
    c = make_client()
    outcome = await c.update_order("o1", {"state": "PROCESSING"})
    assert (outcome.ok, outcome.attempts, outcome.status) == (True, 4, 200)
    assert put_statuses(sim) == [503, 503, 503, 200]


async def test_persistent_500_is_unavailable_after_max_attempts(
    sim: CommerceSimulator, make_client: Any
) -> None:
    sim.fail_next(500, 100, prefix=ORDERS)
    c = make_client()
    with pytest.raises(CommerceUnavailable, match="500 after 4"):
        await c.update_order("o1", {"state": "PROCESSING"})
    assert put_statuses(sim) == [500] * 4


async def test_400_is_dead_lettered_without_retry(sim: CommerceSimulator, make_client: Any) -> None:
    sim.fail_next(400, 1, prefix="/ccadmin/v1/returnRequests", code="28101", message="return is locked")
    c = make_client()
    outcome = await c.update_return_request("r1", {"state": "COMPLETE"})
    assert (outcome.ok, outcome.attempts, outcome.status) == (False, 1, 400)
    assert outcome.dead_letter_reason == "commerce refused: 400 28101 return is locked"
    assert outcome.response == {"errorCode": "28101", "message": "return is locked", "status": "400"}
    assert put_statuses(sim, "/ccadmin/v1/returnRequests") == [400]


async def test_404_is_dead_lettered_too(sim: CommerceSimulator, make_client: Any) -> None:
    c = make_client()
    outcome = await c.update_order("o404", {"state": "PROCESSING"})
    assert (outcome.ok, outcome.status, outcome.attempts) == (False, 404, 1)
    assert outcome.dead_letter_reason is not None
    assert outcome.dead_letter_reason.startswith("commerce refused: 404 210105")


async def test_timeout_is_retried(sim: CommerceSimulator, make_client: Any) -> None:
    sim.delay_next(400, 1, prefix=ORDERS)
    c = make_client(timeout_s=0.1)
    outcome = await c.update_order("o1", {"state": "PROCESSING"})
    assert (outcome.ok, outcome.attempts) == (True, 2)


async def test_persistent_timeouts_are_unavailable(sim: CommerceSimulator, make_client: Any) -> None:
    sim.delay_next(300, 2, prefix=ORDERS)
    c = make_client(timeout_s=0.1, max_attempts=2)
    with pytest.raises(CommerceUnavailable, match="no answer"):
        await c.update_order("o1", {"state": "PROCESSING"})
    assert (await c.update_order("o1", {"state": "PROCESSING"})).ok


async def test_dropped_connections_are_retried(sim: CommerceSimulator, make_client: Any) -> None:
    sim.drop_next(2, prefix=ORDERS)
    c = make_client()
    outcome = await c.update_order("o1", {"state": "PROCESSING"})
    assert outcome.ok and outcome.attempts == 2
    assert put_statuses(sim) == [0, 0, 200], "aiohttp resends once by itself, then the client retries"


async def test_nobody_listening_is_unavailable() -> None:
    async with CommerceClient("http://127.0.0.1:9", KEY, max_attempts=2, backoff_base_s=0.001) as c:
        with pytest.raises(CommerceUnavailable):
            await c.update_order("o1", {"state": "PROCESSING"})


async def test_backoff_is_exponential_with_full_jitter(sim: CommerceSimulator, make_client: Any) -> None:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    sim.fail_next(503, 100, prefix=ORDERS)
    c = make_client(max_attempts=7, backoff_base_s=1.0, backoff_cap_s=8.0, sleep=sleep, rng=random.Random(7))
    with pytest.raises(CommerceUnavailable):
        await c.update_order("o1", {"state": "PROCESSING"})
    assert len(sleeps) == 6
    for failures, delay in enumerate(sleeps, start=1):
        assert 0 <= delay <= min(8.0, 2 ** (failures - 1))
    assert len(set(sleeps)) == 6


def test_what_is_retriable() -> None:
    assert [
        s for s in (0, 400, 401, 403, 404, 408, 409, 422, 425, 429, 500, 501, 503, 599) if is_retriable(s)
    ] == [0, 408, 425, 429, 500, 501, 503, 599]


# --- bodies -----------------------------------------------------------------------------------------


def test_decimals_are_written_digit_for_digit() -> None:
    assert to_json_bytes({"a": Decimal("80.41"), "b": [Decimal("0.10")]}) == b'{"a":80.41,"b":[0.10]}'
    assert (
        to_json_bytes(
            [Decimal("12345678901234567890.123456789"), Decimal("-0.00"), Decimal("1E+2"), 1.5, "x"]
        )
        == b'[12345678901234567890.123456789,-0.00,100,1.5,"x"]'
    )
    for bad in (Decimal("NaN"), Decimal("Infinity"), object()):
        with pytest.raises(TypeError):
            to_json_bytes({"a": bad})


async def test_money_reaches_commerce_exactly(sim: CommerceSimulator, make_client: Any) -> None:
    c = make_client()
    outcome = await c.update_order(
        "o1",
        {
            "paymentGroups": [
                {"id": "pg1", "amountCredited": Decimal("80.41")},
                {"id": "pg2", "amountCredited": Decimal("0.10")},
            ]
        },
    )
    assert outcome.ok
    sent = sim.calls_to(ORDERS, "PUT")[-1]
    assert b'"amountCredited":80.41' in sent.raw and b'"amountCredited":0.10' in sent.raw
    assert [p["amountCredited"] for p in sim.orders["o1"]["paymentGroups"]] == [80.41, 0.1]
    assert sent.headers["Content-Type"] == "application/json"


async def test_a_shared_session_is_left_open(sim: CommerceSimulator) -> None:
    async with ClientSession() as session:
        async with CommerceClient(sim.url, KEY, session=session) as c:
            outcome = await c.update_return_request("r1", {"state": "PENDING_REFUND"})
        assert isinstance(outcome, CallOutcome) and outcome.ok
        assert not session.closed
    assert sim.returns["r1"]["state"] == "PENDING_REFUND"


async def test_ids_are_escaped_in_the_path(sim: CommerceSimulator, make_client: Any) -> None:
    sim.seed_order({"id": "o/1 x", "state": "SUBMITTED"})
    c = make_client()
    assert (await c.update_order("o/1 x", {"state": "PROCESSING"})).ok
    assert sim.orders["o/1 x"]["state"] == "PROCESSING"


async def test_secrets_stay_out_of_logs(sim: CommerceSimulator, make_client: Any) -> None:
    sim.app_key = "sk-app-key-0123456789"
    sim.fail_next(503, 1, prefix=ORDERS)
    c = make_client(app_key=sim.app_key)
    with structlog.testing.capture_logs() as entries:
        await c.update_order("o1", {"state": "PROCESSING"})
        sim.expire_tokens()
        await c.update_order("o1", {"state": "PROCESSING"})
        await c.update_order("o404", {"state": "PROCESSING"})
    logged = repr(entries)
    assert {"commerce_retry", "commerce_token_rejected", "commerce_refused"} <= {e["event"] for e in entries}
    assert sim.app_key not in logged and sim.app_key not in repr(c)
    assert sim.issued_tokens and not any(t in logged for t in sim.issued_tokens)


async def test_get_return_request_reads_what_commerce_holds_with_the_same_retries(
    sim: CommerceSimulator, make_client: Any
) -> None:
    sim.fail_next(503, 1, prefix="/ccadmin/v1/returnRequests/r1")
    client = make_client()
    outcome = await client.get_return_request("r1")
    assert (outcome.status, outcome.attempts) == (200, 2)
    assert outcome.response["returnItemList"] == [{"id": "ri1", "state": "INITIAL"}]
    assert [c.method for c in sim.calls_to("/ccadmin/v1/returnRequests/r1")] == ["GET", "GET"]
