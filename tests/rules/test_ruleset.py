"""Rule sets: strict validation with paths, inheritance, and locked rules."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from plugin.rulesets import load_rules_path
from rules import Mode, RuleSetError, Severity, parse_ruleset, preset

FIXTURES = Path(__file__).parent / "fixtures" / "rulesets"
INVALID = Path(__file__).parent / "fixtures" / "invalid_rulesets"


def problems_of(text: str) -> list[str]:
    with pytest.raises(RuleSetError) as caught:
        parse_ruleset(text, source="rules.yaml")
    return [f"{p.path}: {p.message}" for p in caught.value.problems]


def test_lean_preset_requires_the_three_outcome_fields_as_errors() -> None:
    lean = preset()
    assert set(lean.fields) == {"hypothesis", "success_metric", "customer_problem"}
    assert [rule.require for rule in lean.rules] == [
        ("hypothesis",),
        ("success_metric",),
        ("customer_problem",),
    ]
    assert all(rule.severity is Severity.ERROR for rule in lean.rules)
    assert all(rule.checks.severity is Severity.WARNING for rule in lean.rules)
    assert lean.exemption_labels == ("lean-exempt",)


def test_lean_preset_looks_where_the_design_says() -> None:
    fields = preset().fields
    assert fields["hypothesis"].headings == ("Hypothesis",)
    assert fields["hypothesis"].links[0].target_types == ("Hypothesis",)
    assert fields["customer_problem"].headings == ("Customer problem", "Problem statement")
    assert fields["customer_problem"].customer_needs is True
    assert fields["customer_problem"].links[0].target_project_types == ("product_discovery",)


def test_unknown_keys_and_bad_values_name_the_path() -> None:
    text = (INVALID / "typos.yaml").read_text()
    found = problems_of(text)
    assert "rules[0].severity: Must be one of: info, warning, error" in found
    assert any(p.startswith("rules[1].checks.measureable: unknown key") for p in found)
    assert any(
        p.startswith("rules[2].checks.pattern: is not a valid regular expression") for p in found
    )
    assert any(p.startswith("fields[0].sourcez: unknown key") for p in found)


def test_problems_name_the_file() -> None:
    with pytest.raises(RuleSetError) as caught:
        load_rules_path(INVALID / "typos.yaml")
    assert all(p.source.endswith("typos.yaml") for p in caught.value.problems)
    assert "typos.yaml: rules[0].severity:" in str(caught.value)


def test_yaml_syntax_errors_give_the_line() -> None:
    [problem] = problems_of("version: 1\nrules: [\n")
    assert problem.startswith("line 3")
    assert "not valid YAML" in problem


def test_version_must_be_one() -> None:
    assert problems_of("version: 2\n") == ["version: must be 1"]


def test_a_rule_must_require_a_known_field() -> None:
    found = problems_of("version: 1\nrules:\n  - id: r\n    require: [nope]\n")
    assert found == ["rules[0].require[0]: unknown field 'nope' (known: none defined)"]


def test_extending_an_unknown_rule_set_is_an_error() -> None:
    assert problems_of("version: 1\nextends: nowhere\n") == [
        "extends: unknown rule set 'nowhere' (presets: lean)"
    ]


def test_project_overrides_a_rule_by_id_and_switches_one_off() -> None:
    catalog = load_rules_path(FIXTURES)
    payments = catalog.by_name("payments")
    assert payments is not None
    assert payments.lineage == ("acme", "lean")
    metric = payments.rule("success-metric")
    assert metric is not None and metric.mode is Mode.GATE
    assert metric.require == ("success_metric",)  # the rest comes from the preset
    problem = payments.rule("customer-problem")
    assert problem is not None and problem.mode is Mode.OFF
    added = payments.rule("metric-has-date")
    assert added is not None and added.origin == "acme"


def test_project_can_add_synonyms_to_a_field() -> None:
    payments = load_rules_path(FIXTURES).by_name("payments")
    assert payments is not None
    assert payments.fields["customer_problem"].headings == (
        "Customer problem",
        "Problem statement",
        "User pain",
    )
    assert "User pain" in payments.fields["customer_problem"].custom_fields


def test_locked_rule_cannot_be_loosened() -> None:
    with pytest.raises(RuleSetError) as caught:
        load_rules_path(INVALID / "loosens_locked.yaml")
    messages = [f"{p.path}: {p.message}" for p in caught.value.problems]
    assert (
        "rules[0]: rule 'hypothesis' is locked by 'acme': mode cannot go from warn to dry-run"
        in messages
    )
    assert (
        "rules[0]: rule 'hypothesis' is locked by 'acme': severity cannot go from error to info"
        in messages
    )
    assert (
        "rules[0]: rule 'hypothesis' is locked by 'acme': it must still require hypothesis"
        in messages
    )
    assert (
        "waivers[0].rule: rule 'hypothesis' is locked by 'acme' and cannot be waived here"
        in messages
    )


def test_locked_rule_can_be_tightened(tmp_path: Path) -> None:
    (tmp_path / "org.yaml").write_text(
        "version: 1\nname: org\nextends: lean\nrules:\n  - id: hypothesis\n    locked: true\n"
    )
    (tmp_path / "team.yaml").write_text(
        "version: 1\nname: team\nextends: org\nscope: {projects: [TEAM]}\n"
        "rules:\n  - id: hypothesis\n    mode: gate\n    checks: {min_words: 8}\n"
    )
    team = load_rules_path(tmp_path).by_name("team")
    assert team is not None
    rule = team.rule("hypothesis")
    assert rule is not None and rule.mode is Mode.GATE and rule.locked
    assert rule.checks.min_words == 8 and rule.checks.hypothesis_form


def test_project_exemption_labels_do_not_reach_locked_rules() -> None:
    payments = load_rules_path(FIXTURES).by_name("payments")
    assert payments is not None
    hypothesis, metric = payments.rule("hypothesis"), payments.rule("success-metric")
    assert hypothesis is not None and metric is not None
    assert hypothesis.exempt_labels == ("lean-exempt",)
    assert metric.exempt_labels == ("lean-exempt", "spike")


def test_waivers_expire() -> None:
    payments = load_rules_path(FIXTURES).by_name("payments")
    assert payments is not None
    [waiver] = payments.waivers
    assert waiver.covers("success-metric", "PAY-7", date(2026, 12, 31))
    assert not waiver.covers("success-metric", "PAY-7", date(2027, 1, 1))
    assert not waiver.covers("success-metric", "PAY-8", date(2026, 12, 1))


def test_catalog_picks_the_most_specific_rule_set() -> None:
    catalog = load_rules_path(FIXTURES)
    assert catalog.select("jira", "PAY").name == "payments"
    assert catalog.select("jira", "WEB").name == "acme"
    assert catalog.select("linear", "PAY").name == "acme"


def test_version_is_a_content_hash() -> None:
    assert preset().version == parse_ruleset("version: 1\nextends: lean\nname: lean\n").version
    changed = parse_ruleset("version: 1\nextends: lean\nexemptions: {labels: [spike]}\n")
    assert changed.version != preset().version
