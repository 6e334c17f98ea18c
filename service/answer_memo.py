"""Answers to repeated validation questions, kept while nothing they were judged from has changed.

Commerce asks the same Return Request Validation question again and again (it
asks to decide whether to show a Return button at all). An answer is reused
only while every order and return it was judged from is still, at the same
version, the newest one in the writer's cache (which drops what other processes
change), never past the moment the policy's verdicts may change with the time
alone (the next UTC midnight: return windows end on a date), and for at most
`ttl_s` besides.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from uuid import UUID

from service.store import AggregateCache


@dataclass(frozen=True)
class _Answer:
    body: bytes
    judged_from: tuple[tuple[UUID, int], ...]
    until: float


class AnswerMemo:
    def __init__(self, aggregates: AggregateCache, *, ttl_s: float = 60.0,
                 capacity: int = 10_000) -> None:
        self.aggregates = aggregates
        self.ttl_s = ttl_s
        self.capacity = capacity
        self.hits = 0
        self._answers: OrderedDict[str, _Answer] = OrderedDict()

    def get(self, question: str) -> bytes | None:
        """`question`: the hash of the signed body."""
        answer = self._answers.get(question)
        if answer is None:
            return None
        if time.monotonic() >= answer.until:
            del self._answers[question]
            return None
        for ident, version in answer.judged_from:
            current = self.aggregates.peek(ident)
            if current is None or current.version != version:
                del self._answers[question]
                return None
        self.hits += 1
        return answer.body

    def put(self, question: str, body: bytes, judged_from: tuple[tuple[UUID, int], ...], *,
            holds_until: float) -> None:
        """`holds_until`: on the monotonic clock, when the answer may change with time alone."""
        until = min(time.monotonic() + self.ttl_s, holds_until)
        self._answers[question] = _Answer(body, judged_from, until)
        self._answers.move_to_end(question)
        if len(self._answers) > self.capacity:
            self._answers.popitem(last=False)
