"""Commerce's webhook signature: base64 HMAC of the raw body, keyed by a base64 secret."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence

SIGNATURE_HEADER = "X-Oracle-CC-WebHook-Signature"
SHA512_HEADER = "X-Oracle-CC-WebHook-Signature-SHA512"
_DIGESTS = {hashlib.sha512().digest_size: "sha512", hashlib.sha1().digest_size: "sha1"}


class SecretError(ValueError):
    """A configured secret that is not base64: refuse to start rather than never match."""


class SignatureVerifier:
    """Accepts a signature made with any configured secret (rotation), SHA-512 or SHA-1,
    or, where Commerce is set up for it instead, HTTP Basic credentials."""

    def __init__(self, secrets_b64: Sequence[str], basic_auth: Sequence[str] = ()) -> None:
        self._basic = [b"Basic " + base64.b64encode(c.encode()) for c in basic_auth]
        self._keys: list[bytes] = []
        for index, secret in enumerate(secrets_b64):
            try:
                self._keys.append(base64.b64decode(secret.strip(), validate=True))
            except (binascii.Error, ValueError) as exc:
                raise SecretError(f"webhook secret #{index + 1} is not valid base64") from exc
        self._keyed = {
            algorithm: [hmac.new(key, digestmod=algorithm) for key in self._keys]
            for algorithm in _DIGESTS.values()
        }
        """HMACs keyed once and copied per body: OpenSSL 3 looks the digest up again on every
        keying, a third of a webhook's signature check."""

    @property
    def enabled(self) -> bool:
        return bool(self._keys or self._basic)

    def verify(self, body: bytes, headers: Mapping[str, str]) -> bool:
        if self._keys and self._signed(body, headers):
            return True
        offered = headers.get("Authorization", "").strip().encode()
        matched = False
        for expected in self._basic:
            matched |= hmac.compare_digest(expected, offered)
        return matched

    def _signed(self, body: bytes, headers: Mapping[str, str]) -> bool:
        offered = [(SHA512_HEADER, "sha512"), (SIGNATURE_HEADER, None)]
        for header, algorithm in offered:
            value = headers.get(header)
            if value is None:
                continue
            try:
                signature = base64.b64decode(value.strip(), validate=True)
            except (binascii.Error, ValueError):
                continue
            algo = algorithm or _DIGESTS.get(len(signature))
            if algo is None:
                continue
            if self._matches(body, signature, algo):
                return True
        return False

    def _matches(self, body: bytes, signature: bytes, algorithm: str) -> bool:
        matched = False
        for keyed in self._keyed[algorithm]:
            mac = keyed.copy()
            mac.update(body)
            matched |= hmac.compare_digest(mac.digest(), signature)
        return matched
