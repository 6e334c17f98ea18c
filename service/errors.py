"""Commerce's errorModel, the one error shape every endpoint answers with."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web


class ApiError(Exception):
    """An answer other than success; carries what the errorModel needs and never input values."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        dev_message: str | None = None,
        path: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.dev_message = dev_message
        self.path = path
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "errorCode": self.code,
            "message": self.message,
            "status": str(self.status),
        }
        if self.dev_message:
            body["devMessage"] = self.dev_message
        if self.path:
            body["o:errorPath"] = self.path
        if self.status == 400:  # every refusal of input lists its problems, even a single one
            body["errors"] = [
                {
                    "errorCode": self.code,
                    "message": self.message,
                    "status": "400",
                    "o:errorPath": self.path or "$",
                }
            ]
        body.update(self.extra)
        return body


class BadRequest(ApiError):
    def __init__(self, message: str, *, path: str | None = None, code: str = "INVALID_INPUT") -> None:
        super().__init__(400, code, message, path=path)


def error_response(error: ApiError) -> web.Response:
    return web.Response(
        status=error.status,
        body=orjson.dumps(error.body()),
        content_type="application/json",
    )
