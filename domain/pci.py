"""Which keys carry card, gift-card or account secrets: never stored, logged or published.

Used as a last line of defence wherever a structure from outside (a Commerce
answer, a log call's arguments) might still carry one.
"""

from __future__ import annotations

from typing import Any

SENSITIVE_KEYS = frozenset(
    {
        "token",
        "creditcardnumber",
        "cardnumber",
        "expirationmonth",
        "expirationyear",
        "cvv",
        "cvv2",
        "cardverificationnumber",
        "authorizationstatus",
        "giftcardnumber",
        "pin",
        "accountnumber",
        "iban",
        "routingnumber",
        "password",
        "authorization",
        "secret",
    }
)


def scrub(value: Any) -> Any:
    """Mask sensitive keys anywhere in a structure about to be logged."""
    if isinstance(value, dict):
        return {k: "[redacted]" if str(k).lower() in SENSITIVE_KEYS else scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value
