"""The orjson transcoder reads what the library's transcoder wrote, and the other way round."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex

from service.transcoding import OrjsonTranscoder


def both() -> tuple[JSONTranscoder, OrjsonTranscoder]:
    plain, fast = JSONTranscoder(), OrjsonTranscoder()
    for transcoder in (plain, fast):
        for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
            transcoder.register(transcoding)
    return plain, fast


DOCUMENTS: list[Any] = [
    {"timestamp": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "snapshot": {"a": [1, "x", None]}},
    {
        "nested": {"when": datetime(2026, 1, 2, tzinfo=UTC), "amount": Decimal("80.41")},
        "list": [Decimal("1.10"), {"n": datetime(2025, 5, 5, tzinfo=UTC)}],
    },
    {"plain": "text with _type_ in it", "n": 1},
    {"_type_": "looks", "_data_": "like an envelope but is data", "x": 1},
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_round_trips_and_is_wire_compatible(document: Any) -> None:
    plain, fast = both()
    assert fast.decode(fast.encode(document)) == document
    assert fast.decode(plain.encode(document)) == document
    assert plain.decode(fast.encode(document)) == document


def test_uuid_values_are_not_supported_silently_as_uuid() -> None:
    """orjson writes UUIDs natively; we store ids as strings, so none should reach the store."""
    _, fast = both()
    value = uuid4()
    assert fast.decode(fast.encode({"id": value})) == {"id": str(value)}
