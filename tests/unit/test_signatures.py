"""Webhook signatures: SHA-512 and SHA-1, both header names, rotation, forgeries."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from service.signatures import SHA512_HEADER, SIGNATURE_HEADER, SecretError, SignatureVerifier

CURRENT = base64.b64encode(b"current-secret").decode()
PREVIOUS = base64.b64encode(b"previous-secret").decode()
BODY = b'{"order": {"id": "o1"}}'


def signature(secret_b64: str, body: bytes, algorithm: str) -> str:
    key = base64.b64decode(secret_b64)
    return base64.b64encode(hmac.new(key, body, getattr(hashlib, algorithm)).digest()).decode()


@pytest.mark.parametrize(
    ("header", "algorithm"),
    [(SIGNATURE_HEADER, "sha512"), (SIGNATURE_HEADER, "sha1"), (SHA512_HEADER, "sha512")],
)
@pytest.mark.parametrize("secret", [CURRENT, PREVIOUS])
def test_valid_signatures_pass(header: str, algorithm: str, secret: str) -> None:
    verifier = SignatureVerifier([CURRENT, PREVIOUS])
    assert verifier.verify(BODY, {header: signature(secret, BODY, algorithm)})


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {SIGNATURE_HEADER: ""},
        {SIGNATURE_HEADER: "not base64 !!"},
        {SIGNATURE_HEADER: signature(base64.b64encode(b"forged").decode(), BODY, "sha512")},
        {SIGNATURE_HEADER: signature(CURRENT, BODY + b" ", "sha512")},
        {SIGNATURE_HEADER: signature(CURRENT, BODY, "sha256")},
        {SHA512_HEADER: signature(CURRENT, BODY, "sha1")},
    ],
    ids=["missing", "empty", "garbage", "forged-key", "other-body", "sha256", "sha1-in-512-header"],
)
def test_forged_or_missing_signatures_fail(headers: dict[str, str]) -> None:
    assert not SignatureVerifier([CURRENT]).verify(BODY, headers)


def test_a_retired_secret_no_longer_verifies() -> None:
    assert not SignatureVerifier([CURRENT]).verify(
        BODY, {SIGNATURE_HEADER: signature(PREVIOUS, BODY, "sha512")}
    )


def test_the_secret_is_base64_decoded_before_use() -> None:
    """Commerce shows the secret in base64; signing with the text itself must not verify."""
    raw_text_key = base64.b64encode(CURRENT.encode()).decode()
    assert not SignatureVerifier([CURRENT]).verify(
        BODY, {SIGNATURE_HEADER: signature(raw_text_key, BODY, "sha512")}
    )


def test_secret_that_is_not_base64_refuses_to_start() -> None:
    with pytest.raises(SecretError):
        SignatureVerifier(["not*base64"])


def test_basic_auth_is_the_alternative_to_signing() -> None:
    verifier = SignatureVerifier([], ["commerce:s3cret", "commerce:next"])
    good = "Basic " + base64.b64encode(b"commerce:s3cret").decode()
    rotated = "Basic " + base64.b64encode(b"commerce:next").decode()
    wrong = "Basic " + base64.b64encode(b"commerce:guess").decode()
    assert verifier.enabled
    assert verifier.verify(BODY, {"Authorization": good})
    assert verifier.verify(BODY, {"Authorization": rotated})
    assert not verifier.verify(BODY, {"Authorization": wrong})
    assert not verifier.verify(BODY, {})
    assert not verifier.verify(BODY, {SIGNATURE_HEADER: signature(CURRENT, BODY, "sha512")})


def test_signature_and_basic_auth_can_both_be_configured() -> None:
    verifier = SignatureVerifier([CURRENT], ["commerce:s3cret"])
    assert verifier.verify(BODY, {SIGNATURE_HEADER: signature(CURRENT, BODY, "sha512")})
    assert verifier.verify(BODY, {"Authorization": "Basic " + base64.b64encode(b"commerce:s3cret").decode()})
