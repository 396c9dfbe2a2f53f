"""The card: what it says, in which order, and how each tracker gets it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from support.contracts import assert_adf_document

from plugin.cards import (
    Card,
    build_card,
    card_hash,
    render_adf,
    render_markdown,
    render_wiki,
    status_property,
)
from rules.result import Evaluation, Mode, Result, Severity, Status

DETAILS = "https://leanguard.example.com/items/jira/ACME-42"


def check(name: str, status: Status = Status.FAIL) -> Result:
    """Build a check node."""
    return Result(kind="check", name=name, status=status, message=f"{name} checked")


def rule(
    name: str,
    status: Status = Status.FAIL,
    *,
    severity: Severity | None = Severity.ERROR,
    mode: Mode | None = Mode.WARN,
    message: str | None = None,
    fix: str = "",
    why: str = "",
    who: tuple[str, ...] = (),
) -> Result:
    """Build a rule node with one field and one check under it."""
    field = Result(
        kind="field",
        name=name.removeprefix("require-"),
        status=status,
        message="field",
        children=(check("present", status),),
    )
    return Result(
        kind="rule",
        name=name,
        status=status,
        message=message if message is not None else f"{name} is {status.value}.",
        fix=fix,
        why=why,
        who=who,
        severity=severity if status in (Status.FAIL, Status.WAIVED) else None,
        field=name.removeprefix("require-"),
        mode=mode,
        children=(field,),
    )


def evaluation(*rules: Result, status: Status | None = None, message: str = "") -> Evaluation:
    """Build an evaluation of ACME-42 whose status follows its rules unless given."""
    if status is None:
        status = Status.FAIL if any(r.status is Status.FAIL for r in rules) else Status.PASS
    tree = Result(kind="item", name="ACME-42", status=status, message=message, children=rules)
    return Evaluation(
        item_key="ACME-42", tracker="jira", ruleset="lean", ruleset_version="1", tree=tree
    )


def missing_hypothesis() -> Result:
    """A failing error rule with every explanation filled in."""
    return rule(
        "require-hypothesis",
        message="The epic has no hypothesis.",
        fix='a "Hypothesis" section in the description, or the Hypothesis field',
        why="Without a hypothesis nobody can tell whether the epic worked.",
        who=("Mia Krystof", "Emma Richards"),
    )


def vague_metric() -> Result:
    """A failing warning rule."""
    return rule(
        "metric-measurable",
        severity=Severity.WARNING,
        message="The success metric has no number to reach.",
        fix="the Success metric field: add a target, e.g. from 4% to 9% by 30 June",
        why="A metric without a target cannot say whether the bet paid off.",
        who=("Mia Krystof",),
    )


def note_rule() -> Result:
    """A failing info rule."""
    return rule(
        "problem-not-solution",
        severity=Severity.INFO,
        message="The customer problem reads like a solution.",
        fix="the Customer problem section",
        why="Naming the pain keeps other solutions on the table.",
    )


def passing_problem() -> Result:
    """A passing rule."""
    return rule(
        "require-customer-problem",
        Status.PASS,
        message="Customer problem found in the description section 'Customer problem'.",
    )


def test_status_line_counts_visible_failures_by_severity() -> None:
    card = build_card(
        evaluation(missing_hypothesis(), vague_metric(), rule("require-metric")),
        details_url=DETAILS,
        show_passed=False,
    )

    assert card.state == "failing"
    assert card.headline == "leanguard: 3 outcome checks failing (2 errors, 1 warning)"


def test_one_line_per_failing_rule_says_what_where_why_who() -> None:
    card = build_card(evaluation(missing_hypothesis()), details_url=DETAILS, show_passed=False)

    assert card.headline == "leanguard: 1 outcome check failing (1 error)"
    (line,) = card.lines
    assert line.status == "fail"
    assert line.rule == "require-hypothesis"
    assert line.severity == "error"
    assert line.text == "The epic has no hypothesis."
    assert line.fix == 'a "Hypothesis" section in the description, or the Hypothesis field'
    assert line.why == "Without a hypothesis nobody can tell whether the epic worked."
    assert line.who == ("Mia Krystof", "Emma Richards")


def test_errors_come_before_warnings_before_info() -> None:
    card = build_card(
        evaluation(note_rule(), vague_metric(), missing_hypothesis()),
        details_url=DETAILS,
        show_passed=False,
    )

    assert [line.severity for line in card.lines] == ["error", "warning", "info"]


def test_dry_run_failures_stay_off_the_card() -> None:
    shadow = rule("require-metric", mode=Mode.DRY_RUN, message="No metric (dry run).")
    card = build_card(
        evaluation(missing_hypothesis(), shadow), details_url=DETAILS, show_passed=True
    )

    assert [line.rule for line in card.lines] == ["require-hypothesis"]
    assert "1 outcome check failing" in card.headline


def test_passed_rules_are_ticked_only_when_the_card_exists() -> None:
    item = evaluation(missing_hypothesis(), passing_problem())

    first = build_card(item, details_url=DETAILS, show_passed=False)
    later = build_card(item, details_url=DETAILS, show_passed=True)

    assert [line.status for line in first.lines] == ["fail"]
    assert [line.status for line in later.lines] == ["fail", "pass"]
    assert later.lines[1].text.startswith("Customer problem found")
    assert "✅ Customer problem found" in render_markdown(later)


def test_waived_rule_shows_its_waiver() -> None:
    waived = rule(
        "require-metric",
        Status.WAIVED,
        severity=Severity.ERROR,
        message="Waived until 2026-12-31 by Emma Richards.",
    )
    card = build_card(
        evaluation(missing_hypothesis(), waived), details_url=DETAILS, show_passed=False
    )

    assert [(line.status, line.text) for line in card.lines] == [
        ("fail", "The epic has no hypothesis."),
        ("waived", "Waived until 2026-12-31 by Emma Richards."),
    ]
    assert "- ⏳ Waived until 2026-12-31 by Emma Richards." in render_markdown(card)
    assert "* (off) Waived until 2026\\-12\\-31 by Emma Richards." in render_wiki(card)


def test_resolved_card_thanks_and_ticks_everything() -> None:
    card = build_card(
        evaluation(passing_problem(), rule("require-hypothesis", Status.PASS, message="Found.")),
        details_url=DETAILS,
        show_passed=True,
    )

    assert card.state == "resolved"
    assert card.headline == "leanguard: all outcome checks pass — thanks!"
    assert [line.status for line in card.lines] == ["pass", "pass"]
    assert render_adf(card)["content"][0]["attrs"]["panelType"] == "success"


def test_resolved_with_waivers_says_so() -> None:
    waived = rule("require-metric", Status.WAIVED, message="Waived until 2026-12-31 by Al.")
    card = build_card(
        evaluation(waived, status=Status.WAIVED), details_url=DETAILS, show_passed=True
    )

    assert card.state == "resolved"
    assert card.headline == "leanguard: all outcome checks pass or are waived — thanks!"


def test_exempt_item_explains_why_checks_stopped() -> None:
    card = build_card(
        evaluation(status=Status.EXEMPT, message="Labelled lean-exempt."),
        details_url=DETAILS,
        show_passed=True,
    )

    assert card.state == "resolved"
    assert card.headline == "leanguard: outcome checks no longer apply — Labelled lean-exempt"


def test_hash_changes_only_when_content_changes() -> None:
    one = build_card(evaluation(missing_hypothesis()), details_url=DETAILS, show_passed=False)
    same = build_card(evaluation(missing_hypothesis()), details_url=DETAILS, show_passed=False)
    other_text = build_card(
        evaluation(rule("require-hypothesis", message="Still no hypothesis.")),
        details_url=DETAILS,
        show_passed=False,
    )
    with_pass = build_card(
        evaluation(missing_hypothesis(), passing_problem()), details_url=DETAILS, show_passed=True
    )
    other_link = build_card(
        evaluation(missing_hypothesis()), details_url=DETAILS + "?v=2", show_passed=False
    )

    assert card_hash(one) == card_hash(same)
    assert len(card_hash(one)) == 64
    assert len({card_hash(c) for c in (one, other_text, with_pass, other_link)}) == 4


def test_hash_ignores_tree_details_the_card_does_not_show() -> None:
    base = missing_hypothesis()
    noisier = Result(
        kind=base.kind,
        name=base.name,
        status=base.status,
        message=base.message,
        looked_for="a section named Hypothesis",
        looked_in=("description", "customfield_10056"),
        fix=base.fix,
        why=base.why,
        who=base.who,
        severity=base.severity,
        field=base.field,
        mode=base.mode,
    )

    assert card_hash(build_card(evaluation(base), details_url=DETAILS, show_passed=False)) == (
        card_hash(build_card(evaluation(noisier), details_url=DETAILS, show_passed=False))
    )


def test_adf_is_a_valid_document() -> None:
    card = build_card(
        evaluation(missing_hypothesis(), vague_metric(), note_rule(), passing_problem()),
        details_url=DETAILS,
        show_passed=True,
    )

    doc = render_adf(card)

    assert_adf_document(doc)
    assert doc["type"] == "doc" and doc["version"] == 1
    panel, footer = doc["content"]
    assert panel["type"] == "panel"
    assert panel["attrs"]["panelType"] == "error"
    headline = panel["content"][0]["content"][0]
    assert headline == {"type": "text", "text": card.headline, "marks": [{"type": "strong"}]}
    items = panel["content"][1]["content"]
    assert len(items) == 4
    assert items[0]["content"][0]["content"][0]["attrs"]["shortName"] == ":x:"
    assert items[3]["content"][0]["content"][0]["attrs"]["shortName"] == ":white_check_mark:"
    link = footer["content"][1]
    assert link["text"] == "See details"
    assert link["marks"] == [{"type": "link", "attrs": {"href": DETAILS}}]
    assert footer["content"][0]["text"] == "Checked by leanguard — "


def test_adf_panel_follows_the_worst_visible_severity() -> None:
    def panel_type(*rules: Result) -> str:
        card = build_card(evaluation(*rules), details_url=DETAILS, show_passed=False)
        return str(render_adf(card)["content"][0]["attrs"]["panelType"])

    assert panel_type(vague_metric(), note_rule()) == "warning"
    assert panel_type(note_rule()) == "info"
    assert panel_type(missing_hypothesis(), note_rule()) == "error"


MARKDOWN_SNAPSHOT = """\
**leanguard: 2 outcome checks failing (1 error, 1 warning)**

- ❌ **The epic has no hypothesis.**
  - **Fix:** a "Hypothesis" section in the description, or the Hypothesis field
  - Why: Without a hypothesis nobody can tell whether the epic worked.
  - Who can fix: Mia Krystof, Emma Richards
- ⚠️ **The success metric has no number to reach.**
  - **Fix:** the Success metric field: add a target, e.g. from 4% to 9% by 30 June
  - Why: A metric without a target cannot say whether the bet paid off.
  - Who can fix: Mia Krystof
- ✅ Customer problem found in the description section 'Customer problem'.

Checked by leanguard — [See details](https://leanguard.example.com/items/jira/ACME-42)"""

WIKI_SNAPSHOT = """\
*leanguard: 2 outcome checks failing (1 error, 1 warning)*

* (x) *The epic has no hypothesis.*
** *Fix:* a "Hypothesis" section in the description, or the Hypothesis field
** Why: Without a hypothesis nobody can tell whether the epic worked.
** Who can fix: Mia Krystof, Emma Richards
* (!) *The success metric has no number to reach.*
** *Fix:* the Success metric field: add a target, e.g. from 4% to 9% by 30 June
** Why: A metric without a target cannot say whether the bet paid off.
** Who can fix: Mia Krystof
* (/) Customer problem found in the description section 'Customer problem'.

Checked by leanguard — [See details|https://leanguard.example.com/items/jira/ACME-42]"""


def snapshot_card() -> Card:
    """The card both snapshots render."""
    return build_card(
        evaluation(vague_metric(), missing_hypothesis(), passing_problem()),
        details_url=DETAILS,
        show_passed=True,
    )


def test_markdown_snapshot() -> None:
    assert render_markdown(snapshot_card()) == MARKDOWN_SNAPSHOT


def test_wiki_snapshot() -> None:
    assert render_wiki(snapshot_card()) == WIKI_SNAPSHOT


def test_resolved_snapshots() -> None:
    card = build_card(evaluation(passing_problem()), details_url=DETAILS, show_passed=False)

    assert render_markdown(card) == (
        "**leanguard: all outcome checks pass — thanks!**\n\n"
        f"Checked by leanguard — [See details]({DETAILS})"
    )
    assert render_wiki(card) == (
        "*leanguard: all outcome checks pass — thanks\\!*\n\n"
        f"Checked by leanguard — [See details|{DETAILS}]"
    )


def test_item_text_cannot_restyle_the_card() -> None:
    sneaky = rule(
        "require-hypothesis",
        message="Heading *Hypothesis* is empty\n# [click](http://evil.example)",
        fix="the {color:red}Hypothesis{color} field",
    )
    card = build_card(evaluation(sneaky), details_url=DETAILS, show_passed=False)

    markdown = render_markdown(card)
    wiki = render_wiki(card)

    assert "\\*Hypothesis\\*" in markdown
    assert "\\[click\\](http://evil.example)" in markdown
    assert "\n#" not in markdown
    assert "\\{color:red\\}" in wiki
    assert "\\*Hypothesis\\*" in wiki


def test_every_rendering_ends_with_the_footer() -> None:
    card = snapshot_card()

    assert render_markdown(card).endswith(f"Checked by leanguard — [See details]({DETAILS})")
    assert render_wiki(card).endswith(f"Checked by leanguard — [See details|{DETAILS}]")
    footer = render_adf(card)["content"][-1]
    assert (
        "".join(node["text"] for node in footer["content"]) == "Checked by leanguard — See details"
    )


def test_status_property_for_a_failing_item() -> None:
    item = evaluation(missing_hypothesis(), vague_metric(), passing_problem())
    when = datetime(2026, 9, 14, 11, 30, 5, 123456, tzinfo=timezone(timedelta(hours=2)))

    value = status_property(item, details_url=DETAILS, evaluated_at=when)

    assert value == {
        "status": "fail",
        "violations": 2,
        "failing": ["require-hypothesis", "metric-measurable"],
        "evaluatedAt": "2026-09-14T09:30:05+00:00",
        "detailsUrl": DETAILS,
    }


def test_status_property_hides_dry_run_failures() -> None:
    shadow = rule("require-metric", mode=Mode.DRY_RUN)
    value = status_property(
        evaluation(shadow, passing_problem()),
        details_url=DETAILS,
        evaluated_at=datetime(2026, 9, 14, 9, 0),
    )

    assert value["status"] == "pass"
    assert value["violations"] == 0
    assert value["failing"] == []
    assert value["evaluatedAt"] == "2026-09-14T09:00:00+00:00"


def test_status_property_passes_other_statuses_through() -> None:
    now = datetime.now(UTC)
    for status in (Status.EXEMPT, Status.SKIPPED, Status.WAIVED, Status.PASS):
        value = status_property(evaluation(status=status), details_url=DETAILS, evaluated_at=now)
        assert value["status"] == status.value
        assert value["violations"] == 0
