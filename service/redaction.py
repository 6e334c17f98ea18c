"""PCI at the edge: an allow-list for what we keep of a payment, a scrubber for what we log.

Payment groups can carry any card, gift-card or account secret a payment
gateway invents, so we keep only named fields rather than delete known ones.
The allow-lists are the declared payment group and refund method shapes
(`service/shapes.py`): a field is either declared there or dropped.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from domain.pci import SENSITIVE_KEYS, scrub
from service.shapes import PAYMENT_GROUP_FIELDS, REFUND_METHOD_FIELDS

__all__ = ["PAYMENT_GROUP_FIELDS", "REFUND_METHOD_FIELDS", "allow", "scrub_processor"]


def allow(source: dict[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in source.items() if k in fields}


def scrub_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the last line of defence if a payload reaches a log call."""
    for key in list(event_dict):
        if key.lower() in SENSITIVE_KEYS:
            event_dict[key] = "[redacted]"
        elif isinstance(event_dict[key], dict | list):
            event_dict[key] = scrub(event_dict[key])
    return event_dict
