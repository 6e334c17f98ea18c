"""Console sign-in: the operator API's token, once, then an HttpOnly session cookie.

A browser cannot send a bearer header from a plain page, and the token must never
travel in a URL, so the console's login form takes the operator's name and the API
token and answers a signed cookie (HMAC keyed from the token: rotating the token
ends every session). Forms carry a CSRF token bound to the session, and the cookie
is SameSite=Strict and scoped to /console/. A request with the bearer header itself
(a script) needs neither.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from aiohttp import web

COOKIE = "returnflow_console"
SESSION_SECONDS = 8 * 3600


@dataclass(frozen=True)
class Operator:
    name: str
    session: str | None
    """The cookie's value; None when the request carried the bearer token itself."""


class Sessions:
    def __init__(self, api_token: str | None, shared_seed: bytes | None = None) -> None:
        """`shared_seed`: without a token, what every worker of one `serve --workers N` keys its
        cookies with, so a cookie one worker set is good at the others."""
        seed = api_token.encode() if api_token else (shared_seed or secrets.token_bytes(32))
        self._key = hmac.new(seed, b"returnflow-console-session", hashlib.sha256).digest()
        self.api_token = api_token

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    def token_ok(self, offered: str) -> bool:
        """The API token (any offer is fine when none is configured: development mode)."""
        if self.api_token is None:
            return True
        return hmac.compare_digest(offered.encode(), self.api_token.encode())

    def issue(self, name: str, now: float | None = None) -> str:
        expires = int((now or time.time()) + SESSION_SECONDS)
        encoded = name.encode().hex()
        payload = f"{encoded}.{expires}"
        return f"{payload}.{self._sign(payload)}"

    def operator(self, request: web.Request) -> Operator | None:
        """Who is asking: a valid session cookie, or the bearer token with X-Operator."""
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self.api_token is not None and self.token_ok(credential.strip()):
            return Operator(request.headers.get("X-Operator", "api"), None)
        cookie = request.cookies.get(COOKIE)
        if not cookie or cookie.count(".") != 2:
            return None
        payload, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        encoded, _, expires = payload.partition(".")
        if not expires.isdigit() or int(expires) < time.time():
            return None
        try:
            return Operator(bytes.fromhex(encoded).decode(), cookie)
        except ValueError:
            return None

    def csrf(self, operator: Operator) -> str:
        return self._sign("csrf:" + (operator.session or ""))[:32]

    def csrf_ok(self, operator: Operator, offered: str) -> bool:
        """Forms posted with a session must carry its CSRF token; bearer requests need none."""
        if operator.session is None:
            return True
        return hmac.compare_digest(offered.encode(), self.csrf(operator).encode())


def set_session(response: web.StreamResponse, value: str, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=SESSION_SECONDS,
        path="/console/",
        httponly=True,
        samesite="Strict",
        secure=secure,
    )


def valid_name(name: str) -> bool:
    return bool(name) and len(name) <= 100 and name.isprintable()
