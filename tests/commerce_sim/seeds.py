"""The sample payloads in Oracle's documentation (the seed files), as valid JSON documents.

The samples are kept verbatim in `tests/fixtures/seeds/` (cut from the documents, so the
repository carries what its tests need). They are indented with non-breaking spaces and the
Order Submit one has a trailing comma, so they are cut out of their surrounding text and
repaired before parsing; the same code reads a whole seed document.
"""

from __future__ import annotations

import copy
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

ORDER_SUBMIT = "order-submit-webhook"
RETURN_REQUEST_UPDATE = "return-request-update-webhook"


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "seeds"
"""The samples inside the repository: `tests/fixtures/seeds/`."""


def seeds_dir() -> Path:
    """`RETURNFLOW_SEEDS_DIR` (e.g. Oracle's whole documents), else the repository's fixtures."""
    configured = os.environ.get("RETURNFLOW_SEEDS_DIR")
    if configured:
        return Path(configured)
    return FIXTURES


def outermost_object(text: str) -> str:
    """The first top-level `{...}` in `text`, braces inside JSON strings not counted."""
    start = text.index("{")
    depth = 0
    in_string = escaped = False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start : index + 1]
    raise ValueError("unbalanced braces: no complete JSON object found")


def drop_trailing_commas(text: str) -> str:
    """Remove commas that only whitespace separates from a closing `]` or `}` (outside strings)."""
    out: list[str] = []
    pending: int | None = None
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "]}" and pending is not None:
            del out[pending]
        if not char.isspace():
            pending = None
        if char == "," and not in_string:
            pending = len(out)
        out.append(char)
    return "".join(out)


@cache
def _parse(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8").replace("\u00a0", " ")
    document = json.loads(drop_trailing_commas(outermost_object(text)))
    if not isinstance(document, dict):
        raise ValueError(f"{path}: the sample is not a JSON object")
    return document


def load_seed(name: str) -> dict[str, Any]:
    """The JSON sample of seed file `name` (with or without `.txt`); a fresh copy each call."""
    return copy.deepcopy(_parse(seeds_dir() / (name if name.endswith(".txt") else f"{name}.txt")))


def seed_order_submit() -> dict[str, Any]:
    """Order Submit webhook body: `{"site", "order": {"id": "o20005", ...}, ...}`."""
    return load_seed(ORDER_SUBMIT)


def seed_return_request_update() -> dict[str, Any]:
    """Return Request Update webhook body."""
    return load_seed(RETURN_REQUEST_UPDATE)
