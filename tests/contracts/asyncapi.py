"""Checking Kafka messages against the AsyncAPI document (service/contracts/asyncapi.json)."""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from jsonschema import Draft202012Validator

from service.api_description import document

TYPE_PREFIX = "com.returnflow."


@cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(document("asyncapi.json"))
    return loaded


def _validator(schema_name: str) -> Draft202012Validator:
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": spec()["components"]}
    return Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)


@cache
def _validators() -> dict[str, Draft202012Validator]:
    """Per message name (the CloudEvent type, or DeadLetter), its payload's validator."""
    found = {}
    for message in spec()["components"]["messages"].values():
        found[message["name"]] = _validator(message["payload"]["$ref"].split("/")[-1])
    return found


def problems(message: Any, channel: str) -> list[str]:
    """What is wrong with one message of `channel` ("events" or "deadLetters"); [] if nothing."""
    name = "DeadLetter" if channel == "deadLetters" else str(message.get("type", ""))
    validator = _validators().get(name)
    if validator is None or (channel == "events") != name.startswith(TYPE_PREFIX):
        return [f"no {channel} message {name!r} in the AsyncAPI document"]
    return [
        f"{name} {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(message)
    ]


async def drain(bootstrap: str, topic: str, timeout: float = 30) -> list[Any]:
    """Every message on `topic` up to its end offsets when its partitions were assigned."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen: list[Any] = []
    if topic not in await consumer.topics():
        await consumer.stop()
        return seen
    consumer.subscribe([topic])

    def keep(batch: dict[TopicPartition, list[Any]]) -> None:
        for records in batch.values():
            seen.extend(orjson.loads(r.value) for r in records if r.value)

    async def collect() -> None:
        while not consumer.assignment():
            keep(await consumer.getmany(timeout_ms=100))
        ends = await consumer.end_offsets(list(consumer.assignment()))
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            keep(await consumer.getmany(timeout_ms=300))

    try:
        await asyncio.wait_for(collect(), timeout)
        return seen
    finally:
        await consumer.stop()
