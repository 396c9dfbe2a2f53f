"""The rules admin pages without a browser: login, CSRF, the form, preview, save, history."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import responses
from flask import Flask, Request
from flask.testing import FlaskClient
from support.contracts import tracker_mock
from support.rules_admin import ADMIN_TOKEN, OTHER_SITE, SITE, epic, make_app, seed

from plugin.api.core import CONNECT_CONTEXT_EXTENSION, Principal
from plugin.connect.client import ConnectJiraClient
from plugin.reevaluation import EXTENSION as RUNNER_EXTENSION

JIRA = SITE
PAGE = "/admin/jira/PAY"
OFF = 'version: 1\nname: jira-pay\nextends: lean\nrules:\n  - id: success-metric\n    mode: "off"\n'


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    app = make_app(tmp_path)
    seed(app, [epic("PAY-1"), epic("PAY-2", metric=None)])
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def log_in(client: FlaskClient) -> str:
    """Log in with the admin token; return the session's CSRF token."""
    token = csrf_of(client.get("/admin/login").get_data(as_text=True))
    answer = client.post(
        "/admin/login", data={"csrf_token": token, "token": ADMIN_TOKEN, "next": PAGE}
    )
    assert answer.status_code == 302 and answer.headers["Location"] == PAGE
    return csrf_of(client.get(PAGE).get_data(as_text=True))


def wait(app: Flask) -> None:
    assert app.extensions[RUNNER_EXTENSION].wait(20)


def test_pages_ask_for_a_login_first(client: FlaskClient) -> None:
    answer = client.get(PAGE)

    assert answer.status_code == 302
    assert answer.headers["Location"] == "/admin/login?next=%2Fadmin%2Fjira%2FPAY"
    assert client.post(PAGE, data={"action": "validate"}).status_code == 401


def test_a_wrong_token_or_a_missing_csrf_token_is_refused(client: FlaskClient) -> None:
    token = csrf_of(client.get("/admin/login").get_data(as_text=True))

    wrong = client.post("/admin/login", data={"csrf_token": token, "token": "guess"})
    no_csrf = client.post("/admin/login", data={"token": ADMIN_TOKEN})

    assert wrong.status_code == 401 and "not the admin token" in wrong.get_data(as_text=True)
    assert no_csrf.status_code == 401 and "expired" in no_csrf.get_data(as_text=True)
    assert client.get("/admin").status_code == 302


def test_login_never_redirects_off_the_admin(client: FlaskClient) -> None:
    token = csrf_of(client.get("/admin/login").get_data(as_text=True))

    answer = client.post(
        "/admin/login",
        data={"csrf_token": token, "token": ADMIN_TOKEN, "next": "https://evil.example/admin"},
    )

    assert answer.headers["Location"] == "/admin"


def test_without_an_admin_token_the_login_says_how_to_open_it(tmp_path: Path) -> None:
    client = make_app(tmp_path, admin_token="").test_client()

    page = client.get("/admin/login").get_data(as_text=True)
    token = csrf_of(page)

    assert "set <code>LEANGUARD_ADMIN_TOKEN</code>" in page
    assert client.post("/admin/login", data={"csrf_token": token, "token": ""}).status_code == 401


def test_the_projects_page_lists_projects_with_their_rules(client: FlaskClient) -> None:
    log_in(client)

    page = client.get("/admin").get_data(as_text=True)

    assert 'href="/admin/jira/PAY"' in page
    assert "built-in preset <code>lean</code>" in page
    assert client.get("/admin/open?tracker=jira&project=OPS").headers["Location"] == (
        "/admin/jira/OPS"
    )
    assert client.get("/admin/open?tracker=gitlab&project=OPS").status_code == 400


def test_the_project_page_says_the_rules_in_plain_words(client: FlaskClient) -> None:
    log_in(client)

    page = client.get(PAGE).get_data(as_text=True)

    assert "<h1>Jira project PAY</h1>" in page
    assert "Epics and projects need a hypothesis." in page
    assert "names a change, an expected outcome and a signal" in page
    assert "warns: failures show on the card" in page
    assert "a description section headed &#34;Success metric&#34;" in page
    assert "Items labelled <code>lean-exempt</code> are skipped" in page
    assert 'name="yaml"' in page and "extends: lean" in page
    assert "Nothing saved here yet." in page


def test_posts_without_the_sessions_csrf_token_are_refused(client: FlaskClient) -> None:
    log_in(client)

    answer = client.post(PAGE, data={"action": "save", "yaml": OFF, "csrf_token": "forged"})

    assert answer.status_code == 400
    assert "expired" in answer.get_data(as_text=True)


def test_the_form_writes_yaml_for_the_common_changes(client: FlaskClient) -> None:
    csrf = log_in(client)
    form = {
        "csrf_token": csrf,
        "action": "form",
        "yaml": client.get("/api/v1/rulesets/jira/PAY", headers=auth()).get_json()["yaml"],
        "rule_ids": ["hypothesis", "success-metric"],
        "rule-hypothesis-mode": "warn",
        "rule-hypothesis-severity": "error",
        "rule-hypothesis-kinds": ["epic", "project"],
        "rule-hypothesis-require": ["hypothesis"],
        "rule-success-metric-mode": "dry-run",
        "rule-success-metric-severity": "warning",
        "rule-success-metric-kinds": ["epic"],
        "rule-success-metric-require": ["success_metric"],
        "exemption_labels": "lean-exempt, spike",
        "waiver_count": "1",
        "waiver-0-rule": "hypothesis",
        "waiver-0-items": "PAY-7",
        "waiver-0-owner": "Dana",
        "waiver-0-expires": "2030-01-31",
    }

    page = client.post(PAGE, data=form).get_data(as_text=True)

    assert "The form&#39;s choices are in the YAML below" in page
    yaml_text = re.search(r'<textarea id="yaml"[^>]*>(.*?)</textarea>', page, re.S)
    assert yaml_text is not None
    written = yaml_text.group(1).replace("&#34;", '"')
    assert "- id: success-metric\n  mode: dry-run\n  severity: warning" in written
    assert "- id: hypothesis" not in written
    assert "labels:\n  - spike" in written
    assert "owner: Dana" in written and "expires: 2030-01-31" in written


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_validate_shows_problems_with_their_paths(client: FlaskClient) -> None:
    csrf = log_in(client)

    bad = client.post(
        PAGE,
        data={"csrf_token": csrf, "action": "validate", "yaml": OFF.replace('"off"', "later")},
    )
    good = client.post(PAGE, data={"csrf_token": csrf, "action": "validate", "yaml": OFF})

    assert bad.status_code == 400
    text = bad.get_data(as_text=True)
    assert "<code>rules[0].mode</code>: Must be one of: off, dry-run, warn, gate" in text
    assert 'aria-invalid="true"' in text
    assert "The YAML is valid." in good.get_data(as_text=True)


def test_preview_save_history_and_revert(app: Flask, client: FlaskClient) -> None:
    csrf = log_in(client)

    previewed = client.post(PAGE, data={"csrf_token": csrf, "action": "preview", "yaml": OFF})
    saved = client.post(
        PAGE,
        data={
            "csrf_token": csrf,
            "action": "save",
            "yaml": OFF,
            "note": "metric agreed next sprint",
            "base_version": "",
        },
    )
    wait(app)
    after = client.get(saved.headers["Location"]).get_data(as_text=True)
    reverted = client.post(
        PAGE, data={"csrf_token": csrf, "action": "revert", "version": "1", "note": "again"}
    )
    stale = client.post(
        PAGE,
        data={"csrf_token": csrf, "action": "save", "yaml": OFF, "note": "", "base_version": "1"},
    )
    wait(app)
    last = client.get(PAGE).get_data(as_text=True)

    preview_text = previewed.get_data(as_text=True)
    assert "Would stop failing" in preview_text and "PAY-2" in preview_text
    assert saved.status_code == 302 and saved.headers["Location"] == f"{PAGE}?saved=1"
    assert "Saved version 1." in after
    assert "metric agreed next sprint" in after
    assert "Done: 2 of 2 items re-checked." in after
    assert '<span class="del">-    mode: &#34;off&#34;</span>' not in after
    assert '<span class="add">+version: 1</span>' in after
    assert reverted.status_code == 302
    assert "Revert to version 1: again" in last
    assert stale.status_code == 409
    assert "the newest is 2" in stale.get_data(as_text=True)


def test_a_file_managed_project_is_read_only(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "pay.yaml").write_text(
        "version: 1\nname: payments\nscope: {projects: [PAY]}\nextends: lean\n"
    )
    app = make_app(tmp_path, rules=str(folder))
    seed(app, [epic("PAY-1")])
    client = app.test_client()
    csrf = log_in(client)

    page = client.get(PAGE).get_data(as_text=True)
    refused = client.post(PAGE, data={"csrf_token": csrf, "action": "save", "yaml": OFF})

    assert "(read-only)" in page and "repository stays their source of truth" in page
    assert 'name="yaml"' not in page
    assert refused.status_code == 409
    assert "LEANGUARD_RULES" in refused.get_data(as_text=True)


def test_logging_out_ends_the_session(client: FlaskClient) -> None:
    csrf = log_in(client)

    refused = client.post("/admin/logout", data={})
    out = client.post("/admin/logout", data={"csrf_token": csrf})

    assert refused.status_code == 400
    assert out.status_code == 302 and out.headers["Location"] == "/admin/login"
    assert client.get("/admin").status_code == 302


def test_changing_the_admin_token_ends_every_session(app: Flask, client: FlaskClient) -> None:
    log_in(client)
    runtime = app.extensions["leanguard.runtime"]
    runtime.settings = type(runtime.settings)(
        **{**runtime.settings.__dict__, "admin_token": "rotated"}
    )

    assert client.get(PAGE).status_code == 302


def test_the_page_calls_the_api_with_its_session_and_csrf_header(client: FlaskClient) -> None:
    csrf = log_in(client)

    with_header = client.post(
        "/api/v1/rulesets/jira/PAY/validate", json={"yaml": OFF}, headers={"X-CSRF-Token": csrf}
    )
    without = client.post("/api/v1/rulesets/jira/PAY/validate", json={"yaml": OFF})

    assert with_header.status_code == 200 and with_header.get_json()["valid"] is True
    assert without.status_code == 401


def connect(app: Flask, tenant_id: int) -> None:
    def verify(request: Request) -> Principal | None:
        if request.args.get("jwt") == "good":
            return Principal(name="jira-user", tenant_id=tenant_id, account_id="acct-pay-admin")
        return None

    app.extensions[CONNECT_CONTEXT_EXTENSION] = verify
    # Saving asks Jira whether the caller administers the project, through the tenant's
    # Connect client (here on a plain session: the fake Jira checks no JWT).
    runtime = app.extensions["leanguard.runtime"]
    runtime.client_factory = lambda tenant: ConnectJiraClient(
        JIRA, session=requests.Session(), status_property=""
    )


@contextlib.contextmanager
def project_admin_jira() -> Iterator[responses.RequestsMock]:
    """Fake Jira that knows project PAY and says acct-pay-admin administers it."""
    with tracker_mock() as jira:
        yield _project_admin(jira)


def _project_admin(jira: responses.RequestsMock) -> responses.RequestsMock:
    jira.get(f"{JIRA}/rest/api/3/project/PAY", json={"id": "10000", "key": "PAY"})
    jira.post(
        f"{JIRA}/rest/api/3/permissions/check",
        json={
            "globalPermissions": [],
            "projectPermissions": [{"permission": "ADMINISTER_PROJECTS", "projects": [10000]}],
        },
    )
    return jira


def test_inside_jira_the_page_runs_on_the_connect_token(app: Flask, client: FlaskClient) -> None:
    other = seed(app, [epic("PAY-9", site=OTHER_SITE)], site=OTHER_SITE)
    own = 1
    connect(app, own)

    page = client.get(f"{PAGE}?connect=1&jwt=good")
    text = page.get_data(as_text=True)
    token = re.search(r'name="page_token" value="([^"]+)"', text)
    assert page.status_code == 200 and token is not None
    with project_admin_jira() as jira:
        saved = client.post(
            PAGE,
            data={
                "connect": "1",
                "page_token": token.group(1),
                "action": "save",
                "yaml": OFF,
                "note": "from Jira",
                "base_version": "",
            },
        )
        checked = json.loads(jira.calls[-1].request.body or b"{}")
    assert checked["accountId"] == "acct-pay-admin"
    api = client.post(
        "/api/v1/rulesets/jira/PAY/validate",
        json={"yaml": OFF},
        headers={"X-Leanguard-Page-Token": token.group(1)},
    )
    wait(app)
    history = client.get("/api/v1/rulesets/jira/PAY/history?tenant=1", headers=auth()).get_json()

    assert "connect-cdn.atl-paas.net/all.js" in text
    assert "Log out" not in text
    assert saved.status_code == 302 and "connect=1" in saved.headers["Location"]
    assert api.status_code == 200
    assert history["versions"][0]["author"] == "jira-user"
    assert client.get(f"{PAGE}?connect=1&jwt=bad").status_code == 401
    assert client.post(PAGE, data={"connect": "1", "page_token": "forged"}).status_code == 401
    assert client.get(f"{PAGE}?connect=1&jwt=good&tenant={other}").status_code == 403
    assert client.get("/admin/linear/ENG?connect=1&jwt=good").status_code == 404
