"""The descriptor: its shape as served, and the file it comes from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from connect_support import BASE_URL, ConnectHarness

from plugin.connect.descriptor import DESCRIPTOR_PATH, Descriptor, DescriptorError

WEBHOOK_EVENTS = {
    "jira:issue_created",
    "jira:issue_updated",
    "jira:issue_deleted",
    "issuelink_created",
    "issuelink_deleted",
}


@pytest.fixture
def served(connect: ConnectHarness) -> dict[str, Any]:
    response = connect.client.get("/atlassian-connect.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.get_json()
    return body


def test_top_level_fields(served: dict[str, Any]) -> None:
    assert served["baseUrl"] == BASE_URL
    assert served["key"] == "leanguard"
    assert served["name"] and served["description"] and served["vendor"]["name"]
    assert served["authentication"] == {"type": "jwt"}
    assert sorted(served["scopes"]) == ["READ", "WRITE"]
    assert served["apiMigrations"] == {"signed-install": True, "context-qsh": True, "gdpr": True}
    assert served["lifecycle"] == {
        "installed": "/connect/installed",
        "uninstalled": "/connect/uninstalled",
        "enabled": "/connect/enabled",
        "disabled": "/connect/disabled",
    }


def test_base_url_follows_the_setting(make_connect: Any) -> None:
    app = make_connect(base_url="https://outcomes.example.org/leanguard/")
    served = app.client.get("/atlassian-connect.json").get_json()
    assert served["baseUrl"] == "https://outcomes.example.org/leanguard"


def test_webhooks_point_at_the_jira_endpoint(served: dict[str, Any]) -> None:
    hooks = served["modules"]["webhooks"]
    assert {hook["event"] for hook in hooks} == WEBHOOK_EVENTS
    assert all(hook["url"] == "/webhooks/jira" and hook["excludeBody"] is False for hook in hooks)


def test_issue_context_replaces_the_deprecated_glance(served: dict[str, Any]) -> None:
    modules = served["modules"]
    assert "jiraIssueGlances" not in modules
    [context] = modules["jiraIssueContexts"]
    assert context["key"] == "leanguard-status"
    assert context["content"]["type"] == "label"
    assert context["target"] == {
        "type": "web_panel",
        "url": "/connect/issue-panel?issueKey={issue.key}",
    }
    assert context["icon"]["url"] == "/connect/icon.svg"


def test_status_property_names_app_and_module(connect: ConnectHarness) -> None:
    descriptor = Descriptor.load()
    assert (
        descriptor.status_property == "com.atlassian.jira.issue:leanguard:leanguard-status:status"
    )
    icon = connect.client.get("/connect/icon.svg")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"


def test_entity_properties_make_failing_items_searchable(served: dict[str, Any]) -> None:
    [module] = served["modules"]["jiraEntityProperties"]
    assert module["entityType"] == "issue"
    [config] = module["keyConfigurations"]
    assert config["propertyKey"] == "leanguard"
    extractions = {e["objectName"]: e["type"] for e in config["extractions"]}
    assert extractions == {"violations": "number", "status": "string"}


def test_a_module_is_one_entry_in_the_file(tmp_path: Path) -> None:
    document = json.loads(DESCRIPTOR_PATH.read_text(encoding="utf-8"))
    document["modules"]["jiraProjectPages"] = [
        {"key": "leanguard-report", "name": {"value": "Outcomes"}, "url": "/reports"}
    ]
    path = tmp_path / "atlassian-connect.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    served = Descriptor.load(path).render(BASE_URL)
    assert served["modules"]["jiraProjectPages"][0]["url"] == "/reports"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"key": "k" * 65}, "key must be"),
        ({"baseUrl": "https://fixed.example.com"}, "baseUrl must be"),
        ({"authentication": {"type": "none"}}, "authentication must be"),
        ({"lifecycle": {"installed": "/connect/installed"}}, "lifecycle must name"),
    ],
)
def test_a_broken_descriptor_is_refused(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    document = json.loads(DESCRIPTOR_PATH.read_text(encoding="utf-8"))
    document.update(change)
    path = tmp_path / "atlassian-connect.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(DescriptorError, match=message):
        Descriptor.load(path)


def test_without_its_descriptor_the_service_runs_without_connect(
    make_connect: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(cls: type[Descriptor], path: Path = DESCRIPTOR_PATH) -> Descriptor:
        raise DescriptorError(f"{path} does not exist")

    monkeypatch.setattr(Descriptor, "load", classmethod(missing))
    app = make_connect()
    assert app.client.get("/atlassian-connect.json").status_code == 404
    refused = app.client.post("/webhooks/jira", data=b"{}", headers={"Authorization": "JWT a.b.c"})
    assert refused.status_code == 401
    assert refused.get_json()["message"] == "Connect app webhooks are not enabled."
    assert app.client.get("/healthz").status_code == 200
