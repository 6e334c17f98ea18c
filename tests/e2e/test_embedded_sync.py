"""The embedded default: no Kafka, `serve` itself projects events into Commerce calls."""

from __future__ import annotations

from pathlib import Path

from tests.commerce_sim.server import CommerceSimulator
from tests.e2e.scenario import (
    assert_commerce_holds_the_return,
    commerce_done,
    credits_sent,
    seed_commerce,
    wait_for,
)
from tests.e2e.test_sync_kafka import serving


async def test_serve_without_kafka_updates_commerce(store_url: str) -> None:
    async with CommerceSimulator() as sim:
        seed_commerce(sim, 7)
        async with serving(store_url, None, commerce_url=sim.url) as driver:
            await driver.full(7)
            await wait_for(lambda: commerce_done(sim, 7), 30, "embedded sync")
        assert_commerce_holds_the_return(sim, 7)
        assert set(credits_sent(sim, 7)) <= {0, 268.4}
        calls_before_restart = len(sim.puts())
        seed_commerce(sim, 17)
        async with serving(store_url, None, commerce_url=sim.url) as driver:
            # A new return's call goes out after any resend would have: its PUT proves the
            # restarted sync ran over everything stored before it.
            await driver.order_and_return(17)
            await driver.act("/returns/R17/authorize", {"rma": "RMA17"})
            await wait_for(lambda: any(c.path.endswith("/R17") for c in sim.puts()), 30, "the new call")
        resent = [c for c in sim.puts()[calls_before_restart:] if not c.path.endswith(("/R17", "/o17"))]
        assert resent == [], "a restart resumes, it does not resend"


async def test_serve_without_commerce_url_logs_what_it_would_send(tmp_path: Path) -> None:
    import io

    from service import logs

    captured = io.StringIO()
    logs.configure("json", stream=captured)
    async with serving(tmp_path / "rf.db", None) as driver:
        await driver.order_and_return(8)
        await driver.act("/returns/R8/authorize", {"rma": "RMA8"})
        await wait_for(
            lambda: '"operation":"updateReturnRequest"' in captured.getvalue(), 10, "a logged return call"
        )
    assert "commerce_call_not_sent" in captured.getvalue()
    assert "RMA8" in captured.getvalue()
