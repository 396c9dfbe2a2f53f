"""Epic timelines from tracker history: start, done, readiness at start, the outcome review."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from typing import Any

from plugin.mappers._json import as_list, as_map, nodes_of, text, text_in, timestamp
from rules import Evaluation, RuleSet, Status, StatusCategory, WorkItem, evaluate
from rules.model import Section
from rules.naming import names_match
from rules.sections import parse_description

OUTCOME_NAMES = ("Outcome", "Outcome review", "Result", "Learnings")
"""Headings and custom fields that record what a delivered epic's bet turned out to be."""
MAINTENANCE_LABELS = frozenset(
    {
        "maintenance",
        "tech-debt",
        "tech debt",
        "technical debt",
        "ktlo",
        "bug",
        "bugfix",
        "chore",
        "refactor",
        "refactoring",
        "infrastructure",
    }
)
"""Labels that mark an epic as keeping the lights on rather than new value."""
CANCELED_WORDS = frozenset(
    {"won't do", "won't fix", "wont do", "cancelled", "canceled", "duplicate", "declined"}
)

# The order matters: "not validated" and "invalidated" contain "validated".
_VERDICTS = (
    ("invalidated", re.compile(r"\b(invalidated|not validated|disproved|refuted|falsified)\b")),
    ("inconclusive", re.compile(r"\b(inconclusive|unclear|mixed results?|no clear)\b")),
    ("validated", re.compile(r"\b(validated|confirmed|proved|proven)\b")),
)
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_DAY_MONTH_YEAR = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+{_MONTH}\s+(\d{{4}})\b", re.I)
_MONTH_DAY_YEAR = re.compile(rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I)


@dataclass(frozen=True, slots=True)
class Timeline:
    """An epic's life as the report needs it; ``None`` means not known."""

    created_at: datetime | None = None
    started_at: datetime | None = None
    done_at: datetime | None = None
    canceled: bool = False
    lean_ready_at_start: bool | None = None
    lean_ready_note: str = ""
    metric_at_done: bool | None = None
    outcome_review: str | None = None
    reviewed_at: datetime | None = None
    child_issues_done: int = 0
    new_value: bool = True
    last_status_category: str | None = None

    def values(self) -> dict[str, Any]:
        """Return the columns of ``epic_timelines`` this timeline fills."""
        return {
            "created_at": self.created_at,
            "started_at": self.started_at,
            "done_at": self.done_at,
            "canceled": self.canceled,
            "lean_ready_at_start": self.lean_ready_at_start,
            "lean_ready_note": self.lean_ready_note,
            "metric_at_done": self.metric_at_done,
            "outcome_review": self.outcome_review,
            "reviewed_at": self.reviewed_at,
            "child_issues_done": self.child_issues_done,
            "new_value": self.new_value,
            "last_status_category": self.last_status_category,
        }


# Reading an item -------------------------------------------------------------------------------


def verdict(text_: str) -> str | None:
    """Classify a review text as validated, invalidated or inconclusive (None: no verdict)."""
    folded = " ".join(text_.casefold().split())
    for name, pattern in _VERDICTS:
        if pattern.search(folded):
            return name
    return None


def review_of(sections: Sequence[Section], fields: Mapping[str, str]) -> str | None:
    """Return the verdict an ``Outcome``/``Result``/``Learnings`` section or field records."""
    for name, value in fields.items():
        if any(names_match(name, wanted) for wanted in OUTCOME_NAMES):
            found = verdict(value)
            if found:
                return found
    for section in sections:
        if any(names_match(section.heading, wanted) for wanted in OUTCOME_NAMES):
            found = verdict(section.body) or verdict(section.heading)
            if found:
                return found
    return None


def found_fields(evaluation: Evaluation) -> set[str]:
    """The outcome fields found on the item, whether or not their quality checks pass."""
    return {
        node.field or node.name
        for node in evaluation.tree.walk()
        if node.kind == "field" and (node.status is Status.PASS or node.children)
    }


def lean_ready(evaluation: Evaluation) -> bool:
    """Tell whether no visible rule misses an outcome field (quality warnings aside)."""
    for rule in evaluation.failing_rules():
        for node in rule.children:
            if node.kind == "field" and node.status is Status.FAIL and not node.children:
                return False
    return True


def metric_date(item: WorkItem, ruleset: RuleSet) -> date | None:
    """The latest date written in the item's success metric (when it will be read), if any."""
    outcome = ruleset.fields.get("success_metric")
    fields = outcome.custom_fields if outcome is not None else ("Success metric",)
    headings = outcome.headings if outcome is not None else ("Success metric",)
    texts = [v for k, v in item.fields.items() if any(names_match(k, n) for n in fields)]
    texts += [s.body for s in item.sections if any(names_match(s.heading, n) for n in headings)]
    found = [day for chunk in texts for day in dates_in(chunk)]
    return max(found) if found else None


def dates_in(text_: str) -> list[date]:
    """Every calendar date written as 2026-03-31, 31 March 2026 or March 31, 2026."""
    out: list[date] = []
    for match in _ISO_DATE.finditer(text_):
        out += _date(int(match[1]), int(match[2]), int(match[3]))
    for match in _DAY_MONTH_YEAR.finditer(text_):
        out += _date(int(match[3]), _MONTHS[match[2].casefold()], int(match[1]))
    for match in _MONTH_DAY_YEAR.finditer(text_):
        out += _date(int(match[3]), _MONTHS[match[1].casefold()], int(match[2]))
    return out


def _date(year: int, month: int, day: int) -> list[date]:
    try:
        return [date(year, month, day)]
    except ValueError:
        return []


def start_of(day: date) -> datetime:
    """Midnight UTC of a day."""
    return datetime.combine(day, time(0), tzinfo=UTC)


def is_new_value(item: WorkItem) -> bool:
    """False for maintenance work, told by its labels."""
    return not any(label.casefold() in MAINTENANCE_LABELS for label in item.labels)


# Jira ------------------------------------------------------------------------------------------


def jira_timeline(
    raw: Mapping[str, Any],
    item: WorkItem,
    ruleset: RuleSet,
    *,
    histories: Sequence[Mapping[str, Any]],
    status_categories: Mapping[str, str],
    child_issues_done: int = 0,
    current: Evaluation | None = None,
) -> Timeline:
    """Build a Jira epic's timeline by replaying its changelog (``current``: the item's verdict)."""
    fields = as_map(raw.get("fields"))
    ordered = sorted(
        (h for h in histories if timestamp(h.get("created")) is not None),
        key=lambda h: timestamp(h.get("created")) or datetime.min.replace(tzinfo=UTC),
    )
    created = _utc(item.created)
    started, done = _jira_status_times(ordered, status_categories)
    category = item.status_category
    if started is None and category in (StatusCategory.IN_PROGRESS, StatusCategory.DONE):
        # No status change in the changelog: the epic was created in this status.
        started = created
    if category is StatusCategory.DONE:
        done = done or _utc(timestamp(fields.get("resolutiondate"))) or started
    else:
        done = None
    resolution = text_in(fields, "resolution", "name").casefold()
    canceled = done is not None and (
        resolution in CANCELED_WORDS or item.status.casefold() in CANCELED_WORDS
    )
    ready, note = None, "not started"
    if started is not None:
        ready, note = _jira_ready_at(item, ruleset, ordered, started, current)
    review, reviewed_at = _jira_review(item, ordered)
    at_done = None
    if done is not None:
        at_done = "success_metric" in found_fields(
            _evaluate_at(item, ruleset, ordered, done, StatusCategory.DONE, current)[0]
        )
    return Timeline(
        created_at=created,
        started_at=started,
        done_at=done,
        canceled=canceled,
        lean_ready_at_start=ready,
        lean_ready_note=note,
        metric_at_done=at_done,
        outcome_review=review,
        reviewed_at=reviewed_at,
        child_issues_done=child_issues_done,
        new_value=is_new_value(item),
        last_status_category=category.value if category else None,
    )


def _jira_status_times(
    histories: Sequence[Mapping[str, Any]], categories: Mapping[str, str]
) -> tuple[datetime | None, datetime | None]:
    started: datetime | None = None
    done: datetime | None = None
    for history in histories:
        when = _utc(timestamp(history.get("created")))
        for change in _items(history):
            if text(change.get("field")).casefold() != "status":
                continue
            to_category = categories.get(text(change.get("to"))) or _category_by_name(
                text(change.get("toString"))
            )
            if to_category in ("indeterminate", "done") and started is None:
                started = when
            # The last move into done counts: a reopened epic is delivered when it closes again.
            done = when if to_category == "done" else None
    return started, done


def _category_by_name(name: str) -> str:
    folded = " ".join(name.split()).casefold()
    if folded in ("done", "closed", "resolved"):
        return "done"
    if folded in ("in progress", "in review"):
        return "indeterminate"
    return "new"


def _jira_ready_at(
    item: WorkItem,
    ruleset: RuleSet,
    histories: Sequence[Mapping[str, Any]],
    started: datetime,
    current: Evaluation | None,
) -> tuple[bool | None, str]:
    evaluation, lost_links = _evaluate_at(
        item, ruleset, histories, started, StatusCategory.IN_PROGRESS, current
    )
    ready = lean_ready(evaluation)
    if not ready and lost_links:
        # A link removed since then may have been the missing hypothesis or idea; the
        # changelog names its target but not the target's type, so this cannot be told.
        return None, "a link removed after the start cannot be replayed"
    return ready, "replayed from the changelog"


def _evaluate_at(
    item: WorkItem,
    ruleset: RuleSet,
    histories: Sequence[Mapping[str, Any]],
    moment: datetime,
    category: StatusCategory,
    current: Evaluation | None,
) -> tuple[Evaluation, bool]:
    """The verdict the item had at ``moment``; True when a removed link had to be guessed."""
    # Most epics' text does not change after they start or finish: their current verdict is
    # the one they had then, and evaluating again would only cost time (waivers aside, whose
    # expiry depends on the day).
    changed = any(
        _content_change(change)
        for history in histories
        if (when := _utc(timestamp(history.get("created")))) is not None and when > moment
        for change in _items(history)
    )
    status_matters = any(rule.when.status_categories for rule in ruleset.rules)
    if (
        not changed
        and current is not None
        and (item.status_category is category or not status_matters)
        and not ruleset.waivers
    ):
        return current, False
    state, lost_links = _jira_state_at(item, histories, moment, category)
    return evaluate(state, ruleset, on=moment.date()), lost_links


def _content_change(change: Mapping[str, Any]) -> bool:
    name = text(change.get("field")).casefold()
    return name in ("description", "link") or text(change.get("fieldtype")) == "custom"


def _jira_state_at(
    item: WorkItem,
    histories: Sequence[Mapping[str, Any]],
    moment: datetime,
    category: StatusCategory,
) -> tuple[WorkItem, bool]:
    """Undo every change made after ``moment``; True when a removed link had to be guessed."""
    description: str | None = None
    fields = dict(item.fields)
    links = list(item.links)
    lost_links = False
    for history in reversed(histories):
        when = _utc(timestamp(history.get("created")))
        if when is None or when <= moment:
            break
        for change in _items(history):
            name = text(change.get("field"))
            kind = text(change.get("fieldtype"))
            if name.casefold() == "description":
                description = text(change.get("fromString"))
            elif kind == "custom":
                before = text(change.get("fromString"))
                if before:
                    fields[name] = before
                else:
                    fields.pop(name, None)
            elif name.casefold() == "link":
                added, removed = text(change.get("to")), text(change.get("from"))
                if added:
                    links = [link for link in links if link.target_key != added]
                if removed:
                    lost_links = True
    state = replace(item, fields=fields, links=tuple(links), status_category=category)
    if description is not None:
        flat, sections = parse_description(description, "wiki")
        state = replace(state, description=flat, sections=sections)
    return state, lost_links


def _jira_review(
    item: WorkItem, histories: Sequence[Mapping[str, Any]]
) -> tuple[str | None, datetime | None]:
    review = review_of(item.sections, item.fields)
    if review is None:
        return None, None
    # Walk back through the changes to the review's fields and find the latest one that
    # brought the review in: before it there was none, after it there was.
    sections = item.sections
    fields = dict(item.fields)
    for history in reversed(histories):
        touched = False
        for change in _items(history):
            name = text(change.get("field"))
            if name.casefold() == "description":
                sections = parse_description(text(change.get("fromString")), "wiki")[1]
                touched = True
            elif text(change.get("fieldtype")) == "custom" and any(
                names_match(name, wanted) for wanted in OUTCOME_NAMES
            ):
                before = text(change.get("fromString"))
                if before:
                    fields[name] = before
                else:
                    fields.pop(name, None)
                touched = True
        if touched and review_of(sections, fields) is None:
            return review, _utc(timestamp(history.get("created")))
    return review, _utc(item.created)


def _items(history: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [entry for entry in as_list(history.get("items")) if isinstance(entry, Mapping)]


# Linear ----------------------------------------------------------------------------------------


def linear_issue_timeline(
    node: Mapping[str, Any],
    item: WorkItem,
    ruleset: RuleSet,
    *,
    history: Sequence[Mapping[str, Any]],
    current: Evaluation | None = None,
) -> Timeline:
    """Build a Linear epic issue's timeline from its state history and timestamps."""
    created = _utc(item.created)
    started = _utc(timestamp(node.get("startedAt")))
    state_moves = sorted(
        (h for h in history if as_map(h.get("toState")).get("type")),
        key=lambda h: timestamp(h.get("createdAt")) or datetime.min.replace(tzinfo=UTC),
    )
    if started is None:
        started = next(
            (
                _utc(timestamp(h.get("createdAt")))
                for h in state_moves
                if text_in(h, "toState", "type") in ("started", "completed", "canceled")
            ),
            None,
        )
    category = item.status_category
    if started is None and category in (StatusCategory.IN_PROGRESS, StatusCategory.DONE):
        started = created
    completed = _utc(timestamp(node.get("completedAt")))
    canceled_at = _utc(timestamp(node.get("canceledAt")))
    done = (completed or canceled_at) if category is StatusCategory.DONE else None
    edits = sorted(
        t
        for h in history
        if h.get("updatedDescription") and (t := _utc(timestamp(h.get("createdAt")))) is not None
    )
    evaluation = current or evaluate(item, ruleset)
    ready, note = _unchanged_since(started, edits[-1] if edits else None, evaluation, "description")
    review = review_of(item.sections, item.fields)
    # The current text was written at the last edit, so the review was there by then at the
    # latest; with no edit at all it was there from the start.
    reviewed_at = (edits[-1] if edits else created) if review else None
    return Timeline(
        created_at=created,
        started_at=started,
        done_at=done,
        canceled=done is not None and canceled_at is not None and completed is None,
        lean_ready_at_start=ready,
        lean_ready_note=note,
        metric_at_done=_metric_now(evaluation, done, edits),
        outcome_review=review,
        reviewed_at=reviewed_at,
        child_issues_done=len(nodes_of(node.get("children"))),
        new_value=is_new_value(item),
        last_status_category=category.value if category else None,
    )


def linear_project_timeline(
    node: Mapping[str, Any],
    item: WorkItem,
    ruleset: RuleSet,
    *,
    updates: Sequence[Mapping[str, Any]],
    current: Evaluation | None = None,
) -> Timeline:
    """Build a Linear project's timeline from its timestamps and project updates."""
    created = _utc(item.created)
    category = item.status_category
    started = _utc(timestamp(node.get("startedAt")))
    if started is None and category in (StatusCategory.IN_PROGRESS, StatusCategory.DONE):
        started = created
    completed = _utc(timestamp(node.get("completedAt")))
    canceled_at = _utc(timestamp(node.get("canceledAt")))
    done = (completed or canceled_at) if category is StatusCategory.DONE else None
    content_edited = _utc(timestamp(text_in(node, "documentContent", "updatedAt") or None))
    evaluation = current or evaluate(item, ruleset)
    ready, note = _unchanged_since(started, content_edited, evaluation, "content")
    review, reviewed_at = None, None
    for update in sorted(
        updates, key=lambda u: timestamp(u.get("createdAt")) or datetime.min.replace(tzinfo=UTC)
    ):
        when = _utc(timestamp(update.get("createdAt")))
        if when is None or (started is not None and when < started):
            continue
        sections = parse_description(text(update.get("body")), "markdown")[1]
        found = review_of(sections, {})
        if found:
            review, reviewed_at = found, when
            break
    if review is None:
        review = review_of(item.sections, item.fields)
        reviewed_at = (content_edited or created) if review else None
    history = as_list(node.get("completedIssueCountHistory"))
    children = int(history[-1]) if history and isinstance(history[-1], int | float) else 0
    return Timeline(
        created_at=created,
        started_at=started,
        done_at=done,
        canceled=done is not None and canceled_at is not None and completed is None,
        lean_ready_at_start=ready,
        lean_ready_note=note,
        metric_at_done=_metric_now(evaluation, done, [content_edited] if content_edited else []),
        outcome_review=review,
        reviewed_at=reviewed_at,
        child_issues_done=children,
        new_value=is_new_value(item),
        last_status_category=category.value if category else None,
    )


def _unchanged_since(
    started: datetime | None, last_edit: datetime | None, evaluation: Evaluation, what: str
) -> tuple[bool | None, str]:
    if started is None:
        return None, "not started"
    if last_edit is not None and last_edit > started:
        return None, f"the {what} was edited after the start and Linear keeps no earlier text"
    return lean_ready(evaluation), f"the {what} is unchanged since the start"


def _metric_now(
    evaluation: Evaluation, done: datetime | None, edits: Sequence[datetime]
) -> bool | None:
    if done is None:
        return None
    has_metric = "success_metric" in found_fields(evaluation)
    # A metric there now was there at done unless the text changed since; one missing now
    # may have been removed after done, which is just as unknown.
    if any(edit > done for edit in edits):
        return None
    return has_metric


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
