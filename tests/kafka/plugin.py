"""pytest fixtures for the real Kafka broker: one broker per session, started on demand."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kafka.broker import KafkaBroker


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    """Fails loudly in CI if the broker cannot run; elsewhere skips with the reason."""
    directory = Path(tempfile.mkdtemp(prefix="returnflow-kafka-"))
    broker = KafkaBroker(directory)
    try:
        broker.install()
        broker.start()
    except Exception as exc:
        broker.stop()
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"no real Kafka broker here: {exc}")
    try:
        yield broker
    finally:
        broker.stop()
