"""Exchanges through real Kafka (relay, consumer group) into the Commerce simulator; every
message published matches the AsyncAPI document (the fixture imported below)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.commerce_sim.server import CommerceSimulator
from tests.e2e.exchange_scenario import cheaper_exchange, even_exchange
from tests.e2e.test_sync_kafka import Names, messages_match_asyncapi, names, serving, syncing
from tests.kafka.broker import KafkaBroker

pytestmark = pytest.mark.kafka
__all__ = ["messages_match_asyncapi", "names"]


async def test_even_exchange_completes_at_commerce_with_no_credit(
    kafka_broker: KafkaBroker, names: Names, tmp_path: Path, store_url: str
) -> None:
    async with (
        CommerceSimulator() as sim,
        serving(store_url, kafka_broker.bootstrap) as driver,
        syncing(kafka_broker.bootstrap, names, sim, tmp_path / "ledger.db"),
    ):
        await even_exchange(driver, sim)


async def test_cheaper_replacement_credits_exactly_the_difference(
    kafka_broker: KafkaBroker, names: Names, tmp_path: Path, store_url: str
) -> None:
    async with (
        CommerceSimulator() as sim,
        serving(store_url, kafka_broker.bootstrap) as driver,
        syncing(kafka_broker.bootstrap, names, sim, tmp_path / "ledger.db"),
    ):
        await cheaper_exchange(driver, sim)
