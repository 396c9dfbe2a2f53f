"""The ``leanguard`` command line: check, rules validate, and the service commands' help."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from plugin.cli import main

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("LEANGUARD_SHARED_DIR", ROOT.parent / "shared"))
SHARED_FIXTURES = sorted((SHARED / "fixtures").glob("*/*.json"))
HERE = Path(__file__).parent / "fixtures" / "check"
DEMO = ROOT / "plugin" / "demo_data"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_the_shared_fixtures_exist() -> None:
    assert len(SHARED_FIXTURES) >= 8


@pytest.mark.parametrize("payload", SHARED_FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_check_reads_every_real_webhook_payload(payload: Path) -> None:
    code, out, err = run("check", "--format", "json", str(payload))
    assert err == ""
    report = json.loads(out)
    document = json.loads(payload.read_text())
    has_item = "issue" in document or document.get("type") in ("Issue", "Project")
    assert len(report["items"]) == (1 if has_item else 0)
    failing = [i for i in report["items"] if i["status"] == "fail"]
    assert code == (1 if failing else 0)


def test_check_json_has_the_documented_shape() -> None:
    code, out, _ = run("check", "--format", "json", str(DEMO / "jira_epics.json"))
    assert code == 1
    items = {item["key"]: item for item in json.loads(out)["items"]}
    assert set(items["SHOP-102"]) == {"key", "tracker", "kind", "status", "results"}
    row = next(r for r in items["SHOP-102"]["results"] if r["rule"] == "success-metric")
    assert row == {
        "rule": "success-metric",
        "field": "success_metric",
        "status": "fail",
        "severity": "error",
        "message": "No success metric found.",
        "fix": 'Add a description section headed "Success metric" or fill in the custom field '
        '"Success metric".',
    }
    assert items["SHOP-101"]["status"] == "pass"
    assert items["SHOP-104"]["status"] == "exempt"


def test_check_text_lists_what_to_fix_for_each_failing_item() -> None:
    code, out, _ = run("check", str(DEMO / "jira_epics.json"), str(DEMO / "linear_epics.json"))
    assert code == 1
    assert "SHOP-102 (jira epic) Dark mode" in out
    assert '      fix: Add a description section headed "Success metric"' in out
    assert "      who: Ada Lovelace, Grace Hopper" in out
    assert "SHOP-101" not in out  # passing items are not listed
    assert out.rstrip().endswith("7 items checked: 1 exempt, 4 fail, 2 pass")


def test_check_exits_zero_when_only_warnings_fail() -> None:
    rules = HERE / "warnings_only.yaml"
    code, out, _ = run("check", "--rules", str(rules), str(DEMO / "jira_epics.json"))
    assert code == 0
    assert "[warning] success-metric: No success metric found." in out


def test_check_exits_two_on_an_invalid_rules_file() -> None:
    code, _, err = run(
        "check", "--rules", str(HERE / "broken_rules.yaml"), str(DEMO / "jira_epics.json")
    )
    assert code == 2
    assert "broken_rules.yaml: rules[0].mode: Must be one of: off, dry-run, warn, gate" in err


def test_check_exits_two_on_unreadable_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run("check", str(bad))
    assert code == 2
    assert "bad.json: not JSON" in err
    unknown = tmp_path / "unknown.json"
    unknown.write_text('{"hello": "world"}')
    code, _, err = run("check", str(unknown))
    assert code == 2 and "unknown.json" in err


def test_check_needs_at_least_one_file() -> None:
    code, _, err = run("check")
    assert code == 2
    assert "Missing argument" in err


def test_rules_validate_reports_ok_with_lineage() -> None:
    fixtures = ROOT / "tests" / "rules" / "fixtures" / "rulesets"
    code, out, _ = run("rules", "validate", str(fixtures))
    assert code == 0
    assert "ok: rule set 'payments' version" in out
    assert "(extends acme <- lean)" in out


def test_rules_validate_prints_every_problem_and_exits_two() -> None:
    typos = ROOT / "tests" / "rules" / "fixtures" / "invalid_rulesets" / "typos.yaml"
    code, _, err = run("rules", "validate", str(typos))
    assert code == 2
    assert len(err.strip().splitlines()) == 4


@pytest.mark.parametrize("command", ["serve", "worker", "check", "migrate", "rules"])
def test_every_command_has_help(command: str) -> None:
    code, out, _ = run(command, "--help")
    assert code == 0
    assert "Usage: main" in out or "Usage:" in out


def test_worker_without_redis_explains_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEANGUARD_REDIS_URL", raising=False)
    code, _, err = run("worker", "--burst")
    assert code == 2
    assert "LEANGUARD_REDIS_URL is not set" in err


def test_migrate_creates_the_embedded_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEANGUARD_DATABASE_URL", f"sqlite:///{tmp_path / 'lg.db'}")
    code, out, _ = run("migrate")
    assert code == 0 and "is up to date" in out
    assert (tmp_path / "lg.db").exists()
