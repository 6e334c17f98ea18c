"""Money as Decimal in the currency's minor units (ISO 4217)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

MINOR_UNITS: dict[str, int] = {
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
}
"""Currencies whose minor unit is not 2; every other currency has 2 digits."""


def digits(currency: str) -> int:
    return MINOR_UNITS.get(currency.upper(), 2)


@lru_cache(maxsize=64)
def quantum(currency: str) -> Decimal:
    """Cached (bounded: currency codes come from payloads): an Order Submit quantizes a dozen
    amounts, all in one currency."""
    return Decimal(1).scaleb(-digits(currency))


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Half-up, as a cashier rounds: the rule Commerce's own refund figures follow."""
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)
