"""Quality checks: every example in the table gets the right verdict, and nothing ever raises."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.quality import (
    CHECKS,
    MAX_CHARS,
    Verdict,
    hypothesis_form,
    measurable,
    problem_not_solution,
)

EXAMPLES_FILE = Path(__file__).parent / "fixtures" / "quality_examples.yaml"
EXAMPLES: dict[str, list[dict[str, Any]]] = yaml.safe_load(EXAMPLES_FILE.read_text("utf-8"))
CASES = [
    pytest.param(check, example, id=f"{check}-{index:02d}-{'ok' if example['ok'] else 'bad'}")
    for check, examples in EXAMPLES.items()
    for index, example in enumerate(examples)
]


@pytest.mark.parametrize(("check", "example"), CASES)
def test_example_gets_its_verdict(check: str, example: dict[str, Any]) -> None:
    verdict = CHECKS[check](example["text"])
    assert verdict.ok is example["ok"], (
        f"{example['note']}\n  text: {example['text']!r}\n  found: {verdict.found}"
        f"\n  problem: {verdict.problem}"
    )
    assert verdict.found
    if verdict.ok:
        assert verdict.problem == ""
    else:
        assert verdict.problem
        assert verdict.hint


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_example_table_is_large_and_balanced(check: str) -> None:
    examples = EXAMPLES[check]
    good = sum(1 for example in examples if example["ok"])
    assert len(examples) >= 40
    assert 0.4 <= good / len(examples) <= 0.6
    assert all(set(example) == {"text", "ok", "note"} for example in examples)
    assert all(example["note"] for example in examples)


def test_checks_are_registered_by_their_rule_set_names() -> None:
    assert dict(CHECKS) == {
        "hypothesis_form": hypothesis_form,
        "measurable": measurable,
        "problem_not_solution": problem_not_solution,
    }
    with pytest.raises(TypeError):
        CHECKS["hypothesis_form"] = measurable  # type: ignore[index]


def test_verdict_is_frozen() -> None:
    verdict = measurable("2x weekly CSV exports")
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.ok = False  # type: ignore[misc]


# --------------------------------------------------------------------------- hypothesis_form


def test_hypothesis_without_signal_names_what_it_found_and_what_is_missing() -> None:
    verdict = hypothesis_form(
        "We believe that adding a one-click reorder button will increase repeat orders."
    )
    assert not verdict.ok
    assert verdict.found == (
        'change "adding a one-click reorder button"; outcome "increase repeat orders"; no signal'
    )
    assert verdict.problem == "It names a change and an outcome but no signal that would tell."
    assert "we will know" in verdict.hint


def test_hypothesis_number_in_the_outcome_is_the_signal() -> None:
    verdict = hypothesis_form(
        "We believe showing shipping costs on the product page will reduce cart abandonment by 15%."
    )
    assert verdict.ok
    assert 'change "showing shipping costs on the product page"' in verdict.found
    assert 'signal "by 15%" (a number in the outcome)' in verdict.found
    assert verdict.problem == verdict.hint == ""


def test_hypothesis_number_inside_the_change_is_no_signal() -> None:
    verdict = hypothesis_form(
        "If we send a reminder email 24 hours before the trial ends, more trial users will upgrade."
    )
    assert not verdict.ok
    assert 'change "send a reminder email 24 hours before the trial ends"' in verdict.found
    assert verdict.found.endswith("no signal")


def test_hypothesis_found_keeps_the_writers_capitals() -> None:
    verdict = hypothesis_form(
        "**We believe** that enabling Apple Pay in mobile checkout will increase mobile "
        "conversion, as measured by checkout conversion in Amplitude."
    )
    assert verdict.ok
    assert 'change "enabling Apple Pay in mobile checkout"' in verdict.found
    assert 'signal "as measured by checkout conversion in Amplitude"' in verdict.found


def test_hypothesis_labelled_template_is_read_line_by_line() -> None:
    verdict = hypothesis_form(
        "- **Change:** replace the 7-step signup with a 3-step flow\n"
        "- **Expected outcome:** more visitors finish signup\n"
        "- **Signal:** TBD"
    )
    assert not verdict.ok
    assert 'change "replace the 7-step signup with a 3-step flow"' in verdict.found
    assert verdict.found.endswith("no signal")


def test_hypothesis_that_points_at_the_epic_names_no_change() -> None:
    verdict = hypothesis_form("This will reduce support tickets about billing by 20%.")
    assert not verdict.ok
    assert verdict.found.startswith('no change named (only "This")')
    assert verdict.problem.startswith("It names an outcome and a signal but no change we make")


def test_hypothesis_vague_hope_is_not_an_observable_outcome() -> None:
    verdict = hypothesis_form("Users will love the new dashboard.")
    assert not verdict.ok
    assert 'outcome "love the new dashboard" (not observable)' in verdict.found
    assert "is a hope, not a result" in verdict.problem


def test_hypothesis_question_and_user_story_are_called_what_they_are() -> None:
    assert "asks a question" in hypothesis_form("Will a referral program help us grow?").problem
    story = hypothesis_form("As a buyer, I want to save my cart so that I can finish later.")
    assert story.found.startswith('user story "As a buyer, I want to save my cart')
    assert story.problem.startswith("It is a user story")


# --------------------------------------------------------------------------- measurable


def test_metric_with_target_and_date() -> None:
    verdict = measurable("Trial-to-paid conversion: 9% -> 12% by end of Q2")
    assert verdict == Verdict(
        ok=True, found='target "9% -> 12%"; date "by end of Q2"', problem="", hint=""
    )


def test_metric_without_date_passes_and_asks_for_one() -> None:
    verdict = measurable("Onboarding completion rate from 38% to 50%")
    assert verdict.ok
    assert verdict.found == 'target "from 38% to 50%"; no date'
    assert verdict.problem == ""
    assert "date or timeframe" in verdict.hint


def test_metric_prefers_the_percentage_over_a_segment_count() -> None:
    verdict = measurable("Monthly logo churn for accounts under 10 seats below 2.5% by 2026-06-30")
    assert verdict.found == 'target "below 2.5%"; date "by 2026-06-30"'


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Ship v2 of the reporting API", '"v2"'),
        ("Reduce the number of support tickets (see PLAT-1234)", '"PLAT-1234"'),
        ("Phase 2 of the migration is completed", '"Phase 2"'),
        ("Meet the SLA for our top 3 customers", '"top 3"'),
        ("OKR 2.3: improve self-serve activation", '"OKR 2.3"'),
    ],
)
def test_metric_numbers_that_name_things_are_no_targets(text: str, label: str) -> None:
    verdict = measurable(text)
    assert not verdict.ok
    assert f"ignored {label} (labels, not targets)" in verdict.found
    assert verdict.problem == f"Its only numbers are labels ({label}), not a target to reach."


def test_metric_timeframe_and_year_are_no_targets() -> None:
    assert not measurable("Improve 7-day retention for new mobile users within 6 weeks").ok
    verdict = measurable("Adoption of the new editor by enterprise customers by 2025")
    assert verdict.found == 'no target; date "by 2025"'
    assert verdict.problem.startswith('It has a date ("by 2025") but no number')


def test_metric_baseline_alone_is_no_target() -> None:
    verdict = measurable("Grow self-serve upgrades (currently 120/month)")
    assert not verdict.ok
    assert 'baseline "currently 120/month"' in verdict.found
    assert verdict.problem == 'It gives a baseline ("currently 120/month") but no target to reach.'


def test_metric_vague_amount_is_named() -> None:
    verdict = measurable("Time to first value goes down significantly")
    assert verdict.problem == 'It says "significantly" but gives no number or target to reach.'


# --------------------------------------------------------------------------- problem_not_solution


def test_problem_that_states_the_pain_passes_even_with_a_solution_in_it() -> None:
    verdict = problem_not_solution(
        "Admins can't onboard 50 users at once and spend hours adding them one by one. "
        "Build a bulk import."
    )
    assert verdict.ok
    assert verdict.found == (
        'solution "Build a bulk import"; '
        'pain "Admins can\'t onboard 50 users at once and spend hours…"'
    )


def test_problem_that_is_a_solution_says_so() -> None:
    verdict = problem_not_solution("Build a bulk user import from CSV for admins.")
    assert not verdict.ok
    assert verdict.found == (
        'solution "Build a bulk user import from CSV for admins"; no pain, need or consequence'
    )
    assert verdict.problem.startswith(
        'It describes a solution ("Build a bulk user import from CSV for admins")'
    )
    assert verdict.hint.startswith("Write it as: <who> can't")


def test_problem_that_is_a_feature_name_or_a_request_says_so() -> None:
    assert problem_not_solution("Dark mode").problem.startswith('It is a name ("Dark mode")')
    request = problem_not_solution("Customers are asking for SSO.")
    assert request.found == 'request "asking for SSO"; no pain, need or consequence'


# --------------------------------------------------------------------------- every input


@pytest.mark.parametrize("check", sorted(CHECKS))
@pytest.mark.parametrize("text", ["", "   ", "\n\n", "**", "- \n- ", "TBD"])
def test_empty_or_placeholder_text_fails(check: str, text: str) -> None:
    verdict = CHECKS[check](text)
    assert not verdict.ok
    assert verdict.problem and verdict.hint


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_only_the_first_max_chars_are_read(check: str) -> None:
    tail = {
        "hypothesis_form": "We believe saved carts will increase repeat orders by 10%.",
        "measurable": "Repeat orders from 10% to 12% by 2026-03-31.",
        "problem_not_solution": "Shoppers can't find their saved carts.",
    }[check]
    assert CHECKS[check](tail).ok
    assert not CHECKS[check]("filler " * (MAX_CHARS // 7 + 1) + "\n" + tail).ok


# Fragments that steer the parsers into their less travelled paths.
_CLAIMS = ("we believe ", "will ", "if we ", "then ", "by ", "from ", " to ", "can't ", "Build ")
_NUMBERS = ("10%", "$1,200", "v2 ", "Q3 ", "2026-03-31", "within 6 weeks", "#1", "→", "->")
_LABELS = ("we'll know when ", "measured by ", "Signal: ", "Change: ", "?", "(", ")", "…", "—")
_MARKUP = ("**", "- ", "\n", "; ", ". ", "[x|y]", "http://a.b/c", "İ", "ß", "\x00", "\ud800")
FRAGMENTS = st.sampled_from((*_CLAIMS, *_NUMBERS, *_LABELS, *_MARKUP))
TEXTS = st.one_of(st.text(max_size=500), st.lists(FRAGMENTS | st.text(max_size=5)).map("".join))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS)
def test_no_text_makes_a_check_raise(text: str) -> None:
    for check in CHECKS.values():
        verdict = check(text)
        assert isinstance(verdict, Verdict)
        assert verdict.found
        assert verdict.ok == (verdict.problem == "")
        if not verdict.ok:
            assert verdict.hint


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_pathological_texts_get_a_verdict(check: str) -> None:
    # Long runs of the words the patterns look for; the speed of these is measured by
    # `make bench`, here only that every one is judged and none raises.
    hostile = [
        "we will " * 500,
        "$1" * 2000,
        "from 1 " * 600,
        "if we " + "a " * 1900,
        "1,2,3," * 700,
        "in " * 1300,
        "(" * 4000,
    ]
    for text in hostile:
        verdict = CHECKS[check](text)
        assert verdict.found
        assert verdict.ok == (verdict.problem == "")
