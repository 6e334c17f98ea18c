"""Signs webhook bodies the way Commerce does: base64 HMAC of the raw bytes, base64 secret."""

from __future__ import annotations

import base64
import hashlib
import hmac


def sign(body: bytes, secret_b64: str, algo: str = "sha512") -> str:
    key = base64.b64decode(secret_b64)
    return base64.b64encode(hmac.new(key, body, getattr(hashlib, algo)).digest()).decode()
