"""Decimals in JSON written digit for digit, as Commerce is sent them (`0.00`, never `0.0`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson


def json_default(value: Any) -> Any:
    """orjson `default` for logs and dead letters: a finite Decimal as the JSON number it is sent
    as, anything else as its text."""
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(format(value, "f"))
    return str(value)
