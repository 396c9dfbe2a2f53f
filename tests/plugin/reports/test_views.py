"""The report over HTTP (JSON, CSV, pages, the backfill button) and in the terminal."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from support.health_data import EVALUATIONS_FIRST, add_evaluations, load_workspace

from plugin.app import create_app
from plugin.cli import main
from plugin.runtime import Runtime
from plugin.settings import Settings

TOKEN = "admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PERIOD = "from=2026-03-02&to=2026-03-15"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(instance_path=str(tmp_path), admin_token=TOKEN, secret_key="s" * 32)


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    runtime = Runtime.from_settings(settings)
    app = create_app(settings, runtime=runtime, start_worker=False)
    with runtime.database.session() as session:
        ids = load_workspace(session)
        add_evaluations(session, ids, EVALUATIONS_FIRST)
    yield app
    runtime.database.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_the_json_report_needs_the_admin_token(client: FlaskClient) -> None:
    assert client.get("/api/v1/reports/health").status_code == 401
    answer = client.get(f"/api/v1/reports/health?{PERIOD}&project=PAY", headers=AUTH)

    assert answer.status_code == 200
    body = answer.get_json()
    assert (body["project"], body["epics_delivered"], body["epics_started"]) == ("PAY", 2, 2)
    assert [week["week"] for week in body["weekly"]] == ["2026-03-02", "2026-03-09"]
    assert {c["name"] for c in body["components"]} >= {"measurement", "outcome_review"}


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("tracker=github", "bad_tracker"),
        ("from=yesterday", "bad_period"),
        ("from=2026-03-10&to=2026-03-01", "bad_period"),
        ("review_days=-1", "bad_review_days"),
        ("format=xml", "bad_format"),
    ],
)
def test_bad_report_queries_are_400s_that_say_why(
    client: FlaskClient, query: str, code: str
) -> None:
    answer = client.get(f"/api/v1/reports/health?{query}", headers=AUTH)

    assert (answer.status_code, answer.get_json()["code"]) == (400, code)


def test_the_csv_export_is_the_weekly_series(client: FlaskClient) -> None:
    answer = client.get(f"/api/v1/reports/health?{PERIOD}&format=csv", headers=AUTH)

    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    lines = answer.get_data(as_text=True).splitlines()
    assert lines[0].split(",")[:3] == ["week", "epics_started", "epics_started_lean_ready"]
    assert [line.split(",")[0] for line in lines[1:]] == ["2026-03-02", "2026-03-09", "total"]


def test_the_api_is_in_the_openapi_document(client: FlaskClient) -> None:
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]

    assert {"/reports/health", "/backfills", "/backfills/{backfill_id}"} <= set(paths)
    assert paths["/backfills"]["post"]["responses"]["202"]


def test_starting_a_backfill_without_credentials_is_refused(client: FlaskClient) -> None:
    answer = client.post("/api/v1/backfills", json={"tracker": "jira", "project": "SHOP"})
    assert answer.status_code == 401

    answer = client.post(
        "/api/v1/backfills", json={"tracker": "jira", "project": "SHOP"}, headers=AUTH
    )
    assert (answer.status_code, answer.get_json()["code"]) == (409, "backfill_refused")
    answer = client.post("/api/v1/backfills", json={"tracker": "jira"}, headers=AUTH)
    assert (answer.status_code, answer.get_json()["code"]) == (400, "bad_project")
    listed = client.get("/api/v1/backfills", headers=AUTH).get_json()
    assert listed == {"backfills": []}


def test_the_overview_page_shows_figures_charts_projects_and_offenders(
    client: FlaskClient,
) -> None:
    page = client.get(f"/reports?{PERIOD}").get_data(as_text=True)

    assert page.count("<svg") == 3
    assert "<script" not in page
    assert '<td class="num" id="fig-epics_delivered">6</td>' in page
    assert 'href="/reports/jira/PAY?from=2026-03-02&amp;to=2026-03-15"' in page
    assert 'href="/items/jira/SHOP-2?site=https%3A%2F%2Facme.atlassian.net"' in page
    assert "@media print" in page


def test_a_project_page_offers_the_backfill_to_admins_only(client: FlaskClient) -> None:
    page = client.get(f"/reports/jira/SHOP?{PERIOD}").get_data(as_text=True)
    assert "Log in as admin" in page
    assert 'action="/reports/jira/SHOP/backfill"' not in page

    login = client.get("/admin/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login)
    assert csrf is not None
    client.post("/admin/login", data={"csrf_token": csrf[1], "token": TOKEN, "next": "/"})
    page = client.get("/reports/jira/SHOP").get_data(as_text=True)
    form_csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)

    assert 'action="/reports/jira/SHOP/backfill"' in page
    assert form_csrf is not None
    forged = client.post("/reports/jira/SHOP/backfill", data={"csrf_token": "forged"})
    assert forged.status_code == 400
    started = client.post("/reports/jira/SHOP/backfill", data={"csrf_token": form_csrf[1]})
    assert started.status_code == 303
    assert "LEANGUARD_JIRA_URL" in started.headers["Location"].replace("+", " ").replace("%28", "(")


def test_the_connect_page_has_no_site_navigation(client: FlaskClient) -> None:
    page = client.get("/reports/jira/SHOP?connect=1").get_data(as_text=True)

    assert "<header>" not in page
    assert 'name="connect" value="1"' in page


def test_the_report_command_prints_text_json_and_csv(app: Flask, settings: Settings) -> None:
    env = {
        "LEANGUARD_INSTANCE_PATH": settings.instance_path,
        "LEANGUARD_ADMIN_TOKEN": TOKEN,
    }
    runner = CliRunner()
    text = runner.invoke(main, ["report", "--from", "2026-03-02", "--to", "2026-03-15"], env=env)
    as_json = runner.invoke(
        main, ["report", "--project", "PAY", "--format", "json", "--from", "2026-03-02"], env=env
    )
    as_csv = runner.invoke(main, ["report", "--format", "csv", "--to", "2026-03-15"], env=env)
    bad = runner.invoke(main, ["report", "--from", "2026-03-10", "--to", "2026-03-01"], env=env)

    assert text.exit_code == 0, text.output
    assert "epics_delivered                          6" in text.output
    assert json.loads(as_json.output)["project"] == "PAY"
    assert as_csv.output.splitlines()[0].startswith("week,")
    assert bad.exit_code == 2


def test_the_backfill_command_explains_missing_credentials(settings: Settings) -> None:
    result = CliRunner().invoke(
        main,
        ["backfill", "--tracker", "linear", "--project", "ENG"],
        env={"LEANGUARD_INSTANCE_PATH": settings.instance_path},
    )

    assert result.exit_code == 1
    assert "LEANGUARD_LINEAR_API_KEY" in result.output
