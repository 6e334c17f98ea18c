"""Shared fixtures: a real Returnflow service over loopback HTTP on a real SQLite file."""

from __future__ import annotations

import base64
import os
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import ClientSession, web

from service import logs
from service.app import create_app
from service.config import Settings
from service.context import SERVICES, Services
from service.store import EventStore

pytest_plugins = ["tests.kafka.plugin", "tests.postgres.plugin"]

SECRET = base64.b64encode(b"returnflow-test-secret-0123456789").decode()
OLD_SECRET = base64.b64encode(b"returnflow-previous-secret-xyz").decode()
API_TOKEN = "test-operator-token"


@pytest.fixture(scope="session", autouse=True)
def returnflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The default store's home for the run (inherited by every process a test starts): no
    test writes to the user's ~/.local/share/returnflow."""
    home = tmp_path_factory.mktemp("returnflow-home")
    previous = os.environ.get("RETURNFLOW_HOME")
    os.environ["RETURNFLOW_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("RETURNFLOW_HOME", None)
    else:
        os.environ["RETURNFLOW_HOME"] = previous


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def count_events(store: EventStore) -> int:
    """A count, not the last notification id: PostgreSQL's ids leave gaps where a transaction
    rolled back (an optimistic creation that collided, say)."""
    count, position = 0, 0
    while page := store.recorder.select_notifications(position + 1, 1000):
        count, position = count + len(page), page[-1].id
    return count


@dataclass
class RunningService:
    url: str
    db_path: Path | None
    """The SQLite file, or None on PostgreSQL (`store` names either)."""
    services: Services
    http: ClientSession

    @property
    def store(self) -> str:
        return self.services.settings.store

    def events_stored(self) -> int:
        return count_events(self.services.store)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {API_TOKEN}"}


async def start_service(settings: Settings) -> tuple[web.AppRunner, Services]:
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    return runner, app[SERVICES]


STORES = ["sqlite", "postgresql"]


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store-dependent test runs on a SQLite file and on a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'returnflow.db'}"
    from tests.postgres.plugin import new_database

    return new_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
async def service(tmp_path: Path, store_url: str) -> AsyncIterator[RunningService]:
    logs.configure("json")
    settings = Settings(
        store=store_url,
        webhook_secrets=(SECRET, OLD_SECRET),
        api_token=API_TOKEN,
        port=free_port(),
        max_body_bytes=256 * 1024,
    )
    runner, services = await start_service(settings)
    db = Path(store_url.removeprefix("sqlite:///")) if store_url.startswith("sqlite:") else None
    async with ClientSession() as http:
        yield RunningService(f"http://127.0.0.1:{settings.port}", db, services, http)
    await runner.cleanup()
