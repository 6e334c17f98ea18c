"""The seed payloads from Oracle's documentation, as valid JSON documents."""

from __future__ import annotations

import copy
import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any


def seeds_dir() -> Path:
    configured = os.environ.get("RETURNFLOW_SEEDS_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / "shared" / "seeds"


@cache
def _load(name: str) -> dict[str, Any]:
    """Take the outermost JSON object out of the prose; fix NBSPs and the trailing comma."""
    text = (seeds_dir() / name).read_text(encoding="utf-8").replace("\u00a0", " ")
    start = text.index("{")
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                break
    raw = re.sub(r",(\s*[\]}])", r"\1", text[start : index + 1])
    document: dict[str, Any] = json.loads(raw)
    return document


def seed_order_submit() -> dict[str, Any]:
    return copy.deepcopy(_load("order-submit-webhook.txt"))


def seed_return_request_update() -> dict[str, Any]:
    return copy.deepcopy(_load("return-request-update-webhook.txt"))
