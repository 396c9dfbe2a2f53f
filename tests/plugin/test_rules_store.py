"""Which rule set is in force for an item, and the worker using it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from support.contracts import tracker_mock
from support.rules_admin import JIRA_SETTINGS, SITE, jira_issue, make_app, runtime_of, seed, tenant

from plugin.processing import check_item
from plugin.rules_form import Choices, RuleChoice, WaiverChoice, apply_choices, describe
from plugin.rules_store import compile_text, effective_ruleset, resolve, ruleset_for
from plugin.storage import RulesetSource, Tenant, save_ruleset
from rules import preset
from webhooks.events import ItemRef

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def save(app: Flask, tenant_id: int, project: str | None, text: str) -> None:
    with runtime_of(app).database.session() as session:
        save_ruleset(
            session,
            tenant_id=tenant_id,
            tracker="jira",
            project=project,
            source_text=text,
            source_kind=RulesetSource.API.value,
            source_path=None,
            author="admin",
            note="",
            now=NOW,
        )


def in_force(app: Flask, tenant_id: int, project: str) -> tuple[str, str]:
    runtime = runtime_of(app)
    with runtime.database.session() as session:
        ruleset, source = effective_ruleset(session, runtime, tenant_id, "jira", project)
    return ruleset.name, source


@pytest.fixture
def rules_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "acme.yaml").write_text("version: 1\nname: acme\nextends: lean\n")
    (folder / "ops.yaml").write_text(
        "version: 1\nname: operations\nextends: acme\nscope: {projects: [OPS]}\n"
    )
    return folder


def test_precedence_project_then_default_then_files_then_preset(
    tmp_path: Path, rules_folder: Path
) -> None:
    app = make_app(tmp_path, rules=str(rules_folder))
    tenant_id = tenant(app)
    acme = str((rules_folder / "acme.yaml").resolve())

    assert in_force(app, tenant_id, "PAY") == ("acme", f"file:{acme}")
    save(app, tenant_id, None, "version: 1\nname: site-default\nextends: acme\n")
    assert in_force(app, tenant_id, "PAY") == ("site-default", "default:v1")
    save(app, tenant_id, "PAY", "version: 1\nname: pay\nextends: site-default\n")
    assert in_force(app, tenant_id, "PAY") == ("pay", "project:v1")
    # A project its own file names stays with the file, whatever is saved for the site.
    ops = str((rules_folder / "ops.yaml").resolve())
    assert in_force(app, tenant_id, "OPS") == ("operations", f"file:{ops}")


def test_without_rules_files_the_preset_is_in_force(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    tenant_id = tenant(app)

    assert in_force(app, tenant_id, "PAY") == ("lean", "preset:lean")
    assert ruleset_for(runtime_of(app), tenant_id, "jira", "PAY").version == preset().version


def test_a_saved_version_that_no_longer_builds_falls_back_to_the_last_good_one(
    tmp_path: Path, rules_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(tmp_path, rules=str(rules_folder))
    tenant_id = tenant(app)
    save(app, tenant_id, "PAY", "version: 1\nname: pay-one\nextends: lean\n")
    save(app, tenant_id, "PAY", "version: 1\nname: pay-two\nextends: acme\n")
    runtime = runtime_of(app)
    assert in_force(app, tenant_id, "PAY") == ("pay-two", "project:v2")

    # The organisation default disappears from the rules folder.
    (rules_folder / "acme.yaml").unlink()
    (rules_folder / "ops.yaml").unlink()
    assert runtime.reload_rules()

    assert in_force(app, tenant_id, "PAY") == ("pay-one", "project:v1")
    assert "rules.saved-broken" in caplog.text


def test_the_worker_evaluates_with_the_projects_saved_rules(tmp_path: Path) -> None:
    app = make_app(tmp_path, **JIRA_SETTINGS)
    runtime = runtime_of(app)
    tenant_id = seed(app, [])
    save(
        app,
        tenant_id,
        "PAY",
        "version: 1\nname: pay\nextends: lean\nrules:\n  - id: success-metric\n    mode: 'off'\n",
    )
    with runtime.database.session() as session:
        found = session.get(Tenant, tenant_id)
        assert found is not None
        session.expunge(found)
    client = runtime.client_for(found)
    assert client is not None

    with tracker_mock() as fake:
        # No success metric, but the project switched that rule off: no card, no writes.
        fake.get(f"{SITE}/rest/api/3/issue/PAY-2", json=jira_issue("PAY-2", metric=False))
        fake.get(f"{SITE}/rest/api/3/field", json=[])
        evaluation = check_item(runtime, found, client, ItemRef(tracker="jira", key="PAY-2"))

    assert evaluation is not None
    assert evaluation.ruleset == "pay"
    assert evaluation.failing_rules() == []
    assert {node.name: node.status.value for node in evaluation.tree.children} == {
        "hypothesis": "pass",
        "success-metric": "skipped",
        "customer-problem": "pass",
    }


def test_the_form_writes_overrides_and_leaves_the_rest_alone(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    tenant_id = tenant(app)
    lean = preset()
    text = (
        "# comments are not kept\nversion: 1\nname: jira-pay\nextends: lean\n"
        "description: Payments.\nrules:\n  - id: hypothesis\n    description: Keep me.\n"
        "    mode: gate\n"
    )
    choices = Choices(
        rules=[
            RuleChoice("hypothesis", "warn", "error", ("epic", "project"), ("hypothesis",)),
            RuleChoice("success-metric", "dry-run", "warning", ("epic",), ("success_metric",)),
            RuleChoice(
                "customer-problem", "warn", "error", ("epic", "project"), ("customer_problem",)
            ),
        ],
        exemption_labels=["lean-exempt", "spike"],
        waivers=[WaiverChoice("hypothesis", ("PAY-7",), "Dana", "2030-01-31", "Agreed.")],
    )

    written = apply_choices(text, lean, choices)

    assert written == (
        "version: 1\nname: jira-pay\nextends: lean\ndescription: Payments.\nrules:\n"
        "- id: hypothesis\n  description: Keep me.\n"
        "- id: success-metric\n  mode: dry-run\n  severity: warning\n  when:\n    kinds:\n"
        "    - epic\n"
        "exemptions:\n  labels:\n  - spike\n"
        "waivers:\n- rule: hypothesis\n  items:\n  - PAY-7\n  owner: Dana\n"
        "  expires: 2030-01-31\n  reason: Agreed.\n"
    )
    runtime = runtime_of(app)
    with runtime.database.session() as session:
        built = compile_text(
            session, runtime, tenant_id=tenant_id, tracker="jira", project="PAY", text=written
        )
        found = resolve(session, runtime, tenant_id, "jira", "PAY")
    view = describe(built, {"rules": [{"id": "success-metric"}]}, lean, today=NOW.date())
    rules = {rule.id: rule for rule in view.rules}
    assert rules["success-metric"].mode == "dry-run"
    assert rules["success-metric"].summary == "Epics need a success metric."
    assert rules["success-metric"].changed_here and not rules["hypothesis"].changed_here
    assert rules["hypothesis"].checks == ("names a change, an expected outcome and a signal",)
    assert view.inherited_labels == ("lean-exempt",)
    assert [(w.rule, w.expired, w.inherited) for w in view.waivers] == [
        ("hypothesis", False, False)
    ]
    assert found.ruleset.name == "lean"
    fields = {f.id: f for f in view.fields}
    assert fields["customer_problem"].where[-1] == "a Linear customer request"


def test_a_bad_expiry_date_is_kept_for_validation_to_name(tmp_path: Path) -> None:
    choices = Choices(waivers=[WaiverChoice("hypothesis", (), "Dana", "soon", "")])

    written = apply_choices("version: 1\nextends: lean\n", preset(), choices)

    assert "expires: soon" in written
