"""The rule-set API: every route, every error, previews, history and background re-checks."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from click.testing import CliRunner
from flask import Flask, Request
from flask.testing import FlaskClient
from openapi_spec_validator import validate as validate_openapi
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from sqlalchemy import select
from support.contracts import tracker_mock
from support.rules_admin import (
    ADMIN_TOKEN,
    JIRA_SETTINGS,
    OTHER_SITE,
    SITE,
    epic,
    jira_issue,
    make_app,
    runtime_of,
    seed,
    tenant,
)

from plugin import jobs
from plugin.api.core import CONNECT_CONTEXT_EXTENSION, Principal
from plugin.cli import main as cli
from plugin.reevaluation import EXTENSION as RUNNER_EXTENSION
from plugin.reevaluation import ReevaluationRunner
from plugin.storage import (
    CardRow,
    CardState,
    EvaluationRow,
    RulesetSource,
    WorkItemRow,
    save_card,
    save_ruleset,
)
from plugin.storage.reevaluations import create_reevaluation, get_reevaluation
from rules import StatusCategory

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PAY = "/api/v1/rulesets/jira/PAY"
REDIS_URL = os.environ.get("LEANGUARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

SWITCH_OFF_METRIC = """\
version: 1
name: jira-pay
extends: lean
rules:
  - id: success-metric
    mode: "off"
"""
GATE_METRIC = SWITCH_OFF_METRIC.replace('"off"', "gate")
WATCH_OWNER = """\
version: 1
name: jira-pay
extends: lean
fields:
  - id: owner
    name: Owner
rules:
  - id: owner-named
    description: Every epic names an owner.
    when: {kinds: [epic]}
    require: [owner]
    mode: dry-run
"""
REQUIRE_OWNER = WATCH_OWNER.replace("mode: dry-run", "mode: warn")
CORE_OWNER_NO_METRIC = """\
version: 1
name: jira-pay
extends: lean
fields:
  - id: owner
    name: Owner
rules:
  - id: success-metric
    mode: "off"
  - id: core-owner
    when: {labels: [payments-core]}
    require: [owner]
"""
BAD_MODE = """\
version: 1
extends: lean
rules:
  - id: hypothesis
    mode: sometimes
  - id: success-metric
    checks: {pattern: "("}
"""


def runner(app: Flask) -> ReevaluationRunner:
    found: ReevaluationRunner = app.extensions[RUNNER_EXTENSION]
    return found


def wait_done(client: FlaskClient, url: str, headers: dict[str, str] = AUTH) -> dict[str, Any]:
    """Poll a re-evaluation until it finishes; return its last state."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(url, headers=headers).get_json()
        if body["state"] in ("done", "failed"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"re-evaluation {url} did not finish: {body}")


def put(client: FlaskClient, yaml_text: str, note: str = "", **extra: Any) -> Any:
    return client.put(PAY, headers=AUTH, json={"yaml": yaml_text, "note": note, **extra})


# Authentication ------------------------------------------------------------------------------

ROUTES = [
    ("get", "/api/v1/rulesets"),
    ("get", PAY),
    ("put", PAY),
    ("post", PAY + "/validate"),
    ("post", PAY + "/preview"),
    ("get", PAY + "/history"),
    ("get", PAY + "/versions/1"),
    ("get", PAY + "/diff"),
    ("post", PAY + "/revert"),
    ("get", "/api/v1/reevaluations/1"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_a_valid_token(client: FlaskClient, method: str, path: str) -> None:
    missing = getattr(client, method)(path, json={"yaml": "version: 1"})
    bad = getattr(client, method)(
        path, json={"yaml": "version: 1"}, headers={"Authorization": "Bearer nope"}
    )
    bad_jwt = getattr(client, method)(path, headers={"Authorization": "JWT not-a-token"})

    assert missing.status_code == 401
    assert missing.get_json()["code"] == "missing_token"
    assert bad.status_code == 401
    assert bad.get_json()["code"] == "bad_token"
    assert bad.headers["WWW-Authenticate"].startswith("Bearer")
    assert bad_jwt.status_code == 401


def test_a_session_cookie_alone_is_not_enough(app: Flask, client: FlaskClient) -> None:
    seed(app, [epic("PAY-1")])
    with client.session_transaction() as session:
        session["leanguard_admin"] = "forged"
        session["leanguard_csrf"] = "csrf"

    answer = client.get("/api/v1/rulesets", headers={"X-CSRF-Token": "csrf"})

    assert answer.status_code == 401


# Reading and listing -------------------------------------------------------------------------


def test_list_shows_projects_with_their_rules_and_origins(app: Flask, client: FlaskClient) -> None:
    seed(app, [epic("PAY-1"), epic("PAY-2", metric=None), epic("OPS-1", project="OPS")])
    assert put(client, SWITCH_OFF_METRIC, "metric later").status_code == 200
    runner(app).wait()

    body = client.get("/api/v1/rulesets", headers=AUTH).get_json()

    by_project = {p["project"]: p for p in body["projects"]}
    assert set(by_project) == {"PAY", "OPS"}
    pay, ops = by_project["PAY"], by_project["OPS"]
    assert pay["items"] == 2 and pay["tenant"]["site"] == SITE
    assert pay["source"]["kind"] == "project" and pay["source"]["version"] == 1
    assert pay["source"]["note"] == "metric later" and pay["source"]["author"] == "admin"
    assert pay["ruleset"]["name"] == "jira-pay" and pay["ruleset"]["lineage"] == ["lean"]
    rules = {r["id"]: r for r in pay["ruleset"]["rules"]}
    assert rules["success-metric"] == {
        **rules["success-metric"],
        "origin": "lean",
        "changed_here": True,
        "mode": "off",
    }
    assert rules["hypothesis"]["changed_here"] is False
    assert ops["source"] == {"kind": "preset", "name": "lean"}
    assert ops["items"] == 1 and ops["failing"] == 0 and ops["editable"] is True
    assert pay["admin_url"].startswith("/admin/jira/PAY")


def test_read_offers_a_starting_point_until_something_is_saved(
    app: Flask, client: FlaskClient
) -> None:
    seed(app, [epic("PAY-1", metric=None)])

    body = client.get(PAY, headers=AUTH).get_json()

    assert body["saved_version"] is None
    assert body["source"] == {"kind": "preset", "name": "lean"}
    assert "extends: lean" in body["yaml"] and "name: jira-pay" in body["yaml"]
    assert body["inherits"]["name"] == "lean"
    assert body["items"] == 1 and body["failing"] == 1
    valid = client.post(PAY + "/validate", headers=AUTH, json={"yaml": body["yaml"]})
    assert valid.get_json()["valid"] is True


def test_read_of_an_unknown_tracker_or_tenant_is_404(app: Flask, client: FlaskClient) -> None:
    seed(app, [epic("PAY-1")])

    assert client.get("/api/v1/rulesets/gitlab/PAY", headers=AUTH).status_code == 404
    assert client.get("/api/v1/rulesets/linear/ENG", headers=AUTH).get_json()["code"] == (
        "no_tenant"
    )
    assert client.get(PAY + "?tenant=999", headers=AUTH).status_code == 404
    bad = client.get(PAY + "?tenant=abc", headers=AUTH)
    assert bad.status_code == 400 and bad.get_json()["code"] == "bad_tenant"


def test_several_sites_of_a_tracker_need_a_tenant(app: Flask, client: FlaskClient) -> None:
    first = seed(app, [epic("PAY-1")])
    second = seed(app, [epic("PAY-9", site=OTHER_SITE)], site=OTHER_SITE)

    ambiguous = client.get(PAY, headers=AUTH)
    chosen = client.get(f"{PAY}?tenant={second}", headers=AUTH)

    assert ambiguous.status_code == 400
    assert ambiguous.get_json()["code"] == "ambiguous_tenant"
    assert str(first) in ambiguous.get_json()["message"]
    assert chosen.status_code == 200 and chosen.get_json()["tenant"]["site"] == OTHER_SITE


# Connect callers -----------------------------------------------------------------------------


def connect_as(app: Flask, tenant_id: int) -> dict[str, str]:
    """Accept ``JWT good`` as a Connect caller of ``tenant_id`` (a stand-in for the real check)."""

    def verify(request: Request) -> Principal | None:
        header = request.headers.get("Authorization", "")
        return Principal(name="jira-user", tenant_id=tenant_id) if header == "JWT good" else None

    app.extensions[CONNECT_CONTEXT_EXTENSION] = verify
    return {"Authorization": "JWT good"}


def test_a_connect_caller_sees_and_changes_only_its_own_tenant(
    app: Flask, client: FlaskClient
) -> None:
    own = seed(app, [epic("PAY-1")])
    other = seed(app, [epic("PAY-2", site=OTHER_SITE)], site=OTHER_SITE)
    linear = tenant(app, tracker="linear", site="org-1")
    jwt = connect_as(app, own)

    listed = client.get("/api/v1/rulesets", headers=jwt).get_json()["projects"]
    read = client.get(PAY, headers=jwt)
    saved = client.put(PAY, headers=jwt, json={"yaml": SWITCH_OFF_METRIC, "note": "n"})
    foreign = [
        client.get(f"{PAY}?tenant={other}", headers=jwt),
        client.put(f"{PAY}?tenant={other}", headers=jwt, json={"yaml": SWITCH_OFF_METRIC}),
        client.post(f"{PAY}/validate?tenant={other}", headers=jwt, json={"yaml": "version: 1"}),
        client.post(f"{PAY}/preview?tenant={other}", headers=jwt, json={"yaml": "version: 1"}),
        client.get(f"{PAY}/history?tenant={other}", headers=jwt),
        client.get(f"{PAY}/diff?tenant={other}", headers=jwt),
        client.post(f"{PAY}/revert?tenant={other}", headers=jwt, json={"version": 1}),
    ]
    other_tracker = client.get(f"/api/v1/rulesets/linear/ENG?tenant={linear}", headers=jwt)
    other_tracker_implied = client.get("/api/v1/rulesets/linear/ENG", headers=jwt)

    assert [p["tenant"]["id"] for p in listed] == [own]
    assert read.status_code == 200 and read.get_json()["tenant"]["id"] == own
    # Reading is open to the tenant's users; changing needs Jira project-admin rights, which
    # only a real Connect tenant can confirm (tests/plugin/connect/test_permissions.py).
    assert saved.status_code == 403 and saved.get_json()["code"] == "not_project_admin"
    assert [a.status_code for a in foreign] == [403] * len(foreign)
    assert {a.get_json()["code"] for a in foreign} == {"other_tenant"}
    assert other_tracker.status_code == 403
    assert other_tracker_implied.status_code == 404
    runner(app).wait()


def test_another_tenants_reevaluation_is_not_found(app: Flask, client: FlaskClient) -> None:
    other = seed(app, [epic("PAY-2", site=OTHER_SITE)], site=OTHER_SITE)
    own = seed(app, [epic("PAY-1")])
    job = client.put(
        f"{PAY}?tenant={other}", headers=AUTH, json={"yaml": SWITCH_OFF_METRIC}
    ).get_json()["reevaluation"]
    runner(app).wait()
    jwt = connect_as(app, own)

    as_connect = client.get(job["url"], headers=jwt)
    as_admin = client.get(job["url"], headers=AUTH)

    assert as_connect.status_code == 404 and as_connect.get_json()["code"] == "not_found"
    assert as_admin.status_code == 200
    assert client.get("/api/v1/reevaluations/999", headers=AUTH).status_code == 404


# Bodies and validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", [PAY + "/validate", PAY + "/preview", PAY + "/revert", PAY], ids=str
)
def test_bodies_that_are_not_json_objects_are_400(
    app: Flask, client: FlaskClient, path: str
) -> None:
    seed(app, [epic("PAY-1")])
    method = client.put if path == PAY else client.post

    text = method(path, headers=AUTH, data="yaml", content_type="text/plain")
    array = method(path, headers=AUTH, json=["version: 1"])

    assert text.status_code == 400 and text.get_json()["code"] == "not_json"
    assert array.status_code == 400 and array.get_json()["code"] == "bad_json"


def test_bodies_of_the_wrong_shape_say_which_key(app: Flask, client: FlaskClient) -> None:
    seed(app, [epic("PAY-1")])

    missing = client.put(PAY, headers=AUTH, json={"note": "no yaml"})
    unknown = client.post(PAY + "/validate", headers=AUTH, json={"yaml": "x", "yml": "x"})
    empty = client.post(PAY + "/preview", headers=AUTH, json={"yaml": ""})
    version = client.post(PAY + "/revert", headers=AUTH, json={"version": "one"})
    too_long = client.put(PAY, headers=AUTH, json={"yaml": "version: 1", "note": "n" * 1001})

    assert missing.status_code == 400
    assert missing.get_json()["errors"] == [
        {"source": "body", "path": "yaml", "message": "Missing data for required field"}
    ]
    assert unknown.get_json()["errors"][0]["path"] == "yml"
    assert empty.get_json()["errors"][0]["path"] == "yaml"
    assert version.get_json()["errors"][0]["path"] == "version"
    assert too_long.get_json()["errors"][0]["path"] == "note"
    assert {a.get_json()["code"] for a in (missing, unknown, empty, version, too_long)} == {
        "bad_request"
    }


def test_an_invalid_rule_set_is_refused_with_paths_as_the_cli_says_them(
    app: Flask, client: FlaskClient, tmp_path: Path
) -> None:
    seed(app, [epic("PAY-1")])
    rules_file = tmp_path / "pay.yaml"
    rules_file.write_text(BAD_MODE)

    saved = put(client, BAD_MODE)
    previewed = client.post(PAY + "/preview", headers=AUTH, json={"yaml": BAD_MODE})
    validated = client.post(PAY + "/validate", headers=AUTH, json={"yaml": BAD_MODE})
    cli_run = CliRunner().invoke(cli, ["rules", "validate", str(rules_file)])

    assert saved.status_code == 400 and previewed.status_code == 400
    assert saved.get_json()["code"] == "invalid_ruleset"
    errors = saved.get_json()["errors"]
    assert [(e["source"], e["path"]) for e in errors] == [
        ("jira/PAY", "rules[0].mode"),
        ("jira/PAY", "rules[1].checks.pattern"),
    ]
    assert previewed.get_json()["errors"] == errors
    assert validated.status_code == 200
    assert validated.get_json() == {
        "valid": False,
        "errors": errors,
        "warnings": [],
        "ruleset": None,
    }
    cli_lines = cli_run.output.strip().splitlines()
    assert cli_lines == [f"{rules_file}: {e['path']}: {e['message']}" for e in errors]
    assert client.get(PAY + "/history", headers=AUTH).get_json()["versions"] == []


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        ("version: 1\nrules: [\n", "line 3, column 1", "not valid YAML"),
        ("- just a list\n", "(document)", "a rule set must be a mapping"),
        ("version: 1\nextends: acme\n", "extends", "unknown rule set 'acme' (known: lean)"),
        (
            "version: 1\nextends: lean\nscope: {projects: [OPS]}\n",
            "scope.projects",
            "does not include PAY",
        ),
        ("version: 1\nextends: lean\nscope: {trackers: [linear]}\n", "scope.trackers", "jira"),
        (
            "version: 1\nextends: lean\nwaivers:\n"
            "  - {rule: nope, owner: Dana, expires: 2030-01-01}\n",
            "waivers[0].rule",
            "no rule 'nope' to waive",
        ),
    ],
)
def test_validation_names_the_path_of_each_problem(
    app: Flask, client: FlaskClient, text: str, path: str, message: str
) -> None:
    seed(app, [epic("PAY-1")])

    body = client.post(PAY + "/validate", headers=AUTH, json={"yaml": text}).get_json()

    assert body["valid"] is False
    assert body["errors"][0]["path"] == path
    assert message in body["errors"][0]["message"]


def test_a_valid_candidate_is_summarised(app: Flask, client: FlaskClient) -> None:
    seed(app, [epic("PAY-1")])

    body = client.post(PAY + "/validate", headers=AUTH, json={"yaml": WATCH_OWNER}).get_json()

    assert body["valid"] is True and body["errors"] == []
    rules = {r["id"]: r for r in body["ruleset"]["rules"]}
    assert rules["owner-named"]["origin"] == "jira-pay"
    assert rules["owner-named"]["mode"] == "dry-run"
    assert rules["hypothesis"]["origin"] == "lean"


# Rules as code -------------------------------------------------------------------------------


@pytest.fixture
def file_app(tmp_path: Path) -> Flask:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "acme.yaml").write_text(
        "version: 1\nname: acme\nextends: lean\nrules:\n  - id: hypothesis\n    locked: true\n"
    )
    (folder / "pay.yaml").write_text(
        "version: 1\nname: payments\nextends: acme\nscope: {trackers: [jira], projects: [PAY]}\n"
    )
    return make_app(tmp_path, rules=str(folder))


def test_a_project_named_by_a_rules_file_is_read_only(file_app: Flask, tmp_path: Path) -> None:
    client = file_app.test_client()
    seed(file_app, [epic("PAY-1")])
    path = str((tmp_path / "rules" / "pay.yaml").resolve())

    read = client.get(PAY, headers=AUTH).get_json()
    saved = put(client, SWITCH_OFF_METRIC)
    validated = client.post(PAY + "/validate", headers=AUTH, json={"yaml": GATE_METRIC})

    assert read["source"] == {"kind": "file", "path": path}
    assert read["editable"] is False
    assert read["yaml"].startswith("version: 1\nname: payments")
    assert saved.status_code == 409 and saved.get_json()["code"] == "file_managed"
    assert path in saved.get_json()["message"]
    assert validated.get_json()["warnings"] == [saved.get_json()["message"]]


def test_reverting_a_file_managed_project_is_409(file_app: Flask) -> None:
    client = file_app.test_client()
    tenant_id = seed(file_app, [epic("PAY-1")])
    with runtime_of(file_app).database.session() as session:
        # A version saved before the file took the project over.
        save_ruleset(
            session,
            tenant_id=tenant_id,
            tracker="jira",
            project="PAY",
            source_text=SWITCH_OFF_METRIC,
            source_kind=RulesetSource.API.value,
            source_path=None,
            author="admin",
            note="before the file",
            now=time_now(),
        )

    reverted = client.post(PAY + "/revert", headers=AUTH, json={"version": 1})

    assert reverted.status_code == 409 and reverted.get_json()["code"] == "file_managed"


def test_other_projects_extend_the_organisation_default_by_name(file_app: Flask) -> None:
    client = file_app.test_client()
    seed(file_app, [epic("OPS-1", project="OPS")])
    ops = "/api/v1/rulesets/jira/OPS"
    loosen = "version: 1\nextends: acme\nrules:\n  - id: hypothesis\n    mode: dry-run\n"
    tighten = "version: 1\nextends: acme\nrules:\n  - id: hypothesis\n    mode: gate\n"

    read = client.get(ops, headers=AUTH).get_json()
    refused = client.put(ops, headers=AUTH, json={"yaml": loosen})
    saved = client.put(ops, headers=AUTH, json={"yaml": tighten})
    runner(file_app).wait()
    after = client.get(ops, headers=AUTH).get_json()

    assert read["source"]["kind"] == "file" and read["editable"] is True
    assert read["source"]["path"].endswith("acme.yaml")
    assert refused.status_code == 400
    assert "locked by 'acme'" in refused.get_json()["errors"][0]["message"]
    assert saved.status_code == 200
    rules = {r["id"]: r for r in after["ruleset"]["rules"]}
    assert rules["hypothesis"] == {**rules["hypothesis"], "mode": "gate", "locked": True}
    # Flattening the file for inheritance keeps each rule's real origin.
    assert rules["success-metric"]["origin"] == "lean"
    assert after["ruleset"]["lineage"] == ["acme"]


def time_now() -> datetime:
    return datetime.now(UTC)


# Preview -------------------------------------------------------------------------------------


def test_preview_says_what_would_start_stop_or_change(app: Flask, client: FlaskClient) -> None:
    seed(
        app,
        [
            epic("PAY-1"),
            epic("PAY-2", metric=None),
            epic("PAY-3", metric=None, hypothesis=None),
            epic("PAY-4", metric=None, status=StatusCategory.DONE),
            epic("OPS-1", project="OPS", metric=None),
        ],
    )
    candidate = (
        "version: 1\nname: jira-pay\nextends: lean\n"
        "fields:\n  - id: owner\n    name: Owner\n"
        "rules:\n"
        '  - id: success-metric\n    mode: "off"\n'
        "  - id: owner-named\n    require: [owner]\n    when: {kinds: [epic]}\n    mode: dry-run\n"
    )

    body = client.post(PAY + "/preview", headers=AUTH, json={"yaml": candidate}).get_json()
    stricter = client.post(PAY + "/preview", headers=AUTH, json={"yaml": REQUIRE_OWNER}).get_json()

    assert body["checked"] == 3 and body["pulled"] == 0  # done and other projects left out
    assert [c["key"] for c in body["stop_failing"]] == ["PAY-2"]
    assert body["stop_failing"][0]["before"][0]["rule"] == "success-metric"
    assert body["stop_failing"][0]["after"] == []
    assert [c["key"] for c in body["message_changed"]] == ["PAY-3"]
    assert [f["rule"] for f in body["message_changed"][0]["after"]] == ["hypothesis"]
    assert body["start_failing"] == [] and body["unchanged"] == 1
    assert [(d["key"], d["rule"]) for d in body["dry_run"]] == [
        ("PAY-1", "owner-named"),
        ("PAY-2", "owner-named"),
        ("PAY-3", "owner-named"),
    ]
    assert body["dry_run"][0]["url"] == (
        "https://leanguard.example.com/items/jira/PAY-1?site=https%3A%2F%2Facme.atlassian.net"
    )
    assert body["current"]["name"] == "lean" and body["candidate"]["name"] == "jira-pay"
    assert [c["key"] for c in stricter["start_failing"]] == ["PAY-1"]
    assert stricter["start_failing"][0]["after"][0]["message"] == "No owner found."
    assert stricter["dry_run"] == []
    # A preview stores nothing.
    assert client.get(PAY + "/history", headers=AUTH).get_json()["versions"] == []


def test_preview_reads_a_projects_epics_from_jira_when_none_are_stored(tmp_path: Path) -> None:
    app = make_app(tmp_path, **JIRA_SETTINGS)
    client = app.test_client()
    tenant(app)
    url = f"{SITE}/rest/api/3/search/jql"

    with tracker_mock(ordered=True) as fake:
        fake.post(
            url,
            json={
                "issues": [jira_issue("PAY-1", metric=True)],
                "nextPageToken": "page-2",
                "isLast": False,
            },
        )
        fake.post(url, json={"issues": [jira_issue("PAY-2", metric=False)], "isLast": True})
        body = client.post(PAY + "/preview", headers=AUTH, json={"yaml": GATE_METRIC}).get_json()
        sent = [json.loads(call.request.body) for call in fake.calls]

    assert sent[0]["jql"] == "project = PAY AND issuetype = Epic"
    assert sent[1]["nextPageToken"] == "page-2"
    assert body["pulled"] == 2 and body["checked"] == 2
    assert [c["key"] for c in body["message_changed"]] == []
    assert body["unchanged"] == 2
    assert "Read 2 epics of PAY from jira" in body["notes"][0]
    listed = client.get("/api/v1/rulesets", headers=AUTH).get_json()["projects"]
    assert [(p["project"], p["items"]) for p in listed] == [("PAY", 2)]


def test_preview_says_so_when_the_tracker_cannot_be_read(tmp_path: Path) -> None:
    app = make_app(tmp_path, **JIRA_SETTINGS)
    client = app.test_client()
    tenant(app)

    with tracker_mock() as fake:
        fake.post(f"{SITE}/rest/api/3/search/jql", status=503, json={"errorMessages": ["down"]})
        body = client.post(PAY + "/preview", headers=AUTH, json={"yaml": GATE_METRIC}).get_json()

    assert body["pulled"] == 0 and body["checked"] == 0
    assert body["notes"][0].startswith("Could not read the epics of PAY from jira")


def test_preview_without_items_or_credentials_says_what_it_covers(
    app: Flask, client: FlaskClient
) -> None:
    tenant(app)

    body = client.post(PAY + "/preview", headers=AUTH, json={"yaml": GATE_METRIC}).get_json()

    assert body["checked"] == 0
    assert "no jira credentials are set" in body["notes"][0]


LINEAR_API = "https://api.linear.app/graphql"


def linear_answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
    """A small Linear: one project of another team, ENG-1 labelled Epic, OPS-2 of another team."""
    sent = json.loads(request.body or b"{}")
    operation = sent["operationName"]
    page = {"hasNextPage": False, "endCursor": None}
    if operation == "EpicProjects":
        nodes = [{"__typename": "Project", "id": "p1", "slugId": "growth-1", "name": "Growth"}]
        data: dict[str, Any] = {"projects": {"nodes": nodes, "pageInfo": page}}
    elif operation == "EpicIssues":
        nodes = [
            {"__typename": "Issue", "id": "i1", "identifier": "ENG-1", "title": "Search"},
            {"__typename": "Issue", "id": "i2", "identifier": "OPS-2", "title": "Other"},
        ]
        data = {"issues": {"nodes": nodes, "pageInfo": page}}
    elif operation == "Project":
        data = {
            "project": {
                "id": "p1",
                "slugId": "growth-1",
                "name": "Growth",
                "description": "",
                "content": "",
                "url": "https://linear.app/acme/project/growth-1",
                "updatedAt": "2026-03-01T10:00:00.000Z",
                "teams": {"nodes": [{"key": "GRO"}]},
            }
        }
    else:
        assert operation == "Issue" and sent["variables"]["id"] == "i1"
        data = {
            "issue": {
                "id": "i1",
                "identifier": "ENG-1",
                "title": "Search",
                "description": "## Hypothesis\nWe believe search will result in more orders.",
                "url": "https://linear.app/acme/issue/ENG-1",
                "updatedAt": "2026-03-01T10:00:00.000Z",
                "labels": {"nodes": [{"name": "Epic"}]},
                "state": {"name": "In Progress", "type": "started"},
                "team": {"key": "ENG"},
            }
        }
    return 200, {"Content-Type": "application/json"}, json.dumps({"data": data})


def test_preview_reads_a_teams_epics_from_linear_when_none_are_stored(tmp_path: Path) -> None:
    app = make_app(tmp_path, linear_api_key="lin_api_key")
    client = app.test_client()
    tenant(app, tracker="linear", site="org-1")
    candidate = "version: 1\nextends: lean\nrules:\n  - id: success-metric\n    mode: 'off'\n"

    with tracker_mock(assert_all_requests_are_fired=False) as fake:
        fake.add_callback(responses.POST, LINEAR_API, callback=linear_answer)
        body = client.post(
            "/api/v1/rulesets/linear/ENG/preview", headers=AUTH, json={"yaml": candidate}
        ).get_json()
        operations = [json.loads(c.request.body)["operationName"] for c in fake.calls]

    assert operations == ["EpicProjects", "Project", "EpicIssues", "Issue"]
    assert body["pulled"] == 1 and body["checked"] == 1
    assert [c["key"] for c in body["message_changed"]] == ["ENG-1"]


# Saving, history, diffs, reverts -------------------------------------------------------------


def test_saves_are_versions_with_history_diffs_and_reverts(app: Flask, client: FlaskClient) -> None:
    seed(app, [epic("PAY-1")])

    first = put(client, SWITCH_OFF_METRIC, "metric is agreed next sprint")
    second = put(client, GATE_METRIC, "metric is agreed", base_version=1)
    history = client.get(PAY + "/history", headers=AUTH).get_json()["versions"]
    default_diff = client.get(PAY + "/diff", headers=AUTH).get_json()
    explicit = client.get(PAY + "/diff?from=2&to=1", headers=AUTH).get_json()
    from_nothing = client.get(PAY + "/diff?to=1", headers=AUTH).get_json()
    old = client.get(PAY + "/versions/1", headers=AUTH).get_json()
    reverted = client.post(
        PAY + "/revert", headers=AUTH, json={"version": 1, "note": "finance said no"}
    )
    bare_revert = client.post(PAY + "/revert", headers=AUTH, json={"version": 2})
    runner(app).wait()
    after = client.get(PAY, headers=AUTH).get_json()

    assert first.status_code == 200 and first.get_json()["version"] == 1
    assert second.get_json()["version"] == 2
    assert [(v["version"], v["note"], v["author"]) for v in history] == [
        (2, "metric is agreed", "admin"),
        (1, "metric is agreed next sprint", "admin"),
    ]
    assert default_diff["from"] == 1 and default_diff["to"] == 2
    assert default_diff["diff"].splitlines() == [
        "--- version 1",
        "+++ version 2",
        "@@ -3,4 +3,4 @@",
        " extends: lean",
        " rules:",
        "   - id: success-metric",
        '-    mode: "off"',
        "+    mode: gate",
    ]
    assert "-    mode: gate" in explicit["diff"] and '+    mode: "off"' in explicit["diff"]
    assert from_nothing["from"] is None and from_nothing["diff"].startswith("--- nothing saved")
    assert old["yaml"] == SWITCH_OFF_METRIC and old["note"] == "metric is agreed next sprint"
    assert reverted.status_code == 200
    assert reverted.get_json()["version"] == 3
    assert reverted.get_json()["note"] == "Revert to version 1: finance said no"
    assert bare_revert.get_json()["note"] == "Revert to version 2"
    assert after["yaml"] == GATE_METRIC and after["saved_version"] == 4


def test_history_errors(app: Flask, client: FlaskClient) -> None:
    seed(app, [epic("PAY-1")])

    nothing_yet = client.get(PAY + "/diff", headers=AUTH)
    put(client, SWITCH_OFF_METRIC)
    runner(app).wait()

    assert nothing_yet.status_code == 404 and nothing_yet.get_json()["code"] == "no_version"
    assert client.get(PAY + "/diff?from=1&to=7", headers=AUTH).status_code == 404
    assert client.get(PAY + "/diff?from=x", headers=AUTH).get_json()["code"] == "bad_version"
    assert client.get(PAY + "/diff?to=0", headers=AUTH).status_code == 400
    assert client.get(PAY + "/versions/9", headers=AUTH).status_code == 404
    missing = client.post(PAY + "/revert", headers=AUTH, json={"version": 9})
    assert missing.status_code == 404 and missing.get_json()["code"] == "no_version"
    assert client.post(PAY + "/revert", headers=AUTH, json={"version": 0}).status_code == 400


def test_a_save_on_top_of_a_newer_version_is_409(app: Flask, client: FlaskClient) -> None:
    seed(app, [epic("PAY-1")])

    assert put(client, SWITCH_OFF_METRIC, base_version=None).status_code == 200
    stale = put(client, GATE_METRIC, base_version=None)
    late = put(client, GATE_METRIC, base_version=5)
    runner(app).wait()

    assert stale.status_code == 409 and stale.get_json()["code"] == "version_conflict"
    assert "newest is 1" in stale.get_json()["message"]
    assert late.status_code == 409


def test_the_tenant_default_is_saved_and_followed_by_projects_without_rules(
    app: Flask, client: FlaskClient
) -> None:
    seed(app, [epic("PAY-1", metric=None), epic("OPS-1", project="OPS", metric=None)])
    default = (
        "version: 1\nname: acme-jira\nextends: lean\nrules:\n"
        "  - id: success-metric\n    severity: warning\n"
    )
    own = (
        "version: 1\nname: jira-pay\nextends: acme-jira\nrules:\n"
        "  - id: hypothesis\n    mode: gate\n"
    )

    saved = client.put(
        "/api/v1/rulesets/jira/_default", headers=AUTH, json={"yaml": default, "note": "site"}
    )
    preview_default = client.post(
        "/api/v1/rulesets/jira/_default/preview", headers=AUTH, json={"yaml": default}
    ).get_json()
    put(client, own)
    job = saved.get_json()["reevaluation"]
    runner(app).wait()
    ops = client.get("/api/v1/rulesets/jira/OPS", headers=AUTH).get_json()
    pay = client.get(PAY, headers=AUTH).get_json()
    unknown_parent = client.post(
        "/api/v1/rulesets/jira/_default/validate",
        headers=AUTH,
        json={"yaml": "version: 1\nextends: acme-jira\n"},
    ).get_json()

    assert saved.status_code == 200 and job["project"] == "_default"
    assert wait_done(client, job["url"])["total"] == 2
    assert preview_default["checked"] == 2
    assert ops["source"]["kind"] == "default" and ops["ruleset"]["name"] == "acme-jira"
    assert pay["source"]["kind"] == "project"
    assert pay["ruleset"]["lineage"] == ["acme-jira", "lean"]
    assert pay["inherits"]["name"] == "acme-jira"
    assert unknown_parent["errors"][0]["path"] == "extends"


# Re-evaluation after a save ------------------------------------------------------------------


def test_a_save_rechecks_open_items_and_updates_their_cards(tmp_path: Path) -> None:
    app = make_app(tmp_path, card_label="needs-outcomes", **JIRA_SETTINGS)
    client = app.test_client()
    seed(
        app,
        [
            epic("PAY-1", labels=["payments-core"]),
            epic("PAY-2", metric=None),
            epic("PAY-3", metric=None, status=StatusCategory.DONE),
        ],
    )
    database = runtime_of(app).database
    with database.session() as session:
        pay2 = session.scalars(select(WorkItemRow).where(WorkItemRow.key == "PAY-2")).one()
        save_card(
            session,
            work_item_id=pay2.id,
            comment_id="500",
            content_hash="old",
            state=CardState.OPEN.value,
            label_applied=True,
            now=time_now(),
        )
    issue = f"{SITE}/rest/api/3/issue"

    with tracker_mock() as fake:
        # PAY-1 fails the new owner rule: it gets its first card and the label.
        fake.post(f"{issue}/PAY-1/comment", json={"id": "601"}, status=201)
        fake.put(f"{issue}/PAY-1", status=204)
        fake.put(f"{issue}/PAY-1/properties/leanguard", status=200)
        # PAY-2 passes once the metric rule is off: its card is resolved, its label removed.
        fake.put(f"{issue}/PAY-2/comment/500", json={"id": "500"})
        fake.put(f"{issue}/PAY-2", status=204)
        fake.put(f"{issue}/PAY-2/properties/leanguard", status=200)
        saved = put(client, CORE_OWNER_NO_METRIC, "owners for core epics")
        assert saved.status_code == 200, saved.get_json()
        job = saved.get_json()["reevaluation"]
        assert runner(app).wait(20)
        progress = wait_done(client, job["url"])
        labels = {
            call.request.url.rsplit("/", 1)[-1].split("?")[0]: json.loads(call.request.body)
            for call in fake.calls
            if call.request.method == "PUT"
            and "/properties/" not in call.request.url
            and "/comment/" not in call.request.url
        }

    assert job["state"] in ("queued", "running", "done")
    assert progress == {
        **progress,
        "state": "done",
        "total": 2,
        "done": 2,
        "failed": 0,
        "ruleset_version": 1,
    }
    with database.session() as session:
        cards = {
            row.work_item_id: (row.comment_id, row.state)
            for row in session.scalars(select(CardRow))
        }
        keys = {row.id: row.key for row in session.scalars(select(WorkItemRow))}
        evaluations = session.scalars(
            select(EvaluationRow).where(EvaluationRow.ruleset_name == "jira-pay")
        ).all()
    assert {keys[k]: v for k, v in cards.items()} == {
        "PAY-1": ("601", "open"),
        "PAY-2": ("500", "resolved"),
    }
    assert sorted(keys[e.work_item_id] for e in evaluations) == ["PAY-1", "PAY-2"]
    assert labels == {
        "PAY-1": {"update": {"labels": [{"add": "needs-outcomes"}]}},
        "PAY-2": {"update": {"labels": [{"remove": "needs-outcomes"}]}},
    }


def test_without_credentials_results_are_stored_and_the_tracker_left_alone(
    app: Flask, client: FlaskClient
) -> None:
    seed(app, [epic("PAY-1"), epic("PAY-2", metric=None)])

    with tracker_mock() as fake:
        job = put(client, REQUIRE_OWNER).get_json()["reevaluation"]
        runner(app).wait()
        progress = wait_done(client, job["url"])
        assert len(fake.calls) == 0

    assert progress["state"] == "done" and progress["done"] == 2 and progress["failed"] == 0
    with runtime_of(app).database.session() as session:
        statuses = session.scalars(
            select(EvaluationRow.status).where(EvaluationRow.ruleset_name == "jira-pay")
        ).all()
    assert sorted(statuses) == ["fail", "fail"]


def test_an_item_the_tracker_refuses_is_counted_as_failed(tmp_path: Path) -> None:
    app = make_app(tmp_path, **JIRA_SETTINGS)
    client = app.test_client()
    seed(app, [epic("PAY-1"), epic("PAY-2")])

    with tracker_mock() as fake:
        fake.post(f"{SITE}/rest/api/3/issue/PAY-1/comment", status=403, json={})
        fake.post(f"{SITE}/rest/api/3/issue/PAY-2/comment", json={"id": "7"}, status=201)
        fake.put(f"{SITE}/rest/api/3/issue/PAY-2/properties/leanguard", status=200)
        job = put(client, REQUIRE_OWNER).get_json()["reevaluation"]
        runner(app).wait()
        progress = wait_done(client, job["url"])

    assert progress["state"] == "done"
    assert progress["done"] == 2 and progress["failed"] == 1
    assert progress["last_error"]


def test_a_worker_that_died_mid_job_is_resumed_at_start(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    seed(app, [epic("PAY-1")])
    database = runtime_of(app).database
    with database.session() as session:
        tenant_id = session.scalars(select(WorkItemRow.tenant_id)).first()
        assert tenant_id is not None
        job = create_reevaluation(
            session,
            tenant_id=tenant_id,
            tracker="jira",
            project="PAY",
            ruleset_version=None,
            requested_by="admin",
            now=time_now() - timedelta(hours=1),
        )
        job_id = job.id

    restarted = make_app(tmp_path)
    runner(restarted).wait()

    with database.session() as session:
        row = get_reevaluation(session, job_id)
        assert row is not None and row.state == "done" and row.done == 1


@pytest.fixture
def redis_url() -> Iterator[str]:
    """Return the test Redis database, emptied of leanguard's queue; skip or fail without it."""
    connection = Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        connection.ping()
    except RedisError as exc:
        reason = f"Redis is not reachable at {REDIS_URL} ({type(exc).__name__})"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    Queue("leanguard", connection=connection).empty()
    yield REDIS_URL
    Queue("leanguard", connection=connection).empty()
    connection.close()


@pytest.mark.redis
def test_with_redis_the_recheck_is_an_rq_job(tmp_path: Path, redis_url: str) -> None:
    app = make_app(tmp_path, redis_url=redis_url)
    client = app.test_client()
    seed(app, [epic("PAY-1"), epic("PAY-2", metric=None)])
    connection = Redis.from_url(redis_url)
    queue = Queue("leanguard", connection=connection)

    job = put(client, REQUIRE_OWNER).get_json()["reevaluation"]
    queued = client.get(job["url"], headers=AUTH).get_json()
    jobs.bind_runtime(runtime_of(app))
    try:
        SimpleWorker([queue], connection=connection).work(burst=True)
    finally:
        jobs.bind_runtime(None)  # type: ignore[arg-type]
    done = client.get(job["url"], headers=AUTH).get_json()

    assert queued["state"] == "queued"
    assert done["state"] == "done" and done["done"] == 2


# The OpenAPI document ------------------------------------------------------------------------


def test_the_openapi_document_describes_every_route(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()

    validate_openapi(document)
    paths = document["paths"]
    scope = "/rulesets/{tracker}/{project}"
    assert set(paths["/rulesets"]) == {"get"}
    assert set(paths[scope]) == {"get", "put"}
    for suffix, method in (
        ("/validate", "post"),
        ("/preview", "post"),
        ("/history", "get"),
        ("/diff", "get"),
        ("/revert", "post"),
        ("/versions/{version}", "get"),
    ):
        operation = paths[scope + suffix][method]
        assert {"200", "401", "400"} <= set(operation["responses"])
    assert set(paths["/reevaluations/{job_id}"]) == {"get"}
    put_body = paths[scope]["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert put_body == {"$ref": "#/components/schemas/RuleSetWrite"}
    assert "409" in paths[scope]["put"]["responses"]
    assert {"yaml", "note", "base_version"} <= set(
        document["components"]["schemas"]["RuleSetWrite"]["properties"]
    )
