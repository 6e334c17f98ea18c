"""What the HTTP handlers share: the store, the writer, the reads, the verifier, the counters."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TypeVar

from aiohttp import web

from domain.policy import ReturnPolicy
from service.answer_memo import AnswerMemo
from service.config import Settings
from service.queries import Queries
from service.signatures import SignatureVerifier
from service.store import EventStore
from service.writer import Command, Writer

T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    store: EventStore
    writer: Writer
    queries: Queries
    verifier: SignatureVerifier
    answers: AnswerMemo
    policy: ReturnPolicy = field(default_factory=ReturnPolicy)
    counters: Counter[tuple[str, str]] = field(default_factory=Counter)

    async def write(self, command: Command[T]) -> T:
        """Queue a command for the writer thread and wait for its commit, off the event loop."""
        return await self.writer.submit_async(command)


SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
