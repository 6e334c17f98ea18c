"""Oracle Commerce Admin API client: app-key login, token reuse and refresh, patient retries.

Retriable failures (429, 408/425, 5xx, timeouts, connection errors, also while logging in)
back off exponentially with full jitter, or wait what Retry-After asks; after
`max_attempts` the call raises CommerceUnavailable and the caller keeps its messages for
later. A 401 is answered with one fresh login. Any other 4xx is Commerce refusing the call
for good: no retry, an outcome with a dead-letter reason. Money goes out as exact JSON
numbers, never through float. Neither the app key nor tokens are ever logged.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import structlog

log = structlog.get_logger(__name__)

LOGIN_PATH = "/ccadmin/v1/login"
REFRESH_PATH = "/ccadmin/v1/refresh"
DEFAULT_TOKEN_TTL_S = 300.0


class CommerceUnavailable(Exception):
    """Commerce kept failing with retriable errors, or would not log us in: try again later."""


@dataclass(frozen=True)
class CallOutcome:
    """What one logical call came to: `attempts` counts every request sent for it."""

    status: int
    attempts: int
    elapsed_ms: float
    response: Any
    dead_letter_reason: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _exact_decimal(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"{value} is not a JSON number")
        return orjson.Fragment(format(value, "f"))
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json_bytes(obj: Any) -> bytes:
    """orjson, with each Decimal written as a JSON number digit for digit (80.41, not 80.40999...)."""
    return orjson.dumps(obj, default=_exact_decimal)


def is_retriable(status: int) -> bool:
    """0 stands for no answer at all (timeout, refused or dropped connection)."""
    return status == 0 or status in (408, 425, 429) or status >= 500


@dataclass(frozen=True)
class _Token:
    value: str
    refresh_at: float
    expires_at: float


class _Transient(Exception):
    def __init__(self, status: int, detail: Any, retry_after: float | None = None) -> None:
        super().__init__(f"{status or 'no answer'}: {detail}")
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


class CommerceClient:
    """One Commerce instance; safe to share between concurrent calls (one login at a time)."""

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
        max_retry_after_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self._app_key = app_key
        self._session = session
        self._own_session = session is None
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.refresh_margin_s = refresh_margin_s
        self.max_retry_after_s = max_retry_after_s
        self.clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._token: _Token | None = None
        self._auth_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"CommerceClient({self.base_url!r})"

    async def __aenter__(self) -> CommerceClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    # --- tokens ----------------------------------------------------------------------------

    async def login(self) -> None:
        """A fresh application token. Raises CommerceUnavailable if Commerce refuses the key."""
        async with self._auth_lock:
            await self._authenticate(LOGIN_PATH, self._app_key)

    async def _bearer(self) -> str:
        """The current token; refreshed shortly before it expires, a new login once it has."""
        token = self._token
        if token is not None and self.clock() < token.refresh_at:
            return token.value
        async with self._auth_lock:
            token = self._token
            now = self.clock()
            if token is not None and now < token.refresh_at:
                return token.value
            if token is not None and now < token.expires_at:
                try:
                    return await self._authenticate(REFRESH_PATH, token.value)
                except (_Transient, CommerceUnavailable) as exc:
                    log.info("commerce_refresh_failed", error=str(exc))
                    if isinstance(exc, _Transient):
                        return token.value
            return await self._authenticate(LOGIN_PATH, self._app_key)

    def _forget(self, token: str) -> None:
        if self._token is not None and self._token.value == token:
            self._token = None

    async def _authenticate(self, path: str, bearer: str) -> str:
        """POST login or refresh; a retriable failure raises _Transient, a refusal CommerceUnavailable."""
        data = {"grant_type": "client_credentials"} if path == LOGIN_PATH else None
        try:
            async with self._http().post(
                self.base_url + path,
                data=data,
                timeout=self.timeout,
                headers={"Authorization": f"Bearer {bearer}"},
            ) as response:
                status = response.status
                raw = await response.read()
                retry_after = _retry_after(response.headers.get("Retry-After"))
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _Transient(0, type(exc).__name__) from exc
        payload = _parse(raw)
        if is_retriable(status):
            raise _Transient(status, _describe(payload), retry_after)
        if status != 200 or not isinstance(payload, dict) or "access_token" not in payload:
            log.warning("commerce_auth_refused", path=path, status=status, error=_describe(payload))
            raise CommerceUnavailable(f"{path} refused: {status} {_describe(payload)}")
        ttl = float(payload.get("expires_in") or DEFAULT_TOKEN_TTL_S)
        obtained = self.clock()
        margin = min(self.refresh_margin_s, ttl / 5)
        self._token = _Token(str(payload["access_token"]), obtained + ttl - margin, obtained + ttl)
        log.info("commerce_token", path=path, expires_in_s=ttl)
        return self._token.value

    # --- calls -----------------------------------------------------------------------------

    async def update_return_request(self, return_id: str, body: dict[str, Any]) -> CallOutcome:
        """updateReturnRequest; `body` must carry every return item and refund method to keep."""
        return await self.put(f"/ccadmin/v1/returnRequests/{quote(return_id, safe='')}", body)

    async def update_order(self, order_id: str, body: dict[str, Any]) -> CallOutcome:
        """updateOrder; `body` must carry every shipping and payment group to keep."""
        return await self.put(f"/ccadmin/v1/orders/{quote(order_id, safe='')}", body)

    async def get_return_request(self, return_id: str) -> CallOutcome:
        """getReturnRequest: what Commerce holds now (`response`), with the same retries."""
        return await self._call("GET", f"/ccadmin/v1/returnRequests/{quote(return_id, safe='')}", None)

    async def get_order(self, order_id: str) -> CallOutcome:
        """getOrder: the order as Commerce holds it now (reconcile compares it), same retries."""
        return await self._call("GET", f"/ccadmin/v1/orders/{quote(order_id, safe='')}", None)

    async def put(self, path: str, body: dict[str, Any]) -> CallOutcome:
        return await self._call("PUT", path, to_json_bytes(body))

    async def _call(self, method: str, path: str, data: bytes | None) -> CallOutcome:
        started = self.clock()
        sent = failures = 0
        relogged = False
        while True:
            retry_after: float | None = None
            try:
                token = await self._bearer()
                sent += 1
                status, payload, retry_after = await self._send(method, path, data, token)
            except _Transient as exc:
                status, payload, retry_after = exc.status, exc.detail, exc.retry_after
            else:
                elapsed = (self.clock() - started) * 1000
                if 200 <= status < 300:
                    return CallOutcome(status, sent, elapsed, payload)
                if status == 401 and not relogged:
                    relogged = True
                    self._forget(token)
                    log.info("commerce_token_rejected", path=path)
                    continue
                if status == 401:
                    raise CommerceUnavailable(f"{path}: 401 even with a fresh token")
                if not is_retriable(status):
                    reason = f"commerce refused: {status} {_describe(payload)}".strip()
                    log.warning("commerce_refused", path=path, status=status, attempts=sent, reason=reason)
                    return CallOutcome(status, sent, elapsed, payload, reason)
            failures += 1
            if failures >= self.max_attempts:
                log.warning("commerce_unavailable", path=path, status=status, attempts=sent)
                raise CommerceUnavailable(f"{path}: {status or 'no answer'} after {failures} failed attempts")
            delay = self._delay(failures, retry_after)
            if delay is None:
                raise CommerceUnavailable(f"{path}: {status}, Retry-After {retry_after}s is too long")
            log.info("commerce_retry", path=path, status=status, failures=failures, delay_s=round(delay, 3))
            await self._sleep(delay)

    async def _send(
        self, method: str, path: str, data: bytes | None, token: str
    ) -> tuple[int, Any, float | None]:
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "x-ccasset-language": "en",
        }
        try:
            async with self._http().request(
                method, self.base_url + path, data=data, headers=headers, timeout=self.timeout
            ) as response:
                raw = await response.read()
                return (response.status, _parse(raw), _retry_after(response.headers.get("Retry-After")))
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _Transient(0, type(exc).__name__) from exc

    def _delay(self, failures: int, retry_after: float | None) -> float | None:
        """Retry-After when given (None if beyond `max_retry_after_s`), else full jitter."""
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after_s else None
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * 2 ** (failures - 1))
        return self._rng.uniform(0, ceiling)


def _parse(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")[:500]


def _describe(payload: Any) -> str:
    if isinstance(payload, dict):
        return f"{payload.get('errorCode', '')} {payload.get('message', '')}".strip()
    return "" if payload is None else str(payload)[:200]


def _retry_after(value: str | None) -> float | None:
    """Seconds (Commerce) or an HTTP date; anything unreadable counts as absent."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())
