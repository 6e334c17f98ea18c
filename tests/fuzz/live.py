"""The real service on real SQLite, on loopback, in a thread of its own: for synchronous fuzzing.

Hypothesis drives plain functions, so the service runs its event loop (and its writer
thread) beside the test, and the test speaks HTTP to it over one keep-alive connection.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import orjson

from service import logs
from service.config import Settings
from tests.commerce_sim.webhook_sender import SIGNATURE_HEADER, sign
from tests.conftest import API_TOKEN, SECRET, free_port, start_service


def dumps(document: Any) -> bytes:
    """orjson, or the standard library for integers beyond 64 bits (valid JSON all the same)."""
    try:
        return orjson.dumps(document)
    except TypeError:
        return json.dumps(document).encode()


class LiveService:
    def __init__(self, directory: Path) -> None:
        self.settings = Settings(
            store=f"sqlite:///{directory / 'returnflow.db'}",
            webhook_secrets=(SECRET,),
            api_token=API_TOKEN,
            port=free_port(),
            max_body_bytes=256 * 1024,
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-service", daemon=True)
        self._quiet = open(os.devnull, "w")  # noqa: SIM115 - closed in __exit__

    def __enter__(self) -> LiveService:
        logs.configure("json", stream=self._quiet)
        self.thread.start()
        started = asyncio.run_coroutine_threadsafe(start_service(self.settings), self.loop)
        self.runner, self.services = started.result(timeout=30)
        self.http = http.client.HTTPConnection("127.0.0.1", self.settings.port, timeout=30)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.http.close()
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        logs.configure("json")  # to stderr again before the quiet stream closes
        self._quiet.close()

    def events_stored(self) -> int:
        return int(self.services.store.recorder.max_notification_id() or 0)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        self.http.request(method, quote(path), body=body, headers=headers or {})
        response = self.http.getresponse()
        raw = response.read()
        try:
            return response.status, orjson.loads(raw)
        except orjson.JSONDecodeError:
            return response.status, raw

    def webhook(self, name: str, document: Any) -> tuple[int, Any]:
        body = dumps(document)
        return self.request("POST", f"/webhooks/{name}", body, {SIGNATURE_HEADER: sign(body, SECRET)})

    def act(self, path: str, document: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {API_TOKEN}", "X-Operator": "fuzz"}
        return self.request("POST", path, dumps(document), headers)

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path, headers={"Authorization": f"Bearer {API_TOKEN}"})
