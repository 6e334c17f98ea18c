"""The real broker does what the relay and the consumer rely on."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from tests.kafka.broker import KafkaBroker

pytestmark = pytest.mark.kafka


async def consume(broker: KafkaBroker, topic: str, group: str, count: int,
                  commit: bool = True) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    seen: list[bytes] = []
    try:
        while len(seen) < count:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=500), timeout=20)
            for records in batch.values():
                seen += [r.value for r in records if r.value is not None]
            if commit and batch:
                await consumer.commit()
    finally:
        await consumer.stop()
    return seen


async def test_idempotent_produce_and_group_consume_with_manual_commits(
    kafka_broker: KafkaBroker,
) -> None:
    await kafka_broker.create_topics(["t.basic"], partitions=3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap, enable_idempotence=True)
    await producer.start()
    for n in range(10):
        await producer.send_and_wait("t.basic", key=b"k", value=f"m{n}".encode())
    await producer.stop()
    first = await consume(kafka_broker, "t.basic", "g1", 10)
    assert first == [f"m{n}".encode() for n in range(10)], "one key keeps its order"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap, enable_idempotence=True)
    await producer.start()
    await producer.send_and_wait("t.basic", key=b"k", value=b"m10")
    await producer.stop()
    assert await consume(kafka_broker, "t.basic", "g1", 1) == [b"m10"], "resumes after commit"


async def test_broker_outage_and_return_keep_the_data(kafka_broker: KafkaBroker) -> None:
    await kafka_broker.create_topics(["t.outage"], partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap, enable_idempotence=True)
    await producer.start()
    await producer.send_and_wait("t.outage", value=b"before")
    await producer.stop()
    await asyncio.to_thread(kafka_broker.stop)
    try:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap,
                                    request_timeout_ms=1500)
        with pytest.raises((KafkaError, OSError, asyncio.TimeoutError)):
            await asyncio.wait_for(producer.start(), timeout=5)
        await producer.stop()
    finally:
        await asyncio.to_thread(kafka_broker.start)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap, enable_idempotence=True)
    await producer.start()
    await producer.send_and_wait("t.outage", value=b"after")
    await producer.stop()
    assert await consume(kafka_broker, "t.outage", "g-outage", 2) == [b"before", b"after"]
