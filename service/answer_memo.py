"""Answers to repeated validation questions, kept while nothing they were judged from has changed.

Commerce asks the same Return Request Validation question again and again (it
asks to decide whether to show a Return button at all). An answer is reused
only while every order and return it was judged from is still, at the same
version, the newest one in the writer's cache (which drops what other processes
change), never past the moment the policy's verdicts may change with the time
alone (the next UTC midnight: return windows end on a date), and for at most
`ttl_s` besides. The cache never holds a version older than a write its process
has been told of (see `AggregateCache`), so neither does an answer found here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from uuid import UUID

from projections.lru import CacheStats, Lru
from service.aggregate_cache import AggregateCache


@dataclass(frozen=True)
class _Answer:
    body: bytes
    judged_from: tuple[tuple[UUID, int], ...]
    until: float


class AnswerMemo:
    def __init__(self, aggregates: AggregateCache, *, ttl_s: float = 60.0, capacity: int = 4096) -> None:
        self.aggregates = aggregates
        self.ttl_s = ttl_s
        self._answers: Lru[str, _Answer] = Lru("validation_answers", capacity)

    @property
    def hits(self) -> int:
        return self._answers.hits

    def stats(self) -> CacheStats:
        return self._answers.stats()

    def get(self, question: str) -> bytes | None:
        """`question`: the hash of the signed body."""
        answer = self._answers.get(question, self._holds)
        return None if answer is None else answer.body

    def _holds(self, answer: _Answer) -> bool:
        """Still on time, and everything it was judged from unchanged in the cache."""
        if time.monotonic() >= answer.until:
            return False
        for ident, version in answer.judged_from:
            current = self.aggregates.peek(ident)
            if current is None or current.version != version:
                return False
        return True

    def put(
        self, question: str, body: bytes, judged_from: tuple[tuple[UUID, int], ...], *, holds_until: float
    ) -> None:
        """`holds_until`: on the monotonic clock, when the answer may change with time alone."""
        until = min(time.monotonic() + self.ttl_s, holds_until)
        self._answers.put(question, _Answer(body, judged_from, until))
