"""Lifecycle callbacks: signed install, uninstall, enable and disable, and the stored secret."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import requests
import responses
from connect_support import ACME, GLOBEX, KEYS_URL, KID, ConnectHarness, public_pem
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import text

from plugin.connect.errors import ConnectError
from plugin.connect.tenants import SecretBox, connect_details
from plugin.storage import get_or_create_tenant

WEBHOOK_BODY = b'{"webhookEvent": "jira:issue_updated", "issue": {"key": "OUT-7"}}'


def webhook(connect: ConnectHarness, token: str) -> Any:
    return connect.client.post(
        "/webhooks/jira",
        data=WEBHOOK_BODY,
        headers={"Authorization": f"JWT {token}", "Content-Type": "application/json"},
    )


def test_install_stores_the_tenant(acme: ConnectHarness) -> None:
    tenant = acme.tenant(ACME.client_key)
    assert tenant.tracker == "jira"
    assert tenant.site == ACME.base_url
    assert tenant.enabled is True
    details = connect_details(tenant)
    assert details["app_key"] == "leanguard"
    assert details["installed"] is True
    assert details["status_property"] == (
        "com.atlassian.jira.issue:leanguard:leanguard-status:status"
    )


def test_the_secret_is_encrypted_at_rest(acme: ConnectHarness) -> None:
    with acme.runtime.database.engine.connect() as connection:
        stored = connection.execute(
            text("SELECT shared_secret FROM tenants WHERE client_key = :key"),
            {"key": ACME.client_key},
        ).scalar_one()
    assert ACME.shared_secret not in stored
    assert stored.startswith("v1:")
    box = SecretBox("connect-tests-secret-key-6f1d0b9a4c3e2d1f")
    assert box.open(stored, client_key=ACME.client_key) == ACME.shared_secret
    # Another secret key, or the same ciphertext under another tenant, opens nothing.
    with pytest.raises(ConnectError) as other_key:
        SecretBox("another-secret-key").open(stored, client_key=ACME.client_key)
    assert other_key.value.code == "tenant_secret_unreadable"
    with pytest.raises(ConnectError):
        box.open(stored, client_key=GLOBEX.client_key)


def test_reinstall_rotates_the_secret(acme: ConnectHarness) -> None:
    path = "/webhooks/jira"
    assert webhook(acme, acme.token(ACME, "POST", path)).status_code == 200
    rotated = dataclasses.replace(
        ACME, shared_secret="acme-rotated-secret-Zx8Cv7Bn6Mm5Ll4Kk3Jj2Hh1"
    )
    assert acme.install(rotated).status_code == 204
    old = webhook(acme, acme.token(ACME, "POST", path))
    assert old.status_code == 401
    assert old.get_json()["code"] == "bad_signature"
    assert webhook(acme, acme.token(rotated, "POST", path)).status_code == 200


def test_uninstall_disables_and_keeps_the_tenant(acme: ConnectHarness) -> None:
    tenant_id = acme.tenant(ACME.client_key).id
    token = acme.install_token(ACME.client_key, path="/connect/uninstalled")
    body = acme.body(ACME, eventType="uninstalled")
    with acme.key_server():
        response = acme.lifecycle("/connect/uninstalled", body, token)
    assert response.status_code == 204
    tenant = acme.tenant(ACME.client_key)
    assert tenant.id == tenant_id and tenant.enabled is False
    assert connect_details(tenant)["installed"] is False
    refused = webhook(acme, acme.token(ACME, "POST", "/webhooks/jira"))
    assert refused.status_code == 401
    assert refused.get_json()["code"] == "tenant_disabled"
    # "enabled" cannot bring back an uninstalled app; only a new signed install can.
    again = acme.lifecycle(
        "/connect/enabled", acme.body(ACME), acme.token(ACME, "POST", "/connect/enabled")
    )
    assert again.status_code == 409
    assert again.get_json()["code"] == "not_installed"
    assert acme.install(ACME).status_code == 204
    assert acme.tenant(ACME.client_key).id == tenant_id
    assert webhook(acme, acme.token(ACME, "POST", "/webhooks/jira")).status_code == 200


def test_disable_and_enable_toggle_the_tenant(acme: ConnectHarness) -> None:
    off = acme.lifecycle(
        "/connect/disabled", acme.body(ACME), acme.token(ACME, "POST", "/connect/disabled")
    )
    assert off.status_code == 204
    assert acme.tenant(ACME.client_key).enabled is False
    refused = webhook(acme, acme.token(ACME, "POST", "/webhooks/jira"))
    assert refused.get_json()["code"] == "tenant_disabled"
    on = acme.lifecycle(
        "/connect/enabled", acme.body(ACME), acme.token(ACME, "POST", "/connect/enabled")
    )
    assert on.status_code == 204
    assert acme.tenant(ACME.client_key).enabled is True
    assert webhook(acme, acme.token(ACME, "POST", "/webhooks/jira")).status_code == 200


def test_enable_needs_the_tenants_own_token(acme: ConnectHarness) -> None:
    # A context token, another path's qsh or a body naming another tenant: all refused.
    context = acme.token(ACME, "POST", "/connect/disabled", qsh="context-qsh")
    other_path = acme.token(ACME, "POST", "/connect/enabled")
    own = acme.token(ACME, "POST", "/connect/disabled")
    answers = [
        acme.lifecycle("/connect/disabled", acme.body(ACME), context),
        acme.lifecycle("/connect/disabled", acme.body(ACME), other_path),
        acme.lifecycle("/connect/disabled", acme.body(GLOBEX), own),
    ]
    assert [(a.status_code, a.get_json()["code"]) for a in answers] == [
        (401, "context_token_refused"),
        (401, "qsh_mismatch"),
        (401, "issuer_mismatch"),
    ]
    assert acme.tenant(ACME.client_key).enabled is True


def _install_with(
    connect: ConnectHarness, token: str, body: dict[str, Any], *, serve_key: bool = True
) -> tuple[int, str]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        if serve_key:
            connect.serve_key(rsps)
        else:
            rsps.get(f"{KEYS_URL}/{KID}", status=404)
        response = connect.lifecycle("/connect/installed", body, token)
    return response.status_code, response.get_json()["code"]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unknown kid", (401, "unknown_kid")),
        ("wrong aud", (401, "wrong_audience")),
        ("host not allowed", (403, "host_not_allowed")),
        ("plain http site", (403, "insecure_base_url")),
        ("iss is not the clientKey", (401, "issuer_mismatch")),
        ("expired", (401, "token_expired")),
        ("qsh of another callback", (401, "qsh_mismatch")),
        ("signed by another key", (401, "bad_signature")),
        ("HS256 install", (401, "signed_install_required")),
        ("no kid", (401, "missing_kid")),
        ("kid is a path", (401, "unknown_kid")),
        ("no token", (401, "missing_token")),
        ("another app's key", (400, "wrong_app_key")),
        ("body without clientKey", (400, "bad_payload")),
    ],
)
def test_signed_install_failures(
    connect: ConnectHarness, case: str, expected: tuple[int, str]
) -> None:
    body = connect.body(ACME)
    token: str | None = connect.install_token(ACME.client_key)
    serve_key = True
    if case == "unknown kid":
        serve_key = False
    elif case == "wrong aud":
        token = connect.install_token(ACME.client_key, aud="https://elsewhere.example.com")
    elif case == "host not allowed":
        body = connect.body(ACME, baseUrl="https://jira.attacker.example")
    elif case == "plain http site":
        body = connect.body(ACME, baseUrl="http://acme-outcomes.atlassian.net")
    elif case == "iss is not the clientKey":
        # A genuine token of GLOBEX replayed with ACME's body: the body is not signed.
        token = connect.install_token(GLOBEX.client_key)
    elif case == "expired":
        token = connect.install_token(ACME.client_key, exp_in=-120)
    elif case == "qsh of another callback":
        token = connect.install_token(ACME.client_key, path="/connect/uninstalled")
    elif case == "signed by another key":
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = connect.install_token(ACME.client_key, key=stranger)
    elif case == "HS256 install":
        token = connect.token(ACME, "POST", "/connect/installed")
    elif case == "no kid":
        token = connect.install_token(ACME.client_key, kid="")
    elif case == "kid is a path":
        token = connect.install_token(ACME.client_key, kid="../keys?x=1")
    elif case == "no token":
        token = None
    elif case == "another app's key":
        body = connect.body(ACME, key="someone-elses-app")
    elif case == "body without clientKey":
        body = {k: v for k, v in connect.body(ACME).items() if k != "clientKey"}
    if token is None:
        response = connect.lifecycle("/connect/installed", body, None)
        outcome = (response.status_code, response.get_json()["code"])
    else:
        outcome = _install_with(connect, token, body, serve_key=serve_key)
    assert outcome == expected
    with connect.runtime.database.session() as session:
        assert session.execute(text("SELECT count(*) FROM tenants")).scalar_one() == 0


def test_install_key_is_fetched_once_with_a_timeout(connect: ConnectHarness) -> None:
    with responses.RequestsMock() as rsps:
        served = rsps.get(f"{KEYS_URL}/{KID}", body=public_pem(connect.install_key))
        for site in (ACME, GLOBEX):
            token = connect.install_token(site.client_key)
            response = connect.lifecycle("/connect/installed", connect.body(site), token)
            assert response.status_code == 204
        assert served.call_count == 1
        assert served.calls[0].request.req_kwargs["timeout"] == 5.0


def test_key_server_down_is_a_503(connect: ConnectHarness) -> None:
    with responses.RequestsMock() as rsps:
        rsps.get(f"{KEYS_URL}/{KID}", body=requests.ConnectTimeout("timed out"))
        response = connect.lifecycle(
            "/connect/installed", connect.body(ACME), connect.install_token(ACME.client_key)
        )
    assert response.status_code == 503
    assert response.get_json()["code"] == "install_keys_unavailable"


def test_allowed_hosts_are_configurable(make_connect: Any) -> None:
    connect = make_connect(connect_allowed_hosts="*.jira-dev.com, jira.example.org")
    staging = dataclasses.replace(ACME, base_url="https://acme.jira-dev.com")
    assert connect.install(staging).status_code == 204
    refused = connect.install(GLOBEX)
    assert refused.status_code == 403
    assert refused.get_json()["code"] == "host_not_allowed"


def test_a_site_with_data_is_never_taken_over(acme: ConnectHarness) -> None:
    # Another clientKey claiming ACME's site (the body's baseUrl is not signed) is refused.
    impostor = dataclasses.replace(GLOBEX, base_url=ACME.base_url)
    refused = acme.install(impostor)
    assert refused.status_code == 409
    assert refused.get_json()["code"] == "site_conflict"
    assert acme.tenant(ACME.client_key).site == ACME.base_url


def test_the_api_token_site_is_not_adopted(make_connect: Any) -> None:
    connect = make_connect(
        jira_url=ACME.base_url, jira_email="bot@acme.example", jira_api_token="t"
    )
    with connect.runtime.database.session() as session:
        get_or_create_tenant(session, tracker="jira", site=ACME.base_url)
    refused = connect.install(ACME)
    assert refused.status_code == 409
    assert refused.get_json()["code"] == "site_conflict"


def test_an_empty_row_of_the_site_is_adopted(connect: ConnectHarness) -> None:
    with connect.runtime.database.session() as session:
        row_id = get_or_create_tenant(session, tracker="jira", site=ACME.base_url).id
    assert connect.install(ACME).status_code == 204
    assert connect.tenant(ACME.client_key).id == row_id
