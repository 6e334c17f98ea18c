"""The leaf types of every declared inbound shape: what a quantity, an amount, an id, a time may be.

Quantities are checked in pydantic-core (strict: a string, a bool or a float where an integer
belongs is refused, never coerced); amounts, ids, times and states by the small functions
below, which hand the value on as received. The bounds are ours, documented in the README:

- money: a finite JSON number, |x| < 10^13 major units (ten trillion: far above any order, far
  below where a Decimal built from a double loses a cent); non-negative unless Commerce's
  model has it signed (`SignedMoney`: discount shares, adjustments).
- quantities: JSON integers 0..10^9; `CountOrUnknown` also takes Commerce's -1 ("not known",
  as `quantityShipped` and `maximumRefundAmount` carry it in the documented samples).
- ids: a non-empty printable string (or a non-negative integer, as Commerce sometimes sends
  profile ids) of at most 128 characters after trimming.
- times: epoch milliseconds, `{"time": millis}` or ISO-8601, between 1970 and 9999.
- text: a string of at most 16,384 characters (generous: a refused event webhook is retried
  five times and then lost, so free text is bounded only against abuse).

Each validator returns the value as received (ids trimmed), so the snapshot builders in
`service/payloads.py` see exactly what they saw before the shapes existed.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import Field, PlainValidator, Strict
from pydantic_core import PydanticCustomError

MONEY_LIMIT = 10**13
"""Exclusive bound on any amount, in major units of its currency."""
QUANTITY_LIMIT = 10**9
ID_MAX_LENGTH = 128
TEXT_MAX_LENGTH = 16_384
EPOCH_MS_LIMIT = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: the last moment Python's datetime can hold."""


Quantity = Annotated[int, Strict(), Field(ge=0, le=QUANTITY_LIMIT)]
PositiveQuantity = Annotated[int, Strict(), Field(ge=1, le=QUANTITY_LIMIT)]
CountOrUnknown = Annotated[int, Strict(), Field(ge=-1, le=QUANTITY_LIMIT)]
EpochMillis = Annotated[int, Strict(), Field(ge=0, le=EPOCH_MS_LIMIT)]
Flag = Annotated[bool, Strict()]
Text = Annotated[str, Strict(), Field(max_length=TEXT_MAX_LENGTH)]
CurrencyCode = Annotated[str, Strict(), Field(pattern=r"^[A-Za-z]{3}$")]


def _problem(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def _ident(value: Any) -> str | None:
    """A trimmed id, or None for null (whether null is allowed is the field's `Required`)."""
    if type(value) is str:
        text = value.strip()
    elif value is None:
        return None
    elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**18:
        text = str(value)
    else:
        raise _problem("id_type", "must be a string id")
    if not text:
        raise _problem("id_empty", "must not be empty")
    if len(text) > ID_MAX_LENGTH or not text.isprintable():
        raise _problem("id_form", f"must be printable and at most {ID_MAX_LENGTH} characters")
    return text


def _required_ident(value: Any) -> str:
    if value is None:
        raise _problem("id_type", "must be a string id")
    return _ident(value) or ""


def _optional(check: Any) -> Any:
    return lambda value: None if value is None else check(value)


def _money(low: float, signed: bool) -> Any:
    """A finite JSON number in [low, MONEY_LIMIT) (or, `signed`, (-MONEY_LIMIT, MONEY_LIMIT)),
    or null, returned as received: an integer stays an integer, so what is stored unquantized
    (a refund method's maximum) reads as it was sent. One Python call per amount: this runs a
    dozen times per Order Submit."""
    floor = -MONEY_LIMIT if signed else low
    message = f"must be a number {'above' if signed else 'of at least'} {floor:g} and below 1e13"
    number = (int, float)

    def check(value: Any) -> Any:
        kind = type(value)
        if kind is float or kind is int:
            if (floor < value if signed else floor <= value) and value < MONEY_LIMIT:
                return value
            raise _problem("money_range", message)  # NaN compares false: refused here too
        if value is None:
            return None
        if isinstance(value, number) and not isinstance(value, bool):
            return check(kind.__mro__[1](value))  # an int or float subclass
        raise _problem("money_type", "must be a number")

    return PlainValidator(check)


Money = Annotated[float | None, _money(0, signed=False)]
SignedMoney = Annotated[float | None, _money(0, signed=True)]
MoneyOrUnknown = Annotated[float | None, _money(-1, signed=False)]


Ident = Annotated[str, PlainValidator(_required_ident)]
OptIdent = Annotated[str | None, PlainValidator(_ident)]


def _time(value: Any) -> Any:
    """Parses as `payloads.JsonReader.time` will; returns the value untouched."""
    moment = value.get("time") if isinstance(value, dict) else value
    if isinstance(moment, int | float) and not isinstance(moment, bool):
        if moment != moment or not 0 <= moment <= EPOCH_MS_LIMIT:
            raise _problem("time_range", "must be epoch milliseconds between 1970 and 9999")
        return value
    if isinstance(moment, str) and len(moment) <= 64:
        try:
            datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return value
    raise _problem("time_type", "must be a time (epoch milliseconds or ISO-8601)")


Time = Annotated[Any, PlainValidator(_optional(_time))]


def _state(value: Any) -> Any:
    """Commerce sends a state as a name or as its integer code."""
    if isinstance(value, str) and 0 < len(value) <= 64 and value.isprintable():
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10_000:
        return value
    raise _problem("state_type", "must be a state name or code")


State = Annotated[Any, PlainValidator(_optional(_state))]


def _reference(value: Any) -> Any:
    """A reason or an order named by a plain string (or id), or by an object with an `id`/`name`."""
    if isinstance(value, dict):
        named = value.get("id", value.get("name"))
        if named is not None:
            _ident(named)
        return {k: value[k] for k in ("id", "name") if k in value}
    if isinstance(value, str) and not value.strip():
        return None  # an optional reason left blank is no reason
    return _ident(value)


Reference = Annotated[Any, PlainValidator(_reference)]


def _decimal_amount(value: Any) -> Any:
    """An operator's amount: a JSON number or a decimal string, finite, 0 <= x < 10^13."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | str)
        or (isinstance(value, str) and len(value) > 32)
    ):
        raise _problem("amount_type", "must be a number or a decimal string")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise _problem("amount_type", "must be a number or a decimal string") from None
    if not amount.is_finite() or not 0 <= amount < MONEY_LIMIT:
        raise _problem("amount_range", f"must be finite, >= 0 and below {MONEY_LIMIT:.0e}")
    return value


DecimalAmount = Annotated[Any, PlainValidator(_decimal_amount)]
