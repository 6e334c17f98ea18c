"""Per-resource lanes: one resource's messages in order, others alongside, commits never skip ahead."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from projections.lanes import KeyedLanes, Retry


def message(key: str, version: int) -> dict[str, Any]:
    return {"subject": key, "version": version}


class Recorder:
    """A projector whose calls for one key can be held until released."""

    def __init__(self) -> None:
        self.calls: list[list[tuple[str, int]]] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.failures: dict[str, int] = {}

    async def project(self, messages: Sequence[dict[str, Any]]) -> None:
        key = messages[0]["subject"]
        if self.failures.get(key):
            self.failures[key] -= 1
            raise Retry(key)
        self.calls.append([(m["subject"], m["version"]) for m in messages])
        gate = self.gates.get(key)
        if gate is not None:
            await gate.wait()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_slow_resource_holds_its_own_lane_and_the_commit_but_not_others() -> None:
    recorder = Recorder()
    recorder.gates["A"] = asyncio.Event()
    lanes: KeyedLanes[int] = KeyedLanes(recorder.project, asyncio.Event())
    lanes.add(0, 10, "A", message("A", 1))
    lanes.add(0, 11, "B", message("B", 1))
    lanes.add(0, 12, "B", message("B", 2))
    await settle()
    lanes.add(0, 13, "A", message("A", 2))
    lanes.add(0, 14, "A", message("A", 3))
    await settle()
    assert recorder.calls == [[("A", 1)], [("B", 1), ("B", 2)]]
    assert all(("A", 2) not in call for call in recorder.calls), "A waits for A's call in flight"
    assert lanes.committable() == {}, "offset 10 is not done, so nothing after it commits"
    recorder.gates["A"].set()
    await settle()
    assert recorder.calls[-1] == [("A", 2), ("A", 3)], "what piled up goes out as one batch"
    assert lanes.committable() == {0: 15}
    assert lanes.in_flight == 0


async def test_partitions_commit_independently_and_bad_messages_are_done_at_once() -> None:
    recorder = Recorder()
    recorder.gates["A"] = asyncio.Event()
    lanes: KeyedLanes[int] = KeyedLanes(recorder.project, asyncio.Event())
    lanes.add(0, 5, "A", message("A", 1))
    lanes.add(1, 7, "B", message("B", 1))
    lanes.add(1, 8, "?", None)
    await settle()
    assert lanes.committable() == {1: 9}
    recorder.gates["A"].set()
    await settle()
    assert lanes.committable() == {0: 6}


async def test_retry_until_commerce_answers_without_blocking_other_keys() -> None:
    recorder = Recorder()
    recorder.failures["A"] = 2
    lanes: KeyedLanes[int] = KeyedLanes(recorder.project, asyncio.Event(), max_backoff_s=0.01)
    lanes.add(0, 1, "A", message("A", 1))
    lanes.add(0, 2, "B", message("B", 1))
    await settle()
    assert recorder.calls == [[("B", 1)]]
    assert lanes.committable() == {}
    await lanes.drain(timeout=5)
    assert recorder.calls[-1] == [("A", 1)]
    assert lanes.committable() == {0: 3}


async def test_stopping_leaves_unfinished_messages_uncommitted() -> None:
    recorder = Recorder()
    recorder.failures["A"] = 1_000
    stop = asyncio.Event()
    lanes: KeyedLanes[int] = KeyedLanes(recorder.project, stop)
    lanes.add(0, 1, "A", message("A", 1))
    lanes.add(0, 2, "B", message("B", 1))
    await settle()
    stop.set()
    await lanes.drain(timeout=5)
    assert lanes.committable() == {}
    assert lanes.failure is None


async def test_an_unexpected_error_is_kept_for_the_consumer_to_raise() -> None:
    async def broken(_: Sequence[dict[str, Any]]) -> None:
        raise KeyError("bug")

    lanes: KeyedLanes[int] = KeyedLanes(broken, asyncio.Event())
    lanes.add(0, 1, "A", message("A", 1))
    await lanes.drain(timeout=5)
    assert isinstance(lanes.failure, KeyError)
    assert lanes.committable() == {}
