"""Exchanges through the embedded sync into the Commerce simulator (no Kafka)."""

from __future__ import annotations

from tests.commerce_sim.server import CommerceSimulator
from tests.e2e.exchange_scenario import cheaper_exchange, even_exchange
from tests.e2e.test_sync_kafka import serving


async def test_even_exchange_completes_at_commerce_with_no_credit(store_url: str) -> None:
    async with CommerceSimulator() as sim, serving(store_url, None, commerce_url=sim.url) as driver:
        await even_exchange(driver, sim)


async def test_cheaper_replacement_credits_exactly_the_difference(store_url: str) -> None:
    async with CommerceSimulator() as sim, serving(store_url, None, commerce_url=sim.url) as driver:
        await cheaper_exchange(driver, sim)
