"""Holding a JSON document to a declared shape: every problem found, in Commerce's errorModel.

A shape (a pydantic `TypeAdapter` over TypedDicts, see `service/shapes.py`) answers the
document with only its declared keys, so whatever is not declared is dropped here, before
anything downstream can store, log or publish it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import AfterValidator, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from service.errors import ApiError

T = TypeVar("T")
MAX_LISTED = 50
"""At most this many problems are listed (a body of 10,000 bad items is still one answer)."""


class InvalidInput(ApiError):
    """400 `INVALID_INPUT`: `errors[]` has one entry per problem, each with its `o:errorPath`;
    the top-level `o:errorPath` and `message` are the first problem's."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        path, text = problems[0]
        message = text if len(problems) == 1 else f"{len(problems)} problems: {text}; ..."
        errors = [
            {"errorCode": "INVALID_INPUT", "message": m, "status": "400", "o:errorPath": p}
            for p, m in problems[:MAX_LISTED]
        ]
        super().__init__(400, "INVALID_INPUT", message, path=path, extra={"errors": errors})


def conform(shape: TypeAdapter[T], document: Any) -> T:
    """The document with only its declared keys, or `InvalidInput` listing every problem."""
    try:
        return shape.validate_python(document)
    except ValidationError as exc:
        problems = [_problem(e) for e in exc.errors(include_url=False, include_input=False)]
        raise InvalidInput(problems) from None
    except RecursionError:
        raise InvalidInput([("$", "$: the document is nested too deeply")]) from None


def _problem(error: ErrorDetails) -> tuple[str, str]:
    loc = list(error["loc"])
    field = (error.get("ctx") or {}).get("field")
    if field is not None:
        loc.append(field)
    path = json_path(loc)
    return path, f"{path}: {error['msg']}"


def json_path(loc: Sequence[int | str]) -> str:
    """`("order", "commerceItems", 0, "quantity")` -> `$.order.commerceItems[0].quantity`."""
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def one_of(*keys: str) -> AfterValidator:
    """A declared object needs at least one of `keys` (Commerce names some ids either way)."""

    def check(value: dict[str, Any]) -> dict[str, Any]:
        if all(value.get(key) is None for key in keys):
            raise PydanticCustomError(
                "missing",
                "Field required" + (f" (or {', '.join(keys[1:])})" if keys[1:] else ""),
                {"field": keys[0]},
            )
        return value

    return AfterValidator(check)


def shape_of(declared: Any) -> TypeAdapter[Any]:
    """One adapter per shape, built once at import (building costs milliseconds)."""
    return TypeAdapter(declared)
