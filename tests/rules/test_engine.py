"""evaluate(): every verdict says what was looked for, where, what was found and how to fix it."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

from plugin.rulesets import load_rules_path
from rules import Link, Mode, Person, Section, Severity, Status, WorkItem, evaluate, preset
from rules.model import StatusCategory

FIXTURES = Path(__file__).parent / "fixtures" / "rulesets"
GOOD_HYPOTHESIS = (
    "We believe a one-click reorder button will result in more repeat orders; "
    "we will know when repeat orders rise from 12% to 18% within 8 weeks."
)
GOOD_METRIC = "Repeat-order rate rises from 12% to 18% by 2026-03-31."
GOOD_PROBLEM = (
    "Returning customers can't find what they bought last time and have to search again; "
    "a third of them abandon the basket."
)


def epic(**changes: object) -> WorkItem:
    item = WorkItem(
        tracker="jira",
        key="SHOP-1",
        title="Reorder",
        kind="epic",
        type_name="Epic",
        project="SHOP",
        assignee=Person("Ada Assignee", "a1"),
        reporter=Person("Rui Reporter", "r1"),
        status_category=StatusCategory.TODO,
        sections=(
            Section("Hypothesis", GOOD_HYPOTHESIS, 2),
            Section("Success metrics", GOOD_METRIC, 2),
            Section("Problem statement", GOOD_PROBLEM, 2),
        ),
    )
    return replace(item, **changes)  # type: ignore[arg-type]


def rule_node(item: WorkItem, rule_id: str, ruleset=None, on: date | None = None):  # type: ignore[no-untyped-def]
    evaluation = evaluate(item, ruleset or preset(), on=on)
    return next(node for node in evaluation.tree.children if node.name == rule_id)


def test_a_complete_epic_passes_every_rule() -> None:
    evaluation = evaluate(epic(), preset())
    assert evaluation.status is Status.PASS
    assert [n.status for n in evaluation.tree.children] == [Status.PASS] * 3
    assert evaluation.tree.message == "All 3 rules that apply pass."


def test_missing_field_fails_at_error_severity_and_says_how_to_fix() -> None:
    item = epic(sections=epic().sections[1:])
    node = rule_node(item, "hypothesis")
    assert node.status is Status.FAIL
    assert node.severity is Severity.ERROR
    assert node.message == "No hypothesis found."
    assert node.fix == (
        'Add a description section headed "Hypothesis", fill in the custom field "Hypothesis" '
        'or add an issue link to an issue of type "Hypothesis".'
    )
    assert node.looked_in == (
        'custom field "Hypothesis"',
        'description section "Hypothesis"',
        'an issue link to an issue of type "Hypothesis"',
    )
    assert node.why.startswith("Without a stated bet")
    assert node.who == ("Ada Assignee", "Rui Reporter")
    assert node.field == "hypothesis"


def test_empty_section_counts_as_missing_and_is_reported() -> None:
    item = epic(sections=(Section("Hypothesis", "", 2), *epic().sections[1:]))
    node = rule_node(item, "hypothesis")
    assert node.status is Status.FAIL
    assert node.found == 'Description section "Hypothesis" is empty'


def test_custom_field_counts_and_names_are_folded() -> None:
    item = epic(sections=epic().sections[1:], fields={"hypothesis:": GOOD_HYPOTHESIS})
    node = rule_node(item, "hypothesis")
    assert node.status is Status.PASS
    assert node.message == 'Hypothesis found in custom field "hypothesis:".'


def test_link_to_a_hypothesis_issue_counts() -> None:
    link = Link("is tested by", "outward", "HYP-3", "Tests", "Hypothesis", "Reorders", "Open")
    item = epic(sections=epic().sections[1:], links=(link,))
    node = rule_node(item, "hypothesis")
    assert node.status is Status.PASS
    assert node.children[0].found == 'link is tested by HYP-3 ("Reorders")'


def test_product_discovery_idea_or_customer_request_counts_as_a_problem() -> None:
    idea = Link(
        "implements",
        "outward",
        "IDEA-9",
        "Polaris work item link",
        "Idea",
        target_project_type="product_discovery",
    )
    without_problem = epic().sections[:2]
    assert (
        rule_node(epic(sections=without_problem, links=(idea,)), "customer-problem").status
        is Status.PASS
    )
    linear = epic(tracker="linear", sections=without_problem, customer_needs=2)
    node = rule_node(linear, "customer-problem")
    assert node.status is Status.PASS
    assert node.children[0].found == "2 linked customer requests"


def test_weak_content_fails_at_warning_with_the_checks_hint() -> None:
    item = epic(
        sections=(Section("Hypothesis", "Users will love the new button.", 2), *epic().sections[1:])
    )
    node = rule_node(item, "hypothesis")
    assert node.status is Status.FAIL
    assert node.severity is Severity.WARNING
    [field] = node.children
    [check] = field.children
    assert check.name == "hypothesis_form" and check.status is Status.FAIL
    assert check.fix and node.fix == check.fix


def test_rules_only_apply_to_epics_and_projects() -> None:
    story = epic(kind="story", type_name="Story", sections=())
    evaluation = evaluate(story, preset())
    assert evaluation.status is Status.SKIPPED
    assert (
        evaluation.tree.children[0].message
        == "Does not apply: only for epics, projects, and this is a story."
    )


def test_exemption_label_exempts_the_item() -> None:
    evaluation = evaluate(epic(labels=("Lean-Exempt",), sections=()), preset())
    assert evaluation.status is Status.EXEMPT
    assert evaluation.tree.children[0].message == 'Exempt: the item is labelled "lean-exempt".'


def test_waiver_shows_waived_until_it_expires() -> None:
    payments = load_rules_path(FIXTURES).by_name("payments")
    item = epic(key="PAY-7", project="PAY", sections=epic().sections[::2])
    before = rule_node(item, "success-metric", payments, on=date(2026, 12, 31))
    assert before.status is Status.WAIVED
    assert before.message == (
        "Waived until 2026-12-31 by Dana Product: Metric agreed with finance next sprint."
    )
    assert evaluate(item, payments, on=date(2026, 12, 31)).status is Status.WAIVED
    after = rule_node(item, "success-metric", payments, on=date(2027, 1, 1))
    assert after.status is Status.FAIL


def test_switched_off_and_dry_run_rules_never_fail_the_item() -> None:
    payments = load_rules_path(FIXTURES).by_name("payments")
    item = epic(key="PAY-1", project="PAY", sections=epic().sections[:2])
    evaluation = evaluate(item, payments, on=date(2026, 1, 1))
    problem = next(n for n in evaluation.tree.children if n.name == "customer-problem")
    assert problem.status is Status.SKIPPED and problem.message == "Switched off in this rule set."
    dated = next(n for n in evaluation.tree.children if n.name == "metric-has-date")
    assert dated.mode is Mode.DRY_RUN
    assert evaluation.status is Status.PASS


def test_dry_run_failures_are_recorded_but_not_visible() -> None:
    acme = load_rules_path(FIXTURES).by_name("acme")
    item = epic(sections=(*epic().sections[::2], Section("Success metric", "Conversion to 5%", 2)))
    evaluation = evaluate(item, acme)
    dated = next(n for n in evaluation.tree.children if n.name == "metric-has-date")
    assert dated.status is Status.FAIL
    assert dated not in evaluation.failing_rules()
    assert dated in evaluation.failing_rules(visible_only=False)


def test_nobody_to_ask_falls_back_to_a_project_admin() -> None:
    node = rule_node(epic(assignee=None, reporter=None, sections=()), "hypothesis")
    assert node.who == ("a project admin",)


def test_evaluation_is_deterministic_and_round_trips_through_json() -> None:
    item = epic(sections=epic().sections[1:])
    first, second = (
        evaluate(item, preset(), on=date(2026, 1, 1)),
        evaluate(item, preset(), on=date(2026, 1, 1)),
    )
    assert first == second
    assert type(first).from_dict(first.to_dict()) == first
    assert first.counts == {"fail": 1, "pass": 2, "errors": 1}
