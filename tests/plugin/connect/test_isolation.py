"""Tenant isolation: a tenant's token never reads another tenant's items."""

from __future__ import annotations

import pytest
from connect_support import ACME, GLOBEX, ConnectHarness

from plugin.api.core import ApiError, authenticate

PANEL = "/connect/issue-panel"
DATA = "/connect/issue-panel/data"
API_PATH = "/api/v1/rulesets"


@pytest.fixture
def two_sites(acme: ConnectHarness) -> ConnectHarness:
    assert acme.install(GLOBEX).status_code == 204
    # The same key on both sites (failing on ACME, passing on GLOBEX), and a key only GLOBEX has.
    acme.store_item(ACME, "OUT-7", "ACME plan upgrades")
    acme.store_item(GLOBEX, "OUT-7", "GLOBEX warehouse robots", complete=True)
    acme.store_item(GLOBEX, "OUT-9", "GLOBEX secret merger")
    return acme


def panel_page(connect: ConnectHarness, token: str, key: str) -> tuple[int, str]:
    response = connect.client.get(PANEL, query_string=[("issueKey", key), ("jwt", token)])
    return response.status_code, response.get_data(as_text=True)


def test_panel_shows_the_tokens_own_site(two_sites: ConnectHarness) -> None:
    params = [("issueKey", "OUT-7")]
    status, page = panel_page(two_sites, two_sites.token(ACME, "GET", PANEL, params), "OUT-7")
    assert status == 200
    assert '<span class="status status-fail">fail</span>' in page
    assert "How to fix:" in page
    status, page = panel_page(two_sites, two_sites.token(GLOBEX, "GET", PANEL, params), "OUT-7")
    assert status == 200
    assert '<span class="status status-pass">pass</span>' in page
    assert 'class="status status-fail"' not in page


def test_panel_never_finds_another_sites_item(two_sites: ConnectHarness) -> None:
    params = [("issueKey", "OUT-9")]
    status, page = panel_page(two_sites, two_sites.token(ACME, "GET", PANEL, params), "OUT-9")
    assert status == 200
    assert "has not checked this issue yet" in page
    assert "merger" not in page


def test_data_route_is_scoped_to_the_tokens_tenant(two_sites: ConnectHarness) -> None:
    for site, status in ((ACME, "fail"), (GLOBEX, "pass")):
        token = two_sites.token(site, "GET", DATA, [("issueKey", "OUT-7")])
        response = two_sites.client.get(
            DATA, query_string={"issueKey": "OUT-7"}, headers={"Authorization": f"JWT {token}"}
        )
        assert response.status_code == 200
        assert response.get_json()["status"] == status
    token = two_sites.token(ACME, "GET", DATA, [("issueKey", "OUT-9")])
    response = two_sites.client.get(
        DATA, query_string={"issueKey": "OUT-9"}, headers={"Authorization": f"JWT {token}"}
    )
    assert response.get_json()["found"] is False
    assert "merger" not in response.get_json()["html"]


@pytest.mark.parametrize(
    "forgery",
    ["iss of B signed with A's secret", "iss of A signed with B's secret"],
)
def test_a_token_cannot_claim_another_tenant(two_sites: ConnectHarness, forgery: str) -> None:
    params = [("issueKey", "OUT-9")]
    if forgery == "iss of B signed with A's secret":
        token = two_sites.token(GLOBEX, "GET", PANEL, params, secret=ACME.shared_secret)
    else:
        token = two_sites.token(ACME, "GET", PANEL, params, secret=GLOBEX.shared_secret)
    status, page = panel_page(two_sites, token, "OUT-9")
    assert status == 401
    assert "<code>bad_signature</code>" in page and "merger" not in page


def api_principal(connect: ConnectHarness, token: str) -> tuple[int | None, str]:
    """Authenticate an API request the way every /api/v1 route does."""
    with connect.app.test_request_context(API_PATH, headers={"Authorization": f"JWT {token}"}):
        try:
            principal = authenticate()
        except ApiError as error:
            return None, error.code
    return principal.tenant_id, principal.name


def test_api_hook_scopes_each_token_to_its_tenant(two_sites: ConnectHarness) -> None:
    acme_id = two_sites.tenant(ACME.client_key).id
    globex_id = two_sites.tenant(GLOBEX.client_key).id
    assert acme_id != globex_id
    context = two_sites.token(ACME, "GET", API_PATH, qsh="context-qsh")
    assert api_principal(two_sites, context)[0] == acme_id
    request_token = two_sites.token(GLOBEX, "GET", API_PATH)
    assert api_principal(two_sites, request_token) == (
        globex_id,
        "712020:9b0e6c4d-1f2a-4c3b-8d7e-5a6b7c8d9e0f",
    )


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("iss of B signed with A's secret", "bad_signature"),
        ("another route's qsh", "qsh_mismatch"),
        ("disabled tenant", "tenant_disabled"),
    ],
)
def test_api_hook_refuses(two_sites: ConnectHarness, case: str, code: str) -> None:
    if case == "iss of B signed with A's secret":
        token = two_sites.token(
            GLOBEX, "GET", API_PATH, qsh="context-qsh", secret=ACME.shared_secret
        )
    elif case == "another route's qsh":
        token = two_sites.token(ACME, "GET", "/api/v1/reports")
    else:
        disable = two_sites.token(GLOBEX, "POST", "/connect/disabled")
        response = two_sites.lifecycle("/connect/disabled", two_sites.body(GLOBEX), disable)
        assert response.status_code == 204
        token = two_sites.token(GLOBEX, "GET", API_PATH, qsh="context-qsh")
    assert api_principal(two_sites, token) == (None, code)
