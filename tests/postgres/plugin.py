"""pytest fixtures for the real PostgreSQL server: started once per session, a database per test.

Registered from tests/conftest.py. If the server cannot be installed or started, tests that
need it fail when CI=true (a green CI run means they ran) and skip elsewhere with the reason.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from tests.postgres.server import PostgresError, PostgresServer, wait_ready

_NAMES = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: needs the real PostgreSQL server")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if "postgres_server" in getattr(item, "fixturenames", ()) or (
            callspec is not None and "postgresql" in callspec.params.values()
        ):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
        server.start()
        wait_ready(server)
    except (PostgresError, OSError) as exc:
        reason = f"real PostgreSQL server unavailable: {exc}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    try:
        yield server
    finally:
        server.stop()
        server.remove()


def new_database(server: PostgresServer) -> str:
    """A database of its own for one test (names unique within the session's server)."""
    return server.create_database(f"rf_{os.getpid()}_{next(_NAMES)}")
