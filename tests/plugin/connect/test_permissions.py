"""Changing a project's rules from inside Jira takes Jira's project-admin permission."""

from __future__ import annotations

import json

import jwt
import pytest
from connect_support import ACME, APP_KEY, ConnectHarness
from support.contracts import tracker_mock

from plugin.connect.jwt import query_string_hash

RULES = "/api/v1/rulesets/jira/OUT"
SWITCH_OFF = "version: 1\nextends: lean\nrules:\n  - id: success-metric\n    mode: 'off'\n"
ACCOUNT = "712020:9b0e6c4d-1f2a-4c3b-8d7e-5a6b7c8d9e0f"


def context_headers(connect: ConnectHarness) -> dict[str, str]:
    token = connect.token(ACME, "PUT", RULES, qsh="context-qsh")
    return {"Authorization": f"JWT {token}"}


def grants(*, project_admin: bool) -> dict[str, object]:
    project = [{"permission": "ADMINISTER_PROJECTS", "projects": [10400]}] if project_admin else []
    return {"globalPermissions": [], "projectPermissions": project}


@pytest.mark.parametrize(("project_admin", "status"), [(True, 200), (False, 403)])
def test_only_project_admins_change_rules(
    acme: ConnectHarness, project_admin: bool, status: int
) -> None:
    with tracker_mock() as jira:
        jira.get(f"{ACME.base_url}/rest/api/3/project/OUT", json={"id": "10400", "key": "OUT"})
        jira.post(
            f"{ACME.base_url}/rest/api/3/permissions/check",
            json=grants(project_admin=project_admin),
        )
        response = acme.client.put(
            RULES, headers=context_headers(acme), json={"yaml": SWITCH_OFF, "note": "n"}
        )
        checked = json.loads(jira.calls[-1].request.body or b"{}")
        sent = jira.calls[-1].request.headers["Authorization"].removeprefix("JWT ")
    assert response.status_code == status, response.get_json()
    if status == 403:
        assert response.get_json()["code"] == "not_project_admin"
    assert checked == {
        "accountId": ACCOUNT,
        "globalPermissions": ["ADMINISTER"],
        "projectPermissions": [{"permissions": ["ADMINISTER_PROJECTS"], "projects": [10400]}],
    }
    # The question goes to Jira signed as the app, for exactly that request.
    claims = jwt.decode(sent, ACME.shared_secret, algorithms=["HS256"])
    assert claims["iss"] == APP_KEY
    assert claims["qsh"] == query_string_hash("POST", "/rest/api/3/permissions/check", [])


def test_site_admins_change_any_project(acme: ConnectHarness) -> None:
    with tracker_mock() as jira:
        jira.get(f"{ACME.base_url}/rest/api/3/project/OUT", json={"id": "10400", "key": "OUT"})
        jira.post(
            f"{ACME.base_url}/rest/api/3/permissions/check",
            json={"globalPermissions": ["ADMINISTER"], "projectPermissions": []},
        )
        response = acme.client.put(
            RULES, headers=context_headers(acme), json={"yaml": SWITCH_OFF, "note": "n"}
        )
    assert response.status_code == 200


def test_reading_rules_needs_no_permission_check(acme: ConnectHarness) -> None:
    token = acme.token(ACME, "GET", RULES, qsh="context-qsh")
    with tracker_mock() as jira:
        response = acme.client.get(RULES, headers={"Authorization": f"JWT {token}"})
        assert len(jira.calls) == 0
    assert response.status_code == 200


def test_jira_not_answering_the_check_is_a_503_not_a_save(acme: ConnectHarness) -> None:
    with tracker_mock() as jira:
        jira.get(f"{ACME.base_url}/rest/api/3/project/OUT", status=503, body="busy")
        response = acme.client.put(
            RULES, headers=context_headers(acme), json={"yaml": SWITCH_OFF, "note": "n"}
        )
    assert response.status_code == 503
    assert response.get_json()["code"] == "permission_check_failed"
    history = acme.client.get(f"{RULES}/history", headers=context_headers(acme))
    assert history.get_json()["versions"] == []
