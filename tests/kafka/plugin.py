"""pytest fixtures for the real Kafka broker: installed and started once per session.

Registered from tests/conftest.py with `pytest_plugins = ["tests.kafka.plugin"]`. Tests that
need the broker take the `kafka_broker` fixture and are marked `@pytest.mark.kafka` (the
marker is also added automatically to any test using the fixture, so `-m "not kafka"` works).

If the broker cannot be installed or started, every test using it fails when CI=true, so a
green CI run always means the Kafka tests ran; elsewhere they skip with broker.sh's own reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tests.kafka.broker import BrokerError, KafkaBroker, environment_says_ci


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker even where pyproject's list is not read (e.g. another rootdir)."""
    config.addinivalue_line("markers", "kafka: needs the real Kafka broker (tests/kafka/broker.sh)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that takes the broker is a Kafka test, marked or not."""
    for item in items:
        if "kafka_broker" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)


class _Shared:
    """One broker per process, however many times the fixture is defined.

    A test module that imports `kafka_broker` (as tests/integration/test_kafka_broker.py does,
    so it runs without tests/conftest.py) gets its own session-scoped fixture definition next
    to the plugin's; without this both would start a JVM.
    """

    broker: KafkaBroker | None = None
    failure: str | None = None
    users = 0


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """One real broker for the whole session; tests may stop/start it but must leave it up."""
    if _Shared.broker is None and _Shared.failure is None:
        broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
        try:
            KafkaBroker.install()
            broker.start()
            _Shared.broker = broker
        except (BrokerError, OSError) as exc:
            broker_stop_quietly(broker)
            _Shared.failure = f"real Kafka broker unavailable (tests/kafka/broker.sh): {exc}"
    shared = _Shared.broker
    if shared is None:
        reason = _Shared.failure or "real Kafka broker unavailable"
        if environment_says_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    _Shared.users += 1
    try:
        yield shared
    finally:
        _Shared.users -= 1
        if _Shared.users == 0:
            _Shared.broker = None
            shared.stop()


def broker_stop_quietly(broker: KafkaBroker) -> None:
    """Best-effort cleanup after a failed start; the start's error is the one worth reporting."""
    with contextlib.suppress(BrokerError, OSError):
        broker.stop()
