"""HMAC checks for Jira admin webhooks (WebSub style) and Linear webhooks."""

from __future__ import annotations

import hmac
import re

from webhooks.errors import BadSignature

# Methods a WebSub-style ``X-Hub-Signature`` may name. Jira sends sha256; its docs warn
# the method may change, so the prefix is parsed, but weak digests (sha1, md5) are refused.
HUB_METHODS = frozenset({"sha256", "sha512"})

_HEX = re.compile(r"[0-9a-fA-F]+")


def _digest(secret: str, body: bytes, method: str) -> str:
    if not secret:
        # An empty key makes every signature forgeable; callers must close the endpoint.
        raise ValueError("the webhook secret must not be empty")
    return hmac.new(secret.encode("utf-8"), body, method).hexdigest()


def _check(secret: str, body: bytes, algorithm: str, given: str, header: str) -> None:
    expected = _digest(secret, body, algorithm)
    # Check the shape first: compare_digest refuses non-ASCII str, and the length of a
    # digest is public, so failing early on it leaks nothing.
    if len(given) != len(expected) or not _HEX.fullmatch(given):
        raise BadSignature(f"The {header} header is not a hex {algorithm} digest.")
    # Constant-time comparison, so response timing reveals nothing about the digest.
    if not hmac.compare_digest(expected.encode("ascii"), given.lower().encode("ascii")):
        raise BadSignature(f"The {header} does not match the body.")


def verify_hub_signature(secret: str, body: bytes, header: str | None) -> None:
    """Check an ``X-Hub-Signature: <method>=<hex>`` header over the raw body."""
    if header is None or not header.strip():
        raise BadSignature("The X-Hub-Signature header is missing.")
    method, sep, signature = header.strip().partition("=")
    if not sep or not method or not signature:
        raise BadSignature("The X-Hub-Signature header is not of the form 'sha256=<hex>'.")
    algorithm = method.lower()
    if algorithm not in HUB_METHODS:
        supported = ", ".join(sorted(HUB_METHODS))
        raise BadSignature(
            f"The X-Hub-Signature method {method[:16]!r} is not supported; use one of {supported}."
        )
    _check(secret, body, algorithm, signature, "X-Hub-Signature")


def verify_linear_signature(secret: str, body: bytes, header: str | None) -> None:
    """Check a ``Linear-Signature`` header (hex HMAC-SHA256 of the raw body, no prefix)."""
    if header is None or not header.strip():
        raise BadSignature("The Linear-Signature header is missing.")
    _check(secret, body, "sha256", header.strip(), "Linear-Signature")
