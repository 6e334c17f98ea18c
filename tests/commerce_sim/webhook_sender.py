"""Sends webhooks the way Commerce does: signed raw bytes, resent on any non-2xx, no message id.

The signature is the base64 HMAC (SHA-512 now, SHA-1 on older releases) of the exact body
bytes, keyed with the base64-decoded secret shown in Commerce admin.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from aiohttp import ClientError, ClientSession, ClientTimeout

SIGNATURE_HEADER = "X-Oracle-CC-WebHook-Signature"
SIGNATURE_HEADER_SHA512 = "X-Oracle-CC-WebHook-Signature-SHA512"
Algo = Literal["sha512", "sha1"]


def sign(body: bytes, secret_b64: str, algo: Algo | str = "sha512") -> str:
    """base64(HMAC-<algo>(base64decode(secret), body))."""
    if algo not in ("sha512", "sha1"):
        raise ValueError(f"Commerce signs with sha512 or sha1, not {algo!r}")
    key = base64.b64decode(secret_b64)
    return base64.b64encode(hmac.new(key, body, getattr(hashlib, algo)).digest()).decode()


@dataclass(frozen=True)
class Delivery:
    """One POST and what the receiver answered (status 0: no answer at all)."""

    attempt: int
    status: int
    body: bytes
    elapsed_ms: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return orjson.loads(self.body)


class WebhookSender:
    """A Commerce webhook source aimed at `url_base` (e.g. the service's root URL)."""

    def __init__(
        self,
        url_base: str,
        secret_b64: str | None,
        algo: Algo = "sha512",
        header_name: str = SIGNATURE_HEADER,
        *,
        session: ClientSession | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.url_base = url_base.rstrip("/")
        self.secret_b64 = secret_b64
        self.algo = algo
        self.header_name = header_name
        self._session = session
        self._own_session = session is None
        self._timeout = ClientTimeout(total=timeout_s)

    async def __aenter__(self) -> WebhookSender:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def body_bytes(self, payload: Any) -> bytes:
        return payload if isinstance(payload, bytes) else orjson.dumps(payload)

    def headers(self, body: bytes) -> dict[str, str]:
        """What Commerce sends; unsigned when the sender has no secret."""
        headers = {"Content-Type": "application/json"}
        if self.secret_b64 is not None:
            headers[self.header_name] = sign(body, self.secret_b64, self.algo)
        return headers

    async def send(self, path: str, payload: Any, *, attempt: int = 1) -> Delivery:
        """One POST of `payload` (bytes go as they are, anything else as JSON)."""
        body = self.body_bytes(payload)
        if self._session is None:
            self._session = ClientSession(timeout=self._timeout)
        started = time.monotonic()
        url = f"{self.url_base}/{path.lstrip('/')}"
        try:
            async with self._session.post(url, data=body, headers=self.headers(body)) as response:
                answer = await response.read()
                status = response.status
        except (TimeoutError, ClientError) as exc:
            return Delivery(attempt, 0, b"", (time.monotonic() - started) * 1000, repr(exc))
        return Delivery(attempt, status, answer, (time.monotonic() - started) * 1000)

    async def deliver(
        self, path: str, payload: Any, max_attempts: int = 5, interval_s: float = 0.0
    ) -> list[Delivery]:
        """Resend until a 2xx or `max_attempts` (Commerce: 5, about an hour apart); every try."""
        deliveries: list[Delivery] = []
        body = self.body_bytes(payload)
        for attempt in range(1, max_attempts + 1):
            delivery = await self.send(path, body, attempt=attempt)
            deliveries.append(delivery)
            if delivery.ok:
                break
            if attempt < max_attempts and interval_s:
                await asyncio.sleep(interval_s)
        return deliveries
