"""Oracle Commerce Admin API client: app-key login, token reuse and refresh, patient retries.

Retries (429, 5xx, timeouts, connection errors) back off exponentially with full
jitter and honour Retry-After; after `max_attempts` the call raises
CommerceUnavailable and the caller keeps its messages for later. Any other 4xx
is Commerce refusing the call for good: no retry, a dead-letter reason instead.
Money goes out as exact JSON numbers, never through float.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import structlog

log = structlog.get_logger(__name__)
RETRIABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


class CommerceUnavailable(Exception):
    """Commerce kept answering with retriable errors (or not at all)."""


@dataclass(frozen=True)
class CallOutcome:
    status: int
    attempts: int
    elapsed_ms: float
    response: Any
    dead_letter_reason: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _exact(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f").encode())
    if isinstance(value, dict):
        return {k: _exact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_exact(v) for v in value]
    return value


def to_json_bytes(body: Any) -> bytes:
    """JSON with Decimals written digit for digit (80.41 stays 80.41)."""
    return orjson.dumps(_exact(body))


class CommerceClient:
    def __init__(
        self,
        base_url: str,
        app_key: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout_s: float = 10.0,
        max_attempts: int = 6,
        backoff_base_s: float = 0.2,
        backoff_cap_s: float = 10.0,
        refresh_margin_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.app_key = app_key
        self._session = session
        self._own_session = session is None
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.refresh_margin_s = refresh_margin_s
        self.clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._login_lock = asyncio.Lock()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def _ensure_token(self, force: bool = False) -> str:
        async with self._login_lock:
            now = self.clock()
            if not force and self._token and now < self._expires_at - self.refresh_margin_s:
                return self._token
            if not force and self._token and now < self._expires_at:
                refreshed = await self._auth("/ccadmin/v1/refresh", f"Bearer {self._token}")
                if refreshed:
                    return refreshed
            token = await self._auth("/ccadmin/v1/login", f"Bearer {self.app_key}")
            if token is None:
                raise CommerceUnavailable("Commerce login failed")
            return token

    async def _auth(self, path: str, authorization: str) -> str | None:
        async with self._http().post(
            self.base_url + path, data={"grant_type": "client_credentials"},
            headers={"Authorization": authorization}, timeout=self.timeout,
        ) as response:
            if response.status != 200:
                log.warning("commerce_auth_failed", path=path, status=response.status)
                return None
            payload = await response.json(content_type=None)
        self._token = str(payload["access_token"])
        self._expires_at = self.clock() + float(payload.get("expires_in", 300))
        return self._token

    async def update_return_request(self, return_id: str, body: dict[str, Any]) -> CallOutcome:
        return await self.put(f"/ccadmin/v1/returnRequests/{return_id}", body)

    async def update_order(self, order_id: str, body: dict[str, Any]) -> CallOutcome:
        return await self.put(f"/ccadmin/v1/orders/{order_id}", body)

    async def put(self, path: str, body: dict[str, Any]) -> CallOutcome:
        data = to_json_bytes(body)
        started = self.clock()
        relogged = False
        attempt = 0
        while True:
            attempt += 1
            delay: float | None = None
            try:
                token = await self._ensure_token()
                async with self._http().put(
                    self.base_url + path, data=data, timeout=self.timeout,
                    headers={"Authorization": f"Bearer {token}",
                             "Content-Type": "application/json", "x-ccasset-language": "en"},
                ) as response:
                    status = response.status
                    text = await response.read()
                    retry_after = response.headers.get("Retry-After")
            except (TimeoutError, aiohttp.ClientError) as exc:
                status, text, retry_after = 0, str(exc).encode(), None
            parsed = _parse(text)
            elapsed = (self.clock() - started) * 1000
            if 200 <= status < 300:
                return CallOutcome(status, attempt, elapsed, parsed)
            if status == 401 and not relogged:
                relogged = True
                await self._ensure_token(force=True)
                attempt -= 1
                continue
            if status and status not in RETRIABLE:
                reason = f"commerce refused: {status} {_describe(parsed)}"
                return CallOutcome(status, attempt, elapsed, parsed, reason)
            if attempt >= self.max_attempts:
                raise CommerceUnavailable(f"{path}: {status or 'no answer'} after {attempt} attempts")
            delay = _retry_after(retry_after)
            if delay is None:
                delay = random.uniform(0, min(self.backoff_cap_s, self.backoff_base_s * 2 ** attempt))
            log.info("commerce_retry", path=path, status=status, attempt=attempt,
                     delay_s=round(delay, 3))
            await asyncio.sleep(delay)


def _parse(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")[:500]


def _describe(parsed: Any) -> str:
    if isinstance(parsed, dict):
        return f"{parsed.get('errorCode', '')} {parsed.get('message', '')}".strip()
    return str(parsed)[:200]


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
