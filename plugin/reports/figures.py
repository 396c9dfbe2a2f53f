"""The health report's figures: pure functions over epic timelines and evaluation roll-ups."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
ScopeKey = tuple[int, str, str]
"""(tenant id, tracker, project)."""


class EpicFacts(NamedTuple):
    """What the report knows about one epic's life."""

    work_item_id: int
    tenant_id: int
    tracker: str
    project: str
    key: str
    started_at: datetime | None = None
    done_at: datetime | None = None
    canceled: bool = False
    lean_ready_at_start: bool | None = None
    metric_at_done: bool | None = None
    outcome_review: str | None = None
    reviewed_at: datetime | None = None
    child_issues_done: int = 0
    new_value: bool = True


class HygieneCount(NamedTuple):
    """How many live items of one scope have a latest verdict, and their failing rules."""

    tenant_id: int
    tracker: str
    project: str
    status: str
    items: int
    violations: int


class HygieneFacts(NamedTuple):
    """One live item's evaluation history, folded: first failure, first fix, latest verdict."""

    work_item_id: int
    tenant_id: int
    tracker: str
    project: str
    key: str
    first_fail_at: datetime | None
    first_fix_at: datetime | None
    latest_status: str
    latest_violations: int


@dataclass(frozen=True, slots=True)
class Options:
    """The report's thresholds; docs/health-report.md explains each."""

    review_days: int = 30
    """Days after done within which an outcome review counts."""
    large_batch_days: int = 90
    """An epic in progress longer than this (or delivered after longer) is a large batch."""
    large_batch_children: int = 30
    """An epic with more child issues done than this is a large batch."""
    lead_time_good_days: float = 30.0
    lead_time_bad_days: float = 180.0
    acknowledged_failure_target: float = 0.2
    """The share of reviews that admit a miss (invalidated or inconclusive) that scores full."""
    innovation_target: float = 0.6
    """The share of delivered epics that are new value that scores full."""


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open span of time [start, end), reported in ISO weeks that start on Monday."""

    start: datetime
    end: datetime
    first_week: datetime = field(init=False, repr=False, compare=False)
    """Midnight of the Monday of the week the period starts in."""

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("a period ends after it starts")
        day = self.start.replace(hour=0, minute=0, second=0, microsecond=0)
        object.__setattr__(self, "first_week", day - timedelta(days=day.weekday()))

    @classmethod
    def of_dates(cls, first: date, last: date) -> Period:
        """The period from the start of ``first`` to the end of ``last`` (both UTC days)."""
        start = datetime(first.year, first.month, first.day, tzinfo=UTC)
        end = datetime(last.year, last.month, last.day, tzinfo=UTC) + DAY
        return cls(start, end)

    @property
    def weeks(self) -> int:
        """How many weeks (whole or cut by the period) the period touches."""
        return int((self.end - self.first_week - timedelta(microseconds=1)) // WEEK) + 1

    def week_of(self, moment: datetime) -> int | None:
        """The index of the week ``moment`` falls in, or None outside the period."""
        if moment < self.start or moment >= self.end:
            return None
        return int((moment - self.first_week) // WEEK)

    def week_span(self, index: int) -> tuple[datetime, datetime]:
        """The part of week ``index`` inside the period."""
        begin = self.first_week + index * WEEK
        return max(begin, self.start), min(begin + WEEK, self.end)


@dataclass
class Tally:
    """Counts for one scope and one span; periods add up from their weeks."""

    epics_started: int = 0
    epics_started_lean_ready: int = 0
    epics_started_lean_unknown: int = 0
    epics_delivered: int = 0
    epics_canceled: int = 0
    child_issues_done: int = 0
    epics_delivered_with_outcome_review: int = 0
    reviews_awaited: int = 0
    hypotheses_validated: int = 0
    hypotheses_invalidated: int = 0
    hypotheses_inconclusive: int = 0
    delivered_with_metric: int = 0
    delivered_metric_known: int = 0
    delivered_new_value: int = 0
    delivered_large: int = 0
    lead_times: list[float] = field(default_factory=list)
    fix_days: list[float] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        """Add another tally's counts to this one."""
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.lead_times.extend(other.lead_times)
        self.fix_days.extend(other.fix_days)


_COUNTS = tuple(
    name for name in Tally.__dataclass_fields__ if name not in ("lead_times", "fix_days")
)


@dataclass(frozen=True, slots=True)
class Component:
    """One part of the health score, with its raw value and what it scores."""

    name: str
    sign: str
    weight: int
    value: float | None
    score: float | None
    explanation: str

    @property
    def applies(self) -> bool:
        """Whether the data allows this component (else it is left out of the score)."""
        return self.score is not None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {
            "name": self.name,
            "sign": self.sign,
            "weight": self.weight,
            "value": _round(self.value, 3),
            "score": _round(self.score, 1),
            "applies": self.applies,
            "explanation": self.explanation,
        }


@dataclass
class Figures:
    """Every figure of one scope over one span, as the report shows it."""

    tally: Tally
    in_progress: int = 0
    large_in_progress: int = 0
    open_violations: int | None = None
    items_failing: int | None = None
    waived: int | None = None
    components: list[Component] = field(default_factory=list)

    @property
    def health_score(self) -> float | None:
        """0..100: the weighted mean of the components that apply (None when none does)."""
        applicable = [c for c in self.components if c.score is not None]
        weight = sum(c.weight for c in applicable)
        if not weight:
            return None
        return round(sum(c.weight * (c.score or 0.0) for c in applicable) / weight, 1)

    @property
    def large_batches(self) -> int:
        """Delivered epics that were large plus epics still running past the limit."""
        return self.tally.delivered_large + self.large_in_progress

    @property
    def median_lead_time_days(self) -> float | None:
        """Median days from start to done of the epics delivered."""
        return _median(self.tally.lead_times)

    @property
    def median_days_to_fix(self) -> float | None:
        """Median days from an item's first failure to its first pass after it."""
        return _median(self.tally.fix_days)

    def to_dict(self, *, hygiene: bool = True) -> dict[str, Any]:
        """Return the figures by their documented names."""
        t = self.tally
        data: dict[str, Any] = {
            "epics_started": t.epics_started,
            "epics_started_lean_ready": t.epics_started_lean_ready,
            "epics_started_lean_unknown": t.epics_started_lean_unknown,
            "epics_delivered": t.epics_delivered,
            "epics_canceled": t.epics_canceled,
            "child_issues_done": t.child_issues_done,
            "epics_delivered_with_outcome_review": t.epics_delivered_with_outcome_review,
            "reviews_awaited": t.reviews_awaited,
            "hypotheses_validated": t.hypotheses_validated,
            "hypotheses_invalidated": t.hypotheses_invalidated,
            "hypotheses_inconclusive": t.hypotheses_inconclusive,
            "epics_delivered_with_metric": t.delivered_with_metric,
            "epics_delivered_new_value": t.delivered_new_value,
            "epics_in_progress": self.in_progress,
            "large_batches": self.large_batches,
            "median_lead_time_days": _round(self.median_lead_time_days, 1),
            "violations_fixed": len(t.fix_days),
            "median_days_to_fix": _round(self.median_days_to_fix, 1),
        }
        if hygiene:
            data["open_violations"] = self.open_violations
            data["items_failing"] = self.items_failing
            data["waived"] = self.waived
        data["health_score"] = self.health_score
        return data


@dataclass
class Report:
    """The figures for a period, per scope and in total, with a weekly series of the total."""

    period: Period
    options: Options
    total: Figures
    weekly: list[tuple[date, Figures]]
    scopes: dict[ScopeKey, Figures]


def build_report(
    epics: Iterable[EpicFacts],
    fixes: Iterable[HygieneFacts],
    period: Period,
    options: Options,
    *,
    now: datetime,
    counts: Iterable[HygieneCount] = (),
) -> Report:
    """Compute every figure of the report in one pass over the facts."""
    weeks = period.weeks
    tallies: dict[ScopeKey, list[Tally]] = {}
    opens: dict[ScopeKey, list[int]] = {}
    larges: dict[ScopeKey, list[int]] = {}

    def scope_of(key: ScopeKey) -> list[Tally]:
        found = tallies.get(key)
        if found is None:
            found = tallies[key] = [Tally() for _ in range(weeks)]
            # Running counts as differences: +1 where an epic opens, -1 where it closes.
            opens[key] = [0] * (weeks + 1)
            larges[key] = [0] * (weeks + 1)
        return found

    review_window = timedelta(days=options.review_days)
    large_after = timedelta(days=options.large_batch_days)
    # The loops below run once per epic of a large workspace: the period's bounds live in
    # locals and week indexes are computed inline.
    start, end, origin = period.start, period.end, period.first_week

    def mark_open(marks: list[int], opened: datetime, closed: datetime | None) -> None:
        # Open at the end of week i: opened before that end and not closed by it.
        if opened >= end or (closed is not None and closed < start):
            return
        first = 0 if opened < start else (opened - origin) // WEEK
        if closed is None or closed >= end:
            last = weeks
        else:
            last = 0 if closed < start else (closed - origin) // WEEK
        if last > first:
            marks[first] += 1
            marks[last] -= 1

    for epic in epics:
        key = (epic.tenant_id, epic.tracker, epic.project)
        weekly = tallies.get(key) or scope_of(key)
        started_at, done_at = epic.started_at, epic.done_at
        if started_at is not None:
            if start <= started_at < end:
                tally = weekly[(started_at - origin) // WEEK]
                tally.epics_started += 1
                if epic.lean_ready_at_start is None:
                    tally.epics_started_lean_unknown += 1
                elif epic.lean_ready_at_start:
                    tally.epics_started_lean_ready += 1
            mark_open(opens[key], started_at, done_at)
            mark_open(larges[key], started_at + large_after, done_at)
        if done_at is None or not start <= done_at < end:
            continue
        tally = weekly[(done_at - origin) // WEEK]
        if epic.canceled:
            tally.epics_canceled += 1
            continue
        _delivered(tally, epic, options, review_window, now)

    for item in fixes:
        fixed, failed = item.first_fix_at, item.first_fail_at
        if fixed is None or failed is None or not start <= fixed < end:
            continue
        key = (item.tenant_id, item.tracker, item.project)
        weekly = tallies.get(key) or scope_of(key)
        weekly[(fixed - origin) // WEEK].fix_days.append((fixed - failed) / DAY)

    total_weeks = [Tally() for _ in range(weeks)]
    total_open = [0] * (weeks + 1)
    total_large = [0] * (weeks + 1)
    scopes: dict[ScopeKey, Figures] = {}
    for key, weekly in tallies.items():
        summed = Tally()
        for index, tally in enumerate(weekly):
            summed.add(tally)
            total_weeks[index].add(tally)
        for index in range(weeks + 1):
            total_open[index] += opens[key][index]
            total_large[index] += larges[key][index]
        scopes[key] = Figures(
            summed,
            in_progress=_running(opens[key])[-1],
            large_in_progress=_running(larges[key])[-1],
        )
    total = Tally()
    for tally in total_weeks:
        total.add(tally)
    running_open, running_large = _running(total_open), _running(total_large)
    totals = Figures(total, in_progress=running_open[-1], large_in_progress=running_large[-1])
    _hygiene(totals, scopes, counts)
    weekly_figures = [
        (
            period.week_span(index)[0].date(),
            Figures(tally, in_progress=running_open[index], large_in_progress=running_large[index]),
        )
        for index, tally in enumerate(total_weeks)
    ]
    for figures in [totals, *scopes.values(), *(f for _, f in weekly_figures)]:
        figures.components = components(figures, options)
    return Report(period, options, totals, weekly_figures, scopes)


def _delivered(
    tally: Tally, epic: EpicFacts, options: Options, window: timedelta, now: datetime
) -> None:
    assert epic.done_at is not None
    tally.epics_delivered += 1
    tally.child_issues_done += epic.child_issues_done
    if epic.new_value:
        tally.delivered_new_value += 1
    if epic.metric_at_done is not None:
        tally.delivered_metric_known += 1
        if epic.metric_at_done:
            tally.delivered_with_metric += 1
    lead_days = (epic.done_at - epic.started_at) / DAY if epic.started_at else None
    if lead_days is not None:
        tally.lead_times.append(lead_days)
    if (lead_days is not None and lead_days > options.large_batch_days) or (
        epic.child_issues_done > options.large_batch_children
    ):
        tally.delivered_large += 1
    deadline = epic.done_at + window
    if epic.outcome_review and epic.reviewed_at is not None and epic.reviewed_at <= deadline:
        tally.epics_delivered_with_outcome_review += 1
        if epic.outcome_review == "validated":
            tally.hypotheses_validated += 1
        elif epic.outcome_review == "invalidated":
            tally.hypotheses_invalidated += 1
        else:
            tally.hypotheses_inconclusive += 1
    elif deadline > now:
        tally.reviews_awaited += 1


def _running(marks: Sequence[int]) -> list[int]:
    out: list[int] = []
    current = 0
    for mark in marks[:-1]:
        current += mark
        out.append(current)
    return out or [0]


def _hygiene(
    totals: Figures, scopes: dict[ScopeKey, Figures], counts: Iterable[HygieneCount]
) -> None:
    totals.open_violations = totals.items_failing = totals.waived = 0
    for figures in scopes.values():
        figures.open_violations = figures.items_failing = figures.waived = 0
    for count in counts:
        key = (count.tenant_id, count.tracker, count.project)
        scoped = scopes.get(key)
        if scoped is None:
            scoped = scopes[key] = Figures(Tally(), open_violations=0, items_failing=0, waived=0)
        for target in (totals, scoped):
            if count.status == "fail":
                target.items_failing = (target.items_failing or 0) + count.items
                target.open_violations = (target.open_violations or 0) + count.violations
            elif count.status == "waived":
                target.waived = (target.waived or 0) + count.items


def components(figures: Figures, options: Options) -> list[Component]:
    """Score the feature-factory signs the data can show; see docs/health-report.md."""
    t = figures.tally
    started_known = t.epics_started - t.epics_started_lean_unknown
    reviewable = t.epics_delivered - t.reviews_awaited
    reviews = t.hypotheses_validated + t.hypotheses_invalidated + t.hypotheses_inconclusive
    batches = t.epics_delivered + figures.in_progress
    lead = figures.median_lead_time_days
    out = [
        _share(
            "measurement",
            "1 no measurement",
            25,
            t.epics_started_lean_ready,
            started_known,
            "epics started with hypothesis, success metric and customer problem in place",
        ),
        _share(
            "outcome_review",
            "6 no retros on expected versus actual benefit",
            25,
            t.epics_delivered_with_outcome_review,
            reviewable,
            f"delivered epics whose outcome was reviewed within {options.review_days} days",
        ),
        _target(
            "acknowledged_failures",
            "3 success theatre, 4 no acknowledged failures",
            15,
            t.hypotheses_invalidated + t.hypotheses_inconclusive,
            reviews,
            options.acknowledged_failure_target,
            "reviews that admit a miss (invalidated or inconclusive)",
        ),
        _share(
            "connection_to_metric",
            "5 no connection to core metrics",
            15,
            t.delivered_with_metric,
            t.delivered_metric_known,
            "delivered epics that named a success metric when they were done",
        ),
        _share(
            "small_batches",
            "10 large batches",
            10,
            batches - figures.large_batches,
            batches,
            f"epics delivered or in progress that are not large (over "
            f"{options.large_batch_days} days or {options.large_batch_children} child issues)",
        ),
        Component(
            "time_to_market",
            "EBM time to market",
            5,
            lead,
            None if lead is None else 100.0 * _falling(lead, options),
            f"median lead time in days: full score up to {options.lead_time_good_days:g}, "
            f"none from {options.lead_time_bad_days:g}",
        ),
        _target(
            "ability_to_innovate",
            "EBM ability to innovate",
            5,
            t.delivered_new_value,
            t.epics_delivered,
            options.innovation_target,
            "delivered epics that are new value rather than maintenance",
        ),
    ]
    return out


def _share(name: str, sign: str, weight: int, part: int, whole: int, what: str) -> Component:
    if whole <= 0:
        return Component(name, sign, weight, None, None, f"Share of {what}: no data.")
    value = part / whole
    return Component(name, sign, weight, value, 100.0 * value, f"Share of {what}: {part}/{whole}.")


def _target(
    name: str, sign: str, weight: int, part: int, whole: int, target: float, what: str
) -> Component:
    if whole <= 0:
        return Component(name, sign, weight, None, None, f"Share of {what}: no data.")
    value = part / whole
    score = 100.0 * min(1.0, value / target)
    return Component(
        name,
        sign,
        weight,
        value,
        score,
        f"Share of {what}: {part}/{whole}; {target:.0%} or more scores full.",
    )


def _falling(days: float, options: Options) -> float:
    good, bad = options.lead_time_good_days, options.lead_time_bad_days
    if days <= good:
        return 1.0
    if days >= bad:
        return 0.0
    return (bad - days) / (bad - good)


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
