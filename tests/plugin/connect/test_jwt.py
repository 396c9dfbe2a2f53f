"""The canonical request and qsh against Atlassian's published examples, and token checks."""

from __future__ import annotations

import hashlib
import time
from urllib.parse import parse_qsl

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from plugin.connect.errors import ConnectError
from plugin.connect.jwt import (
    CONTEXT_QSH,
    canonical_request,
    mint_token,
    query_string_hash,
    request_target,
    verify_install_token,
    verify_shared_secret_token,
)

SECRET = "a-shared-secret-of-realistic-length-0123456789"


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        # reference/jira.md §2, checked against atlassian-jwt 3.0.0.
        (
            "GET",
            "/rest/api/3/search/jql?jql=project%20%3D%20ABC&fields=summary,labels&maxResults=50",
            "GET&/rest/api/3/search/jql&fields=summary%2Clabels&jql=project%20%3D%20ABC"
            "&maxResults=50",
        ),
        ("POST", "/installed", "POST&/installed&"),
        # Atlassian's canonicaliser documentation: repeated keys join their sorted values.
        (
            "GET",
            "/path/to/service?zee_last=param&repeated=parameter%202&first=param"
            "&repeated=parameter%201",
            "GET&/path/to/service&first=param&repeated=parameter%201,parameter%202&zee_last=param",
        ),
        # The jwt parameter is left out; a trailing slash and an empty path are normalised.
        ("get", "/some/path/?param=value&jwt=abc.def.ghi", "GET&/some/path&param=value"),
        ("GET", "", "GET&/&"),
        # RFC 3986: '~' stays, '*' and '+' (a space) and '&' in a path are encoded.
        ("GET", "/a&b?q=x~y*z+w", "GET&/a%26b&q=x~y%2Az%20w"),
        # Keys sort by code point: upper case first.
        ("GET", "/p?b=2&a=1&B=3", "GET&/p&B=3&a=1&b=2"),
    ],
)
def test_canonical_request_matches_atlassian(method: str, url: str, expected: str) -> None:
    path, _, query = url.partition("?")
    params = parse_qsl(query, keep_blank_values=True)
    assert canonical_request(method, path, params) == expected
    assert query_string_hash(method, path, params) == hashlib.sha256(expected.encode()).hexdigest()


def test_request_target_drops_the_context_path() -> None:
    path, params = request_target(
        "https://jira.example.com/jira/rest/api/2/issue/A-1?fields=a,b",
        "https://jira.example.com/jira",
    )
    assert path == "/rest/api/2/issue/A-1"
    assert params == [("fields", "a,b")]
    assert request_target("https://x.atlassian.net", "https://x.atlassian.net/")[0] == "/"


def test_minted_token_verifies_for_its_request_only() -> None:
    token = mint_token(
        issuer="leanguard", secret=SECRET, method="PUT", path="/rest/api/3/issue/A-1"
    )
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["iss"] == "leanguard"
    assert claims["exp"] - claims["iat"] == 180
    qsh = query_string_hash("PUT", "/rest/api/3/issue/A-1")
    assert verify_shared_secret_token(token, SECRET, qsh=qsh, allow_context_qsh=False)["qsh"] == qsh
    with pytest.raises(ConnectError) as refused:
        verify_shared_secret_token(
            token,
            SECRET,
            qsh=query_string_hash("GET", "/rest/api/3/issue/A-1"),
            allow_context_qsh=False,
        )
    assert refused.value.code == "qsh_mismatch"


def test_expiry_has_a_small_leeway() -> None:
    qsh = query_string_hash("GET", "/x")
    now = time.time()
    late = mint_token(issuer="i", secret=SECRET, method="GET", path="/x", ttl_s=60, now=now - 80)
    assert verify_shared_secret_token(late, SECRET, qsh=qsh, allow_context_qsh=False)["iss"] == "i"
    too_late = mint_token(
        issuer="i", secret=SECRET, method="GET", path="/x", ttl_s=60, now=now - 100
    )
    with pytest.raises(ConnectError) as refused:
        verify_shared_secret_token(too_late, SECRET, qsh=qsh, allow_context_qsh=False)
    assert refused.value.code == "token_expired"


def test_context_qsh_only_where_allowed() -> None:
    now = int(time.time())
    token = jwt.encode(
        {"iss": "i", "iat": now, "exp": now + 60, "qsh": CONTEXT_QSH}, SECRET, algorithm="HS256"
    )
    qsh = query_string_hash("GET", "/x")
    assert (
        verify_shared_secret_token(token, SECRET, qsh=qsh, allow_context_qsh=True)["qsh"]
        == CONTEXT_QSH
    )
    with pytest.raises(ConnectError) as refused:
        verify_shared_secret_token(token, SECRET, qsh=qsh, allow_context_qsh=False)
    assert refused.value.code == "context_token_refused"


def test_token_without_qsh_is_refused() -> None:
    now = int(time.time())
    token = jwt.encode({"iss": "i", "iat": now, "exp": now + 60}, SECRET, algorithm="HS256")
    with pytest.raises(ConnectError) as refused:
        verify_shared_secret_token(token, SECRET, qsh="x", allow_context_qsh=True)
    assert refused.value.code == "missing_claim"


def test_install_token_needs_rs256_and_the_audience(install_key: rsa.RSAPrivateKey) -> None:
    now = int(time.time())
    qsh = query_string_hash("POST", "/connect/installed")
    claims = {
        "iss": "ck",
        "aud": "https://app.example.com",
        "iat": now,
        "exp": now + 60,
        "qsh": qsh,
    }
    token = jwt.encode(claims, install_key, algorithm="RS256", headers={"kid": "k"})
    public = install_key.public_key()
    verified = verify_install_token(token, public, audience=["https://app.example.com"], qsh=qsh)
    assert verified["iss"] == "ck"
    with pytest.raises(ConnectError) as refused:
        verify_install_token(token, public, audience=["https://other.example.com"], qsh=qsh)
    assert refused.value.code == "wrong_audience"
    hs256 = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(ConnectError) as refused:
        verify_install_token(hs256, public, audience=["https://app.example.com"], qsh=qsh)
    assert refused.value.code == "signed_install_required"
