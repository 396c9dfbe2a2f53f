"""The feature-factory health report: outcome versus output, per tenant, tracker and project."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from plugin.links import item_path
from plugin.reports.figures import (
    DAY,
    EpicFacts,
    Figures,
    HygieneFacts,
    Options,
    Period,
    Report,
    Tally,
    build_report,
    components,
)
from plugin.reports.queries import (
    Scope,
    item_titles,
    known_scopes,
    load_counts,
    load_epics,
    load_failing,
    load_fixes,
    refresh_hygiene,
)
from plugin.storage import Database

DEFAULT_WEEKS = 12
OFFENDERS = 10

__all__ = [
    "DEFAULT_WEEKS",
    "HealthReport",
    "Offender",
    "Options",
    "Period",
    "Scope",
    "default_period",
    "health_report",
    "parse_period",
]


@dataclass(frozen=True, slots=True)
class Offender:
    """An item the report names: failing longest, delivered without review, running too long."""

    kind: str
    """``failing``, ``unreviewed`` or ``large``."""
    tracker: str
    key: str
    title: str
    project: str
    days: float
    reason: str
    site: str = ""
    """The item's site, which its details link names."""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict with the item's details link."""
        return {
            "kind": self.kind,
            "tracker": self.tracker,
            "key": self.key,
            "title": self.title,
            "project": self.project,
            "days": round(self.days, 1),
            "reason": self.reason,
            "url": item_path(self.tracker, self.key, self.site),
        }


@dataclass
class HealthReport:
    """A computed report and what it was computed for."""

    scope: Scope
    report: Report
    generated_at: datetime
    offenders: list[Offender] = field(default_factory=list)

    @property
    def period(self) -> Period:
        """The period the figures cover."""
        return self.report.period

    @property
    def total(self) -> Figures:
        """The figures of the whole scope."""
        return self.report.total

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``GET /api/v1/reports/health``."""
        period = self.report.period
        data: dict[str, Any] = {
            "tenant": self.scope.tenant_id,
            "tracker": self.scope.tracker,
            "project": self.scope.project,
            "from": period.start.date().isoformat(),
            "to": (period.end - DAY).date().isoformat(),
            "generated_at": self.generated_at.isoformat(timespec="seconds"),
            "review_days": self.report.options.review_days,
        }
        data.update(self.total.to_dict())
        data["components"] = [c.to_dict() for c in self.total.components]
        data["weekly"] = [
            {"week": week.isoformat(), **figures.to_dict(hygiene=False)}
            for week, figures in self.report.weekly
        ]
        data["projects"] = [
            {"tenant": tenant, "tracker": tracker, "project": project, **figures.to_dict()}
            for (tenant, tracker, project), figures in sorted(self.report.scopes.items())
        ]
        data["offenders"] = [o.to_dict() for o in self.offenders]
        return data


def default_period(today: date, weeks: int = DEFAULT_WEEKS) -> Period:
    """The last ``weeks`` ISO weeks up to and including today."""
    monday = today - timedelta(days=today.weekday())
    return Period.of_dates(monday - timedelta(weeks=weeks - 1), today)


def parse_period(first: str | None, last: str | None, *, today: date) -> Period:
    """Read ``from``/``to`` dates (YYYY-MM-DD, both included); missing ends get defaults."""
    default = default_period(today)
    start = date.fromisoformat(first) if first else None
    end = date.fromisoformat(last) if last else None
    if start is None and end is None:
        return default
    if end is None:
        end = today
    if start is None:
        start = end - timedelta(weeks=DEFAULT_WEEKS) + DAY
    if end < start:
        raise ValueError("'to' is before 'from'")
    return Period.of_dates(start, end)


def health_report(
    database: Database,
    scope: Scope,
    period: Period,
    options: Options | None = None,
    *,
    now: datetime | None = None,
) -> HealthReport:
    """Fold new evaluations, then compute the report for one scope and period."""
    now = now or datetime.now(UTC)
    options = options or Options()
    with database.session() as session:
        refresh_hygiene(session, now=now)
    with database.session() as session:
        epics = load_epics(session, scope, period)
        fixes = load_fixes(session, scope, period)
        counts = load_counts(session, scope)
        failing = load_failing(session, scope, OFFENDERS)
        report = build_report(epics, fixes, period, options, now=now, counts=counts)
        if scope.project is None:
            # Scopes with items but nothing in this period still get a (quiet) row.
            for key in known_scopes(session, scope):
                report.scopes.setdefault(key, _empty(options))
        offenders = _offenders(epics, failing, report, now)
        titles = item_titles(session, (o[0] for o in offenders))
    named = []
    for item_id, kind, project, days, reason in offenders:
        tracker, item_key, title, site = titles.get(item_id, ("", "", "", ""))
        named.append(Offender(kind, tracker, item_key, title, project, days, reason, site))
    return HealthReport(scope, report, now, named)


def _empty(options: Options) -> Figures:
    figures = Figures(Tally(), open_violations=0, items_failing=0, waived=0)
    figures.components = components(figures, options)
    return figures


def _offenders(
    epics: list[EpicFacts], failing: list[HygieneFacts], report: Report, now: datetime
) -> list[tuple[int, str, str, float, str]]:
    """The worst items: (work item id, kind, project, days, reason), worst first per kind."""
    period, options = report.period, report.options
    window = timedelta(days=options.review_days)
    out = [
        (
            i.work_item_id,
            "failing",
            i.project,
            (now - i.first_fail_at) / DAY if i.first_fail_at else 0.0,
            f"{i.latest_violations} outcome rule(s) failing; first failed "
            f"{i.first_fail_at.date().isoformat() if i.first_fail_at else '?'}",
        )
        for i in failing
    ]
    unreviewed = heapq.nsmallest(
        OFFENDERS,
        (
            e
            for e in epics
            if e.done_at is not None
            and not e.canceled
            and period.start <= e.done_at < period.end
            and e.done_at + window <= now
            and not (e.outcome_review and e.reviewed_at and e.reviewed_at <= e.done_at + window)
        ),
        key=lambda e: e.done_at or now,
    )
    out += [
        (
            e.work_item_id,
            "unreviewed",
            e.project,
            (now - e.done_at) / DAY if e.done_at else 0.0,
            f"delivered {e.done_at.date().isoformat() if e.done_at else '?'}; no outcome review "
            f"within {options.review_days} days",
        )
        for e in unreviewed
    ]
    cutoff = min(now, period.end)
    large = heapq.nsmallest(
        OFFENDERS,
        (
            e
            for e in epics
            if e.started_at is not None
            and (e.done_at is None or e.done_at >= period.end)
            and (cutoff - e.started_at) / DAY > options.large_batch_days
        ),
        key=lambda e: e.started_at or now,
    )
    out += [
        (
            e.work_item_id,
            "large",
            e.project,
            (cutoff - e.started_at) / DAY if e.started_at else 0.0,
            f"in progress since {e.started_at.date().isoformat() if e.started_at else '?'}",
        )
        for e in large
    ]
    return out
