"""Every figure the report shows, against a workspace worked out by hand (SQLite and PostgreSQL).

The workspace is tests/support/health_data.py; the period is the two ISO weeks 2026-03-02 to
2026-03-15 and the report is read on 2026-04-10 with the default 30-day review window.

Epics in play (week 0 = 03-02..03-08, week 1 = 03-09..03-15):
- started in the period: SHOP-1, SHOP-2, SHOP-6 (week 0); SHOP-3, PAY-1, PAY-4 (week 1) = 6,
  lean-ready SHOP-1, SHOP-6, PAY-1 = 3, unknown SHOP-3 = 1.
- delivered: SHOP-4, SHOP-9 (week 0); SHOP-1, SHOP-3, PAY-1, PAY-4 (week 1) = 6; SHOP-6 was
  cancelled; SHOP-7 was done before the period.
- children done 40 + 0 + 4 + 2 + 1 + 3 = 50.
- reviewed within 30 days: SHOP-1 validated, SHOP-3 invalidated, PAY-1 inconclusive = 3;
  SHOP-9's review came after its window; PAY-4's window is still open (awaited) on 04-10.
- lead times 155, 61.5, 7, 2, 2, 3 days: median 5.0. SHOP-4 is large (155 days, 40 children).
- open at the end of week 0: SHOP-1, SHOP-2, SHOP-5 = 3; at the end: SHOP-2, SHOP-5 = 2;
  SHOP-5 has run more than 90 days at both ends: large batches 1 + 1 = 2.
Hygiene (live items only; SHOP-D1 is deleted):
- failing now: SHOP-2 (3 rules), SHOP-3 (1), SHOP-S1 (1): open_violations 5, items 3;
  waived now: SHOP-4 = 1.
- first fixes in the period: SHOP-1 03-01 10:00 -> 03-04 10:00 = 3.0 days (week 0),
  SHOP-3 02-01 -> 03-10 = 37.0 (week 1), PAY-1 03-09 -> 03-11 12:00 = 2.5 (week 1):
  median 3.0; week 1 median 19.75.
Score: measurement 3/5 = 60, review 3/(6-1) = 60, acknowledged failures 2/3 over a 20 %
target = 100, metric 4/5 = 80, small batches (8-2)/8 = 75, time to market 5 days = 100,
innovation 5/6 over a 60 % target = 100 -> (25*60 + 25*60 + 15*100 + 15*80 + 10*75 + 5*100 +
5*100) / 100 = 74.5.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from support.health_data import (
    EVALUATIONS_FIRST,
    EVALUATIONS_LATER,
    add_evaluations,
    at,
    load_workspace,
    postgres_schema,
)

from plugin.reports import HealthReport, Options, Period, Scope, health_report
from plugin.reports.render import as_csv, as_text, charts
from plugin.storage import Database, default_database_url

PERIOD = Period.of_dates(date(2026, 3, 2), date(2026, 3, 15))
NOW = at("2026-04-10")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        database = Database(default_database_url(str(tmp_path)))
        database.upgrade()
        yield database
        database.dispose()
        return
    with postgres_schema(request.getfixturevalue("postgres_server")) as url:
        database = Database(url)
        database.upgrade()
        yield database
        database.dispose()


@pytest.fixture
def report(database: Database) -> HealthReport:
    """The report after both batches of evaluations, each folded on its own."""
    with database.session() as session:
        ids = load_workspace(session)
        add_evaluations(session, ids, EVALUATIONS_FIRST)
    health_report(database, Scope(), PERIOD, now=NOW)
    with database.session() as session:
        add_evaluations(session, ids, EVALUATIONS_LATER)
    return health_report(database, Scope(), PERIOD, now=NOW)


def test_every_total_figure_matches_the_hand_count(report: HealthReport) -> None:
    data = report.to_dict()

    assert {name: data[name] for name in EXPECTED_TOTAL} == EXPECTED_TOTAL
    assert data["from"] == "2026-03-02"
    assert data["to"] == "2026-03-15"


EXPECTED_TOTAL = {
    "epics_started": 6,
    "epics_started_lean_ready": 3,
    "epics_started_lean_unknown": 1,
    "epics_delivered": 6,
    "epics_canceled": 1,
    "child_issues_done": 50,
    "epics_delivered_with_outcome_review": 3,
    "reviews_awaited": 1,
    "hypotheses_validated": 1,
    "hypotheses_invalidated": 1,
    "hypotheses_inconclusive": 1,
    "epics_delivered_with_metric": 4,
    "epics_delivered_new_value": 5,
    "epics_in_progress": 2,
    "large_batches": 2,
    "median_lead_time_days": 5.0,
    "violations_fixed": 3,
    "median_days_to_fix": 3.0,
    "open_violations": 5,
    "items_failing": 3,
    "waived": 1,
    "health_score": 74.5,
}


def test_every_component_of_the_score_is_shown(report: HealthReport) -> None:
    components = {c["name"]: c for c in report.to_dict()["components"]}

    assert {name: (c["weight"], c["value"], c["score"]) for name, c in components.items()} == {
        "measurement": (25, 0.6, 60.0),
        "outcome_review": (25, 0.6, 60.0),
        "acknowledged_failures": (15, 0.667, 100.0),
        "connection_to_metric": (15, 0.8, 80.0),
        "small_batches": (10, 0.75, 75.0),
        "time_to_market": (5, 5.0, 100.0),
        "ability_to_innovate": (5, 0.833, 100.0),
    }
    assert all(c["applies"] for c in components.values())
    assert "3/5" in components["measurement"]["explanation"]


def test_the_weekly_series_splits_the_period(report: HealthReport) -> None:
    weekly = report.to_dict()["weekly"]
    picked = [
        {
            name: week[name]
            for name in (
                "week",
                "epics_started",
                "epics_started_lean_ready",
                "epics_started_lean_unknown",
                "epics_delivered",
                "child_issues_done",
                "epics_delivered_with_outcome_review",
                "hypotheses_invalidated",
                "epics_in_progress",
                "large_batches",
                "violations_fixed",
                "median_days_to_fix",
                "health_score",
            )
        }
        for week in weekly
    ]

    # Week 0's score: measurement 2/3, review 0/2, no reviews to judge, metric 0/1, small
    # batches 3/5, lead time median(155, 61.5) = 108.25 days, innovation 2/2:
    # (25*66.67 + 0 + 0 + 10*60 + 5*47.83 + 5*100) / 85 = 35.4.
    assert picked == [
        {
            "week": "2026-03-02",
            "epics_started": 3,
            "epics_started_lean_ready": 2,
            "epics_started_lean_unknown": 0,
            "epics_delivered": 2,
            "child_issues_done": 40,
            "epics_delivered_with_outcome_review": 0,
            "hypotheses_invalidated": 0,
            "epics_in_progress": 3,
            "large_batches": 2,
            "violations_fixed": 1,
            "median_days_to_fix": 3.0,
            "health_score": 35.4,
        },
        {
            "week": "2026-03-09",
            "epics_started": 3,
            "epics_started_lean_ready": 1,
            "epics_started_lean_unknown": 1,
            "epics_delivered": 4,
            "child_issues_done": 10,
            "epics_delivered_with_outcome_review": 3,
            "hypotheses_invalidated": 1,
            "epics_in_progress": 2,
            "large_batches": 1,
            "violations_fixed": 2,
            "median_days_to_fix": 19.8,
            "health_score": weekly[1]["health_score"],
        },
    ]
    assert "open_violations" not in weekly[0]


def test_each_project_gets_its_own_figures(report: HealthReport) -> None:
    projects = {p["project"]: p for p in report.to_dict()["projects"]}

    assert set(projects) == {"SHOP", "PAY"}
    pay = projects["PAY"]
    # PAY: measurement 1/2, review 1/(2-1), 1 of 1 reviews admits a miss, metric 2/2,
    # no large batch, lead time 2.5 days, all new value:
    # (25*50 + 25*100 + 15*100 + 15*100 + 10*100 + 5*100 + 5*100) / 100 = 87.5.
    assert (pay["epics_started"], pay["epics_delivered"], pay["health_score"]) == (2, 2, 87.5)
    assert (pay["open_violations"], pay["violations_fixed"], pay["median_days_to_fix"]) == (
        0,
        1,
        2.5,
    )
    shop = projects["SHOP"]
    assert (shop["epics_started"], shop["epics_delivered"], shop["child_issues_done"]) == (4, 4, 46)
    assert (shop["open_violations"], shop["items_failing"], shop["waived"]) == (5, 3, 1)


def test_a_project_scope_reports_only_that_project(database: Database) -> None:
    with database.session() as session:
        ids = load_workspace(session)
        add_evaluations(session, ids, EVALUATIONS_FIRST)
        add_evaluations(session, ids, EVALUATIONS_LATER)

    pay = health_report(database, Scope(tracker="jira", project="PAY"), PERIOD, now=NOW)

    data = pay.to_dict()
    assert (data["epics_delivered"], data["health_score"], data["project"]) == (2, 87.5, "PAY")
    assert [p["project"] for p in data["projects"]] == ["PAY"]
    assert {o["key"] for o in data["offenders"]} == set()


def test_the_worst_offenders_link_to_their_items(report: HealthReport) -> None:
    offenders = [(o["kind"], o["key"], o["url"]) for o in report.to_dict()["offenders"]]

    on_site = "?site=https%3A%2F%2Facme.atlassian.net"
    assert offenders == [
        ("failing", "SHOP-3", f"/items/jira/SHOP-3{on_site}"),
        ("failing", "SHOP-S1", f"/items/jira/SHOP-S1{on_site}"),
        ("failing", "SHOP-2", f"/items/jira/SHOP-2{on_site}"),
        ("unreviewed", "SHOP-9", f"/items/jira/SHOP-9{on_site}"),
        ("unreviewed", "SHOP-4", f"/items/jira/SHOP-4{on_site}"),
        ("large", "SHOP-5", f"/items/jira/SHOP-5{on_site}"),
    ]
    assert report.offenders[-1].days == 135.0
    assert report.offenders[0].title == "Title of SHOP-3"


def test_a_longer_review_window_counts_the_late_review(database: Database) -> None:
    with database.session() as session:
        load_workspace(session)

    late = health_report(database, Scope(), PERIOD, Options(review_days=40), now=NOW)

    # SHOP-9 was reviewed 36 days after done; SHOP-4's 40-day window is still open on 04-10.
    data = late.to_dict()
    assert (data["epics_delivered_with_outcome_review"], data["hypotheses_validated"]) == (4, 2)
    assert data["reviews_awaited"] == 2


def test_text_and_csv_carry_the_same_figures(report: HealthReport) -> None:
    text = as_text(report)
    csv_lines = as_csv(report).splitlines()

    assert "Health score: 74.5 / 100" in text
    assert "  epics_delivered                          6" in text
    assert csv_lines[0].startswith("week,epics_started,epics_started_lean_ready")
    assert csv_lines[1].startswith("2026-03-02,3,2,0,2,40,0,0,3,2,1,3.0,35.4")
    assert csv_lines[-1].startswith("total,6,3,1,6,50,3,1,2,2,3,3.0,74.5")


def test_charts_are_inline_svg_with_a_point_per_week(report: HealthReport) -> None:
    rendered = charts(report)

    assert len(rendered) == 3
    assert all("<svg" in chart and "<script" not in chart for chart in rendered)
    assert rendered[0].count("<circle") == 2 * 4
    assert "epics delivered 03-09: 4" in rendered[0]
