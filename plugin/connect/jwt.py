"""Connect JWTs: Atlassian's canonical request and its hash (qsh), verifying and minting tokens."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from plugin.connect.errors import ConnectError

CONTEXT_QSH = "context-qsh"
"""The fixed ``qsh`` of tokens from ``AP.context.getToken()`` (the ``context-qsh`` migration)."""
JWT_PARAM = "jwt"
INBOUND_LEEWAY_S = 30
"""Clock skew tolerated on ``exp`` of tokens Jira sends."""
OUTBOUND_TTL_S = 180
"""Lifetime of the tokens leanguard signs for its calls to Jira (Atlassian recommends 3 min)."""

Params = Iterable[tuple[str, str]]


def percent_encode(value: str) -> str:
    """Encode per RFC 3986 as Atlassian's canonicaliser does: only ``A-Za-z0-9-._~`` stay."""
    # Space becomes %20 (never '+'), ',' becomes %2C and '*' becomes %2A: any other choice
    # produces a different hash than Jira's and every token would fail.
    return quote(value, safe="~")


def canonical_uri(path: str) -> str:
    """Return the canonical path: leading '/', no trailing '/', '&' encoded."""
    path = path.rstrip("/") or "/"
    if not path.startswith("/"):
        path = "/" + path
    # An unencoded '&' would let "/a&b=c" and "/a?b=c" share one hash.
    return path.replace("&", "%26")


def canonical_query(params: Params) -> str:
    """Return the canonical query: ``jwt`` dropped, keys sorted, repeated values joined by ','."""
    grouped: dict[str, list[str]] = {}
    for name, value in params:
        if name != JWT_PARAM:
            grouped.setdefault(name, []).append(value)
    pairs = sorted(
        (percent_encode(name), ",".join(percent_encode(value) for value in sorted(values)))
        for name, values in grouped.items()
    )
    return "&".join(f"{name}={value}" for name, value in pairs)


def canonical_request(method: str, path: str, params: Params = ()) -> str:
    """Return ``METHOD&canonical-path&canonical-query``, the string the qsh hashes."""
    return f"{method.upper()}&{canonical_uri(path)}&{canonical_query(params)}"


def query_string_hash(method: str, path: str, params: Params = ()) -> str:
    """Return the qsh claim of a request: hex SHA-256 of its canonical form."""
    return hashlib.sha256(canonical_request(method, path, params).encode("utf-8")).hexdigest()


def request_target(url: str, base_url: str) -> tuple[str, list[tuple[str, str]]]:
    """Split an absolute URL into its path relative to ``base_url`` and its query pairs."""
    parts = urlsplit(url)
    # The canonical path leaves out the site's context path (Data Center's /jira, say).
    context = urlsplit(base_url).path.rstrip("/")
    path = parts.path
    if context and (path == context or path.startswith(context + "/")):
        path = path[len(context) :]
    return path or "/", parse_qsl(parts.query, keep_blank_values=True)


def unverified_claims(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return a token's header and claims without checking anything; only to pick a key."""
    try:
        header = pyjwt.get_unverified_header(token)
        claims = pyjwt.decode(token, options={"verify_signature": False})
    except pyjwt.PyJWTError as exc:
        raise ConnectError("malformed_token", "The JWT cannot be decoded.") from exc
    if not isinstance(claims, dict):
        raise ConnectError("malformed_token", "The JWT claims are not an object.")
    return header, claims


def verify_shared_secret_token(
    token: str,
    secret: str,
    *,
    qsh: str,
    allow_context_qsh: bool,
    leeway: int = INBOUND_LEEWAY_S,
) -> dict[str, Any]:
    """Verify an HS256 token signed with a tenant's shared secret and bound to this request."""
    header, _ = unverified_claims(token)
    algorithm = header.get("alg")
    if algorithm != "HS256":
        # Never let the token choose its algorithm: "none" would skip the signature, and an
        # RS256 header could trick a verifier into using a public key as the HMAC secret.
        raise ConnectError(
            "wrong_algorithm", f"Requests from Jira must be signed with HS256, not {algorithm!r}."
        )
    claims = _decode(
        token,
        secret,
        algorithms=["HS256"],
        leeway=leeway,
        # Tokens Jira sends carry no audience leanguard could check; the tenant's secret and
        # the qsh bind the token to this app and this request.
        options={"require": ["iss", "exp", "qsh"], "verify_aud": False},
    )
    check_qsh(claims, qsh, allow_context_qsh=allow_context_qsh)
    return claims


def verify_install_token(
    token: str,
    public_key: RSAPublicKey,
    *,
    audience: list[str],
    qsh: str,
    leeway: int = INBOUND_LEEWAY_S,
) -> dict[str, Any]:
    """Verify an RS256 signed-install token: Atlassian's key, our base URL, this request."""
    header, _ = unverified_claims(token)
    if header.get("alg") != "RS256":
        # Signed install (apiMigrations): an install signed with anything else could come from
        # anyone who knows the body's clientKey.
        raise ConnectError(
            "signed_install_required", "Install and uninstall callbacks must be signed with RS256."
        )
    claims = _decode(
        token,
        public_key,
        algorithms=["RS256"],
        leeway=leeway,
        audience=audience,
        options={"require": ["iss", "exp", "qsh", "aud"]},
    )
    check_qsh(claims, qsh, allow_context_qsh=False)
    return claims


def check_qsh(claims: Mapping[str, Any], expected: str, *, allow_context_qsh: bool) -> None:
    """Refuse a token whose qsh is not this request's (or a context token where none is allowed)."""
    claimed = claims.get("qsh")
    if not isinstance(claimed, str) or not claimed:
        raise ConnectError("missing_qsh", "The token has no qsh claim.")
    if claimed == CONTEXT_QSH:
        if allow_context_qsh:
            return
        # A context token proves only that a user has a page of the app open; it names no
        # request, so it must never authorise a webhook or a lifecycle callback.
        raise ConnectError(
            "context_token_refused",
            "A context token (qsh 'context-qsh') is only accepted from the app's own pages.",
        )
    if not hmac.compare_digest(claimed.encode(), expected.encode()):
        raise ConnectError(
            "qsh_mismatch", "The token's qsh does not match this request's method, path and query."
        )


def mint_token(
    *,
    issuer: str,
    secret: str,
    method: str,
    path: str,
    params: Params = (),
    ttl_s: int = OUTBOUND_TTL_S,
    now: float | None = None,
    claims: Mapping[str, Any] | None = None,
) -> str:
    """Sign an HS256 token for one request: ``iss``, ``iat``, ``exp`` and its ``qsh``."""
    issued = int(time.time() if now is None else now)
    payload: dict[str, Any] = {
        **(claims or {}),
        "iss": issuer,
        "iat": issued,
        "exp": issued + ttl_s,
        "qsh": query_string_hash(method, path, params),
    }
    return pyjwt.encode(payload, secret, algorithm="HS256")


def _decode(token: str, key: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = pyjwt.decode(token, key, **kwargs)
    except pyjwt.ExpiredSignatureError as exc:
        raise ConnectError("token_expired", "The JWT has expired.") from exc
    except pyjwt.InvalidSignatureError as exc:
        raise ConnectError("bad_signature", "The JWT signature does not verify.") from exc
    except pyjwt.InvalidAudienceError as exc:
        raise ConnectError(
            "wrong_audience", "The JWT audience is not this app's base URL."
        ) from exc
    except pyjwt.MissingRequiredClaimError as exc:
        raise ConnectError("missing_claim", f"The JWT has no {exc.claim!r} claim.") from exc
    except pyjwt.ImmatureSignatureError as exc:
        raise ConnectError("token_not_yet_valid", "The JWT is not valid yet.") from exc
    except pyjwt.PyJWTError as exc:
        raise ConnectError("malformed_token", f"The JWT is not valid: {exc}.") from exc
    return claims
