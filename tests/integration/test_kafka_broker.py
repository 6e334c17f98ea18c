"""The real broker does what the relay and the sync consumer rely on (SPEC section 5).

Each test uses its own topics and groups on the one session broker, so the order of tests
does not matter; the outage test stops the broker and always starts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, UnknownTopicOrPartitionError
from aiokafka.structs import ConsumerRecord, TopicPartition

from tests.kafka.broker import BrokerError, KafkaBroker
from tests.kafka.plugin import kafka_broker  # noqa: F401  (fixture, see tests/kafka/plugin.py)

pytestmark = pytest.mark.kafka


def unique(name: str) -> str:
    """Topics and groups per test: the session broker is shared with the end-to-end tests."""
    return f"t.{name}.{uuid.uuid4().hex[:8]}"


@contextlib.asynccontextmanager
async def producer(broker: KafkaBroker, **options: object) -> AsyncIterator[AIOKafkaProducer]:
    """An idempotent producer (acks=all implied), like the relay's."""
    client = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True, **options)
    await client.start()
    try:
        yield client
    finally:
        await client.stop()


@contextlib.asynccontextmanager
async def group_consumer(broker: KafkaBroker, topic: str, group: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A group member that commits only by hand, like the sync consumer."""
    client = AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
    )
    await client.start()
    try:
        yield client
    finally:
        await client.stop()


async def take(consumer: AIOKafkaConsumer, count: int, timeout: float = 20) -> list[ConsumerRecord]:
    """Exactly `count` records (in fetch order), or fail after `timeout` seconds."""
    records: list[ConsumerRecord] = []

    async def collect() -> None:
        while len(records) < count:
            batch = await consumer.getmany(timeout_ms=200, max_records=count - len(records))
            for partition_records in batch.values():
                records.extend(partition_records)

    await asyncio.wait_for(collect(), timeout)
    return records


async def nothing_more(consumer: AIOKafkaConsumer, wait_ms: int = 1000) -> None:
    batch = await consumer.getmany(timeout_ms=wait_ms)
    assert not any(batch.values()), f"unexpected records: {batch}"


def values(records: list[ConsumerRecord]) -> list[bytes]:
    """Record values (a missing value shows as b"", and fails any comparison here)."""
    return [r.value or b"" for r in records]


async def test_topics_are_created_with_their_partitions_and_never_auto_created(
    kafka_broker: KafkaBroker,  # noqa: F811
) -> None:
    """The relay creates its topics itself; a forgotten one must fail loudly, not appear."""
    events, dlq, missing = unique("events"), unique("dlq"), unique("missing")
    await kafka_broker.create_topics([events, dlq], partitions=3)
    await kafka_broker.create_topics([events], partitions=3)  # again: a no-op, not an error
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    await admin.start()
    try:
        described = {t["topic"]: t for t in await admin.describe_topics([events, dlq])}
        assert {name: len(t["partitions"]) for name, t in described.items()} == {events: 3, dlq: 3}
        assert all(p["leader"] == 1 for t in described.values() for p in t["partitions"])
        # auto.create.topics.enable=false: writing to an unknown topic fails instead of creating it
        async with producer(kafka_broker, request_timeout_ms=1500) as client:
            with pytest.raises(UnknownTopicOrPartitionError):
                await client.send_and_wait(missing, b"lost")
        assert missing not in await admin.list_topics()
    finally:
        await admin.close()


async def test_idempotent_produce_then_group_consumption_with_manual_commits(
    kafka_broker: KafkaBroker,  # noqa: F811
) -> None:
    """The relay's producer and the sync consumer's group: per-key order, no duplicates."""
    topic, group = unique("basic"), unique("group")
    await kafka_broker.create_topics([topic], partitions=3)
    keys = [f"return-{n}".encode() for n in range(4)]
    async with producer(kafka_broker, linger_ms=5) as client:
        sent = [await client.send(topic, key=keys[n % 4], value=f"{n}".encode()) for n in range(40)]
        placed = await asyncio.gather(*sent)
    by_partition: dict[int, list[int]] = {}
    for meta in placed:
        by_partition.setdefault(meta.partition, []).append(meta.offset)
    for offsets in by_partition.values():
        assert offsets == list(range(len(offsets))), "each partition written once, gap-free"

    async with group_consumer(kafka_broker, topic, group) as consumer:
        records = await take(consumer, 40)
        for key in keys:
            mine = [int(r.value or b"") for r in records if r.key == key]
            assert mine == sorted(mine) and len(mine) == 10, "one key, one partition, in order"
        assert sorted(int(r.value or b"") for r in records) == list(range(40)), "no duplicates"
        await nothing_more(consumer, 300)
        assert [await consumer.committed(tp) for tp in consumer.assignment()] == [None] * 3, (
            "nothing committed until the consumer says so"
        )
        await consumer.commit()
        ends = await consumer.end_offsets(list(consumer.assignment()))
        for tp in consumer.assignment():
            assert await consumer.committed(tp) == ends[tp] == len(by_partition.get(tp.partition, []))


async def test_a_new_member_of_the_group_resumes_from_the_committed_offset(
    kafka_broker: KafkaBroker,  # noqa: F811
) -> None:
    """A consumer that dies after committing part of what it read: its successor redoes the rest."""
    topic, group = unique("resume"), unique("group")
    await kafka_broker.create_topics([topic], partitions=1)
    tp = TopicPartition(topic, 0)
    async with producer(kafka_broker) as client:
        for n in range(10):
            await client.send_and_wait(topic, f"m{n}".encode(), key=b"r1")

    async with group_consumer(kafka_broker, topic, group) as first:
        read = await take(first, 10)
        assert values(read) == [f"m{n}".encode() for n in range(10)]
        # handled only the first six before "crashing": commit exactly those
        await first.commit({tp: read[5].offset + 1})
    assert read[5].offset + 1 == 6

    async with producer(kafka_broker) as client:
        await client.send_and_wait(topic, b"m10", key=b"r1")
    async with group_consumer(kafka_broker, topic, group) as second:
        assert await second.committed(tp) == 6
        resumed = await take(second, 5)
        assert values(resumed) == [b"m6", b"m7", b"m8", b"m9", b"m10"], "only what was not committed"
        await nothing_more(second, 300)
        await second.commit()
        assert await second.committed(tp) == 11


async def test_broker_outage_stalls_produce_and_the_restarted_broker_keeps_data_and_offsets(
    kafka_broker: KafkaBroker,  # noqa: F811
) -> None:
    """Stop the real process, as in an outage, then start it on the same dir and port.

    aiokafka's idempotent producer never expires a batch (it retries until the broker is
    back), so during the outage a send does not complete, and it lands exactly once after.
    """
    topic, group = unique("outage"), unique("group")
    await kafka_broker.create_topics([topic], partitions=2)
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    async with producer(kafka_broker) as client:
        for n in range(4):
            await client.send_and_wait(topic, f"before{n}".encode(), partition=n % 2)
    async with group_consumer(kafka_broker, topic, group) as consumer:
        assert sorted(values(await take(consumer, 4))) == [f"before{n}".encode() for n in range(4)]
        await consumer.commit()

    survivor = AIOKafkaProducer(
        bootstrap_servers=kafka_broker.bootstrap,
        enable_idempotence=True,
        request_timeout_ms=2000,
        retry_backoff_ms=100,
    )
    await survivor.start()
    try:
        assert await survivor.partitions_for(topic) == {0, 1}
        await asyncio.to_thread(kafka_broker.stop)
        try:
            assert not kafka_broker.is_running()
            pending = await survivor.send(topic, b"during", partition=0)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(asyncio.shield(pending), 2)
            late = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap, request_timeout_ms=1000)
            with pytest.raises((KafkaError, OSError, TimeoutError)):
                await asyncio.wait_for(late.start(), 10)
            with contextlib.suppress(Exception):
                await late.stop()
        finally:
            await asyncio.to_thread(kafka_broker.start)  # same dir and port
        assert kafka_broker.is_running()
        landed = await asyncio.wait_for(pending, 30)
        assert (landed.partition, landed.offset) == (0, 2), "the stalled send lands once, after the restart"
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(survivor.stop(), 10)

    async with producer(kafka_broker) as client:
        await client.send_and_wait(topic, b"after0", partition=0)
        await client.send_and_wait(topic, b"after1", partition=1)
    async with group_consumer(kafka_broker, topic, group) as consumer:
        assert {tp: await consumer.committed(tp) for tp in (tp0, tp1)} == {tp0: 2, tp1: 2}, (
            "committed offsets survived the restart"
        )
        assert sorted(values(await take(consumer, 3))) == [b"after0", b"after1", b"during"]
        await nothing_more(consumer, 300)
        await consumer.seek_to_beginning()
        everything = await take(consumer, 7)
    assert [r.value for r in everything if r.partition == 0] == [b"before0", b"before2", b"during", b"after0"]
    assert [r.value for r in everything if r.partition == 1] == [b"before1", b"before3", b"after1"], (
        "data written before the outage is still there, in order"
    )


def test_start_refuses_a_port_that_is_already_taken(
    kafka_broker: KafkaBroker,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A foreign listener on the port must not pass for a second broker being up."""
    squatter = KafkaBroker(tmp_path_factory.mktemp("kafka-taken"), port=kafka_broker.port)
    with pytest.raises(BrokerError, match="already in use"):
        squatter.start(timeout=10)
    assert not squatter.is_running()
