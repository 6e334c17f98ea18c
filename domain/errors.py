"""Refusals the domain raises before it records anything."""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses; `code` is stable for clients, the message is for people."""

    code = "DOMAIN_REFUSED"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
