"""Requests from Jira: the JWT matrix on webhooks, the issue panel and its data route."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import jwt
import pytest
from connect_support import ACME, GLOBEX, ConnectHarness, public_pem, unsigned_token
from sqlalchemy import select

from plugin.connect.jwt import query_string_hash
from plugin.storage import Delivery

WEBHOOK = "/webhooks/jira"
PANEL = "/connect/issue-panel"
DATA = "/connect/issue-panel/data"
BODY = (
    b'{"timestamp": 1795192803512, "webhookEvent": "jira:issue_updated",'
    b' "issue": {"id": "10207", "key": "OUT-7", "fields": {}}}'
)
# What Jira appends to a panel URL besides the module's own issueKey.
PANEL_PARAMS = [
    ("issueKey", "OUT-7"),
    ("xdm_e", ACME.base_url),
    ("xdm_c", "channel-leanguard__leanguard-status"),
    ("cp", ""),
    ("lic", "none"),
    ("cv", "1001.0.0-SNAPSHOT"),
]


def post_webhook(connect: ConnectHarness, authorization: str, path: str = WEBHOOK) -> Any:
    return connect.client.post(
        path,
        data=BODY,
        headers={
            "Authorization": authorization,
            "Content-Type": "application/json",
            "X-Atlassian-Webhook-Identifier": f"connect-{time.monotonic_ns()}",
        },
    )


def claims(site: Any, qsh: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": site.client_key, "iat": now, "exp": now + 180, "qsh": qsh, **changes}


def webhook_token(connect: ConnectHarness, case: str) -> str:
    """Return the ``Authorization`` header value for one case of the matrix."""
    qsh = query_string_hash("POST", WEBHOOK)
    if case == "valid":
        return f"JWT {connect.token(ACME, 'POST', WEBHOOK)}"
    if case == "expired":
        return f"JWT {connect.token(ACME, 'POST', WEBHOOK, exp_in=-60)}"
    if case == "another path's qsh":
        return f"JWT {connect.token(ACME, 'POST', '/webhooks/linear')}"
    if case == "wrong secret":
        return f"JWT {connect.token(ACME, 'POST', WEBHOOK, secret=GLOBEX.shared_secret)}"
    if case == "alg none":
        return f"JWT {unsigned_token({'alg': 'none', 'typ': 'JWT'}, claims(ACME, qsh))}"
    if case == "RS256 on an HS256 route":
        signed = jwt.encode(claims(ACME, qsh), connect.install_key, algorithm="RS256")
        return f"JWT {signed}"
    if case == "HS256 keyed with the public key":
        # The classic confusion attack: the public key (which anyone can fetch) as HMAC secret.
        header = {"alg": "HS256", "typ": "JWT"}
        forged = unsigned_token(header, claims(ACME, qsh))
        signing_input = forged.rsplit(".", 1)[0].encode()
        mac = hmac.new(public_pem(connect.install_key), signing_input, hashlib.sha256).digest()
        return f"JWT {unsigned_token(header, claims(ACME, qsh), mac)}"
    if case == "empty token":
        return "JWT "
    if case == "context token":
        return f"JWT {connect.token(ACME, 'POST', WEBHOOK, qsh='context-qsh')}"
    if case == "unknown tenant":
        return f"JWT {connect.token(ACME, 'POST', WEBHOOK, iss='not-a-client-key')}"
    if case == "not a JWT":
        return "JWT definitely-not-a-token"
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("expired", "token_expired"),
        ("another path's qsh", "qsh_mismatch"),
        ("wrong secret", "bad_signature"),
        ("alg none", "wrong_algorithm"),
        ("RS256 on an HS256 route", "wrong_algorithm"),
        ("HS256 keyed with the public key", "bad_signature"),
        ("empty token", "missing_token"),
        ("context token", "context_token_refused"),
        ("unknown tenant", "unknown_tenant"),
        ("not a JWT", "malformed_token"),
    ],
)
def test_webhook_refuses(acme: ConnectHarness, case: str, code: str) -> None:
    response = post_webhook(acme, webhook_token(acme, case))
    assert response.status_code == 401
    assert response.get_json()["code"] == code
    with acme.runtime.database.session() as session:
        assert session.scalars(select(Delivery)).first() is None


def test_webhook_accepts_a_valid_token(acme: ConnectHarness) -> None:
    response = post_webhook(acme, webhook_token(acme, "valid"))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "accepted"
    tenant_id = acme.tenant(ACME.client_key).id
    with acme.runtime.database.session() as session:
        [delivery] = session.scalars(select(Delivery)).all()
        assert delivery.tenant_id == tenant_id
        assert delivery.payload["site"] == ACME.base_url


def test_webhook_query_is_part_of_the_hash(acme: ConnectHarness) -> None:
    token = acme.token(ACME, "POST", WEBHOOK)
    moved = post_webhook(acme, f"JWT {token}", path=f"{WEBHOOK}?user_id=admin")
    assert moved.get_json()["code"] == "qsh_mismatch"
    signed = acme.token(ACME, "POST", WEBHOOK, [("user_id", "admin")])
    assert post_webhook(acme, f"JWT {signed}", path=f"{WEBHOOK}?user_id=admin").status_code == 200


@pytest.fixture
def panel(acme: ConnectHarness) -> ConnectHarness:
    acme.store_item(ACME, "OUT-7", "Self-serve plan upgrades")
    return acme


def test_panel_renders_the_result_tree(panel: ConnectHarness) -> None:
    token = panel.token(ACME, "GET", PANEL, PANEL_PARAMS)
    response = panel.client.get(PANEL, query_string=[*PANEL_PARAMS, ("jwt", token)])
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f'<script src="{ACME.base_url}/atlassian-connect/all.js"' in page
    assert page.count("<script src=") == 1
    assert 'aria-label="Result tree"' in page
    assert "Success metric" in page
    assert "How to fix:" in page
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_panel_script_host_never_comes_from_the_url(panel: ConnectHarness) -> None:
    params = [("issueKey", "OUT-7"), ("xdm_e", "https://evil.example")]
    token = panel.token(ACME, "GET", PANEL, params)
    page = panel.client.get(PANEL, query_string=[*params, ("jwt", token)]).get_data(as_text=True)
    assert "evil.example" not in page
    assert f"{ACME.base_url}/atlassian-connect/all.js" in page


def test_panel_for_an_unchecked_issue(panel: ConnectHarness) -> None:
    params = [("issueKey", "OUT-99")]
    token = panel.token(ACME, "GET", PANEL, params)
    response = panel.client.get(PANEL, query_string=[*params, ("jwt", token)])
    assert response.status_code == 200
    assert "has not checked this issue yet" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("missing token", 401, "missing_token"),
        ("context token", 401, "context_token_refused"),
        ("another issue's qsh", 401, "qsh_mismatch"),
        ("expired", 401, "token_expired"),
        ("wrong secret", 401, "bad_signature"),
    ],
)
def test_panel_refuses(panel: ConnectHarness, case: str, status: int, code: str) -> None:
    other = [("issueKey", "OUT-8")]
    tokens = {
        "missing token": None,
        "context token": panel.token(ACME, "GET", PANEL, qsh="context-qsh"),
        "another issue's qsh": panel.token(ACME, "GET", PANEL, other),
        "expired": panel.token(ACME, "GET", PANEL, PANEL_PARAMS, exp_in=-60),
        "wrong secret": panel.token(ACME, "GET", PANEL, PANEL_PARAMS, secret=GLOBEX.shared_secret),
    }
    token = tokens[case]
    query = [*PANEL_PARAMS, ("jwt", token)] if token else PANEL_PARAMS
    response = panel.client.get(PANEL, query_string=query)
    assert response.status_code == status
    page = response.get_data(as_text=True)
    assert f"<code>{code}</code>" in page
    assert "Success metric" not in page


def context_token(connect: ConnectHarness, issue_key: str) -> str:
    context = {"jira": {"issue": {"key": issue_key, "id": "10207"}, "project": {"key": "OUT"}}}
    return connect.token(ACME, "GET", DATA, qsh="context-qsh", claims={"context": context})


def test_data_route_accepts_a_context_token(panel: ConnectHarness) -> None:
    response = panel.client.get(
        DATA,
        query_string={"issueKey": "OUT-7"},
        headers={"Authorization": f"JWT {context_token(panel, 'OUT-7')}"},
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["issueKey"] == "OUT-7" and body["found"] is True
    assert body["status"] == "fail" and body["violations"] >= 1
    assert 'aria-label="Result tree"' in body["html"]


def test_data_route_accepts_a_request_token(panel: ConnectHarness) -> None:
    token = panel.token(ACME, "GET", DATA, [("issueKey", "OUT-7")])
    response = panel.client.get(
        DATA, query_string={"issueKey": "OUT-7"}, headers={"Authorization": f"JWT {token}"}
    )
    assert response.status_code == 200
    assert response.get_json()["found"] is True


def test_a_context_token_reads_only_its_own_issue(panel: ConnectHarness) -> None:
    panel.store_item(ACME, "OUT-8", "Another epic")
    response = panel.client.get(
        DATA,
        query_string={"issueKey": "OUT-8"},
        headers={"Authorization": f"JWT {context_token(panel, 'OUT-7')}"},
    )
    assert response.status_code == 403
    assert response.get_json()["code"] == "issue_not_in_context"


def test_data_route_needs_a_token(panel: ConnectHarness) -> None:
    response = panel.client.get(DATA, query_string={"issueKey": "OUT-7"})
    assert response.status_code == 401
    assert response.get_json()["code"] == "missing_token"
    assert response.headers["WWW-Authenticate"].startswith("JWT")


def test_data_route_refuses_a_bad_issue_key(panel: ConnectHarness) -> None:
    token = panel.token(ACME, "GET", DATA, [("issueKey", "../items")])
    response = panel.client.get(
        DATA, query_string={"issueKey": "../items"}, headers={"Authorization": f"JWT {token}"}
    )
    assert response.status_code == 400
    assert response.get_json()["code"] == "bad_issue_key"
