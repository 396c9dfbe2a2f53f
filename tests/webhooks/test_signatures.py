"""Signature checks for Jira admin webhooks (X-Hub-Signature) and Linear webhooks."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from webhooks.errors import BadSignature
from webhooks.signatures import verify_hub_signature, verify_linear_signature

# Atlassian's published test vector for Jira admin webhooks.
ATLASSIAN_SECRET = "It's a Secret to Everybody"
ATLASSIAN_BODY = b"Hello World!"
ATLASSIAN_SIGNATURE = "sha256=a4771c39fbe90f317c7824e83ddef3caae9cb3d976c214ace1f2937e133263c9"

LINEAR_SECRET = "lin_wh_test_secret"
LINEAR_BODY = b'{"action":"create","type":"Issue","data":{"id":"abc"}}'


def linear_signature(body: bytes = LINEAR_BODY, secret: str = LINEAR_SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class TestHubSignature:
    def test_atlassian_test_vector_is_accepted(self) -> None:
        verify_hub_signature(ATLASSIAN_SECRET, ATLASSIAN_BODY, ATLASSIAN_SIGNATURE)

    def test_method_name_is_case_insensitive(self) -> None:
        verify_hub_signature(ATLASSIAN_SECRET, ATLASSIAN_BODY, "SHA256" + ATLASSIAN_SIGNATURE[6:])

    def test_hex_digits_may_be_upper_case(self) -> None:
        method, _, digest = ATLASSIAN_SIGNATURE.partition("=")
        verify_hub_signature(ATLASSIAN_SECRET, ATLASSIAN_BODY, f"{method}={digest.upper()}")

    def test_surrounding_whitespace_is_ignored(self) -> None:
        verify_hub_signature(ATLASSIAN_SECRET, ATLASSIAN_BODY, f"  {ATLASSIAN_SIGNATURE} ")

    def test_sha512_is_accepted_because_the_method_is_parsed(self) -> None:
        digest = hmac.new(ATLASSIAN_SECRET.encode(), ATLASSIAN_BODY, hashlib.sha512).hexdigest()
        verify_hub_signature(ATLASSIAN_SECRET, ATLASSIAN_BODY, f"sha512={digest}")

    def test_tampered_body_is_refused(self) -> None:
        with pytest.raises(BadSignature, match="does not match"):
            verify_hub_signature(ATLASSIAN_SECRET, b"Hello World?", ATLASSIAN_SIGNATURE)

    def test_wrong_secret_is_refused(self) -> None:
        with pytest.raises(BadSignature, match="does not match"):
            verify_hub_signature("another secret", ATLASSIAN_BODY, ATLASSIAN_SIGNATURE)

    @pytest.mark.parametrize("header", [None, "", "   "])
    def test_missing_header_is_refused(self, header: str | None) -> None:
        with pytest.raises(BadSignature, match="missing"):
            verify_hub_signature(ATLASSIAN_SECRET, ATLASSIAN_BODY, header)

    @pytest.mark.parametrize("header", [ATLASSIAN_SIGNATURE[7:], "sha256=", "=abc"])
    def test_header_without_method_and_digest_is_malformed(self, header: str) -> None:
        with pytest.raises(BadSignature, match="sha256=<hex>"):
            verify_hub_signature(ATLASSIAN_SECRET, ATLASSIAN_BODY, header)

    @pytest.mark.parametrize("method", ["sha1", "md5", "hmac-sha256"])
    def test_other_methods_are_refused_with_the_supported_list(self, method: str) -> None:
        digest = ATLASSIAN_SIGNATURE.partition("=")[2]
        with pytest.raises(BadSignature, match="not supported; use one of sha256, sha512"):
            verify_hub_signature(ATLASSIAN_SECRET, ATLASSIAN_BODY, f"{method}={digest}")

    def test_sha1_signature_is_refused_even_when_it_matches(self) -> None:
        digest = hmac.new(ATLASSIAN_SECRET.encode(), ATLASSIAN_BODY, hashlib.sha1).hexdigest()
        with pytest.raises(BadSignature, match="not supported"):
            verify_hub_signature(ATLASSIAN_SECRET, ATLASSIAN_BODY, f"sha1={digest}")

    @pytest.mark.parametrize(
        "digest",
        [
            "a4771c39",  # too short
            "z" * 64,  # not hex
            "é" * 64,  # not ASCII: compare_digest would raise TypeError on it
        ],
    )
    def test_digest_that_is_not_sha256_hex_is_refused(self, digest: str) -> None:
        with pytest.raises(BadSignature, match="not a hex sha256 digest"):
            verify_hub_signature(ATLASSIAN_SECRET, ATLASSIAN_BODY, f"sha256={digest}")

    def test_empty_secret_is_a_programming_error(self) -> None:
        with pytest.raises(ValueError, match="must not be empty"):
            verify_hub_signature("", ATLASSIAN_BODY, ATLASSIAN_SIGNATURE)

    def test_refusal_maps_to_401_bad_signature(self) -> None:
        with pytest.raises(BadSignature) as caught:
            verify_hub_signature(ATLASSIAN_SECRET, b"", ATLASSIAN_SIGNATURE)
        assert (caught.value.status, caught.value.code) == (401, "bad_signature")


class TestLinearSignature:
    def test_hex_hmac_of_the_raw_body_is_accepted(self) -> None:
        verify_linear_signature(LINEAR_SECRET, LINEAR_BODY, linear_signature())

    def test_upper_case_hex_is_accepted(self) -> None:
        verify_linear_signature(LINEAR_SECRET, LINEAR_BODY, linear_signature().upper())

    def test_tampered_body_is_refused(self) -> None:
        with pytest.raises(BadSignature, match="does not match"):
            verify_linear_signature(LINEAR_SECRET, LINEAR_BODY + b" ", linear_signature())

    def test_wrong_secret_is_refused(self) -> None:
        with pytest.raises(BadSignature, match="does not match"):
            verify_linear_signature("other", LINEAR_BODY, linear_signature())

    @pytest.mark.parametrize("header", [None, "", " "])
    def test_missing_header_is_refused(self, header: str | None) -> None:
        with pytest.raises(BadSignature, match="Linear-Signature header is missing"):
            verify_linear_signature(LINEAR_SECRET, LINEAR_BODY, header)

    def test_websub_prefix_is_refused(self) -> None:
        # Linear sends the bare digest; a "sha256=" prefix is not its format.
        with pytest.raises(BadSignature, match="not a hex sha256 digest"):
            verify_linear_signature(LINEAR_SECRET, LINEAR_BODY, "sha256=" + linear_signature())

    def test_non_ascii_header_is_refused_cleanly(self) -> None:
        with pytest.raises(BadSignature):
            verify_linear_signature(LINEAR_SECRET, LINEAR_BODY, "ü" * 64)

    def test_empty_secret_is_a_programming_error(self) -> None:
        with pytest.raises(ValueError, match="must not be empty"):
            verify_linear_signature("", LINEAR_BODY, linear_signature())
