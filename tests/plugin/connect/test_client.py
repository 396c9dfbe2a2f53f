"""Calls to Jira as a Connect app: the signing auth and the issue-view status."""

from __future__ import annotations

import hashlib
from typing import Any

import jwt
import pytest
import requests
import responses

from plugin.connect.auth import ConnectJWTAuth
from plugin.connect.client import issue_context_status

SECRET = "tenant-shared-secret-Lk8Jh7Gf6Ds5Aq4Ws3Ed2Rf1"


def sent_claims(call: Any, secret: str = SECRET) -> dict[str, Any]:
    scheme, _, token = call.request.headers["Authorization"].partition(" ")
    assert scheme == "JWT"
    claims: dict[str, Any] = jwt.decode(token, secret, algorithms=["HS256"])
    return claims


def test_each_request_gets_its_own_token() -> None:
    session = requests.Session()
    session.auth = ConnectJWTAuth(
        app_key="leanguard", base_url="https://acme.atlassian.net", secret=SECRET
    )
    with responses.RequestsMock() as rsps:
        rsps.get("https://acme.atlassian.net/rest/api/3/issue/OUT-7", json={})
        rsps.put("https://acme.atlassian.net/rest/api/3/issue/OUT-7", status=204)
        session.get(
            "https://acme.atlassian.net/rest/api/3/issue/OUT-7",
            params={"fields": "summary,labels", "expand": "names"},
        )
        session.put("https://acme.atlassian.net/rest/api/3/issue/OUT-7?notifyUsers=false", json={})
        first, second = (sent_claims(call) for call in rsps.calls)
    expected = [
        "GET&/rest/api/3/issue/OUT-7&expand=names&fields=summary%2Clabels",
        "PUT&/rest/api/3/issue/OUT-7&notifyUsers=false",
    ]
    assert [first["qsh"], second["qsh"]] == [
        hashlib.sha256(text.encode()).hexdigest() for text in expected
    ]
    for claims in (first, second):
        assert claims["iss"] == "leanguard"
        assert claims["exp"] - claims["iat"] == 180


def test_the_context_path_is_not_part_of_the_hash() -> None:
    session = requests.Session()
    session.auth = ConnectJWTAuth(
        app_key="leanguard", base_url="https://jira.example.com/jira/", secret=SECRET
    )
    with responses.RequestsMock() as rsps:
        rsps.get("https://jira.example.com/jira/rest/api/2/myself", json={})
        session.get("https://jira.example.com/jira/rest/api/2/myself")
        claims = sent_claims(rsps.calls[0])
    assert claims["qsh"] == hashlib.sha256(b"GET&/rest/api/2/myself&").hexdigest()


def test_no_token_leaves_for_another_host() -> None:
    session = requests.Session()
    session.auth = ConnectJWTAuth(
        app_key="leanguard", base_url="https://acme.atlassian.net", secret=SECRET
    )
    with responses.RequestsMock() as rsps:
        rsps.get("https://elsewhere.example.com/collect", body="ok")
        session.get("https://elsewhere.example.com/collect")
        assert "Authorization" not in rsps.calls[0].request.headers


def test_the_secret_is_read_for_every_request() -> None:
    secrets = iter([SECRET, "the-next-secret-after-a-reinstall-000000"])
    session = requests.Session()
    session.auth = ConnectJWTAuth(
        app_key="leanguard", base_url="https://acme.atlassian.net", secret=lambda: next(secrets)
    )
    with responses.RequestsMock() as rsps:
        rsps.get("https://acme.atlassian.net/rest/api/3/myself", json={})
        session.get("https://acme.atlassian.net/rest/api/3/myself")
        session.get("https://acme.atlassian.net/rest/api/3/myself")
        sent_claims(rsps.calls[0])
        sent_claims(rsps.calls[1], "the-next-secret-after-a-reinstall-000000")


@pytest.mark.parametrize(
    ("value", "label", "lozenge"),
    [
        ({"status": "fail", "violations": 2}, "2 to fix", "removed"),
        ({"status": "pass", "violations": 0}, "OK", "success"),
        ({"status": "waived", "violations": 0}, "waived", "default"),
        ({"status": "fail", "violations": True}, "fail", "removed"),
    ],
)
def test_issue_context_status(value: dict[str, Any], label: str, lozenge: str) -> None:
    assert issue_context_status(value) == {
        "type": "lozenge",
        "value": {"label": label, "type": lozenge},
    }
