"""Turn Linear issues and projects (webhook ``data`` or GraphQL nodes) into work items."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from plugin.mappers._json import (
    as_map,
    nodes_of,
    text,
    text_in,
    timestamp,
    whole_number,
)
from rules.model import Link, Person, Section, StatusCategory, Tracker, WorkItem
from rules.sections import parse_description

EPIC_LABELS = ("Epic",)

_ISSUE_CATEGORIES = {
    "triage": StatusCategory.TODO,
    "backlog": StatusCategory.TODO,
    "unstarted": StatusCategory.TODO,
    "started": StatusCategory.IN_PROGRESS,
    "completed": StatusCategory.DONE,
    "canceled": StatusCategory.DONE,
}
_PROJECT_CATEGORIES = {
    "backlog": StatusCategory.TODO,
    "planned": StatusCategory.TODO,
    "started": StatusCategory.IN_PROGRESS,
    "paused": StatusCategory.IN_PROGRESS,
    "completed": StatusCategory.DONE,
    "canceled": StatusCategory.DONE,
}
# Linear names a relation by its type only; these are the phrases seen from either end.
_OUTWARD_PHRASES = {
    "blocks": "blocks",
    "duplicate": "duplicates",
    "related": "relates to",
    "similar": "is similar to",
}
_INWARD_PHRASES = {
    "blocks": "is blocked by",
    "duplicate": "is duplicated by",
    "related": "relates to",
    "similar": "is similar to",
}


def linear_issue_to_item(
    issue: Mapping[str, Any],
    *,
    site: str = "",
    epic_labels: Sequence[str] = EPIC_LABELS,
) -> WorkItem:
    """Map a Linear issue (webhook ``data`` or GraphQL ``issue`` node) to a work item."""
    labels = nodes_of(issue.get("labels"))
    state = as_map(issue.get("state"))
    description, sections = _markdown(issue.get("description"))
    return WorkItem(
        tracker=Tracker.LINEAR.value,
        key=_issue_key(issue),
        title=text(issue.get("title")),
        kind="epic" if _is_epic(labels, epic_labels) else "issue",
        type_name="Issue",
        id=text(issue.get("id")),
        site=site or text_in(issue, "team", "organization", "id"),
        url=text(issue.get("url")),
        project=text_in(issue, "team", "key"),
        description=description,
        sections=sections,
        labels=_label_names(labels),
        links=tuple(_links(issue)),
        parent=text_in(issue, "parent", "identifier") or text(issue.get("parentId")) or None,
        status=text(state.get("name")),
        status_category=_ISSUE_CATEGORIES.get(text(state.get("type"))),
        assignee=_person(issue.get("assignee")),
        reporter=_person(issue.get("creator")),
        customer_needs=_customer_needs(issue),
        created=timestamp(issue.get("createdAt")),
        updated=timestamp(issue.get("updatedAt")),
    )


def linear_project_to_item(project: Mapping[str, Any], *, site: str = "") -> WorkItem:
    """Map a Linear project (webhook ``data`` or GraphQL ``project`` node) to a work item."""
    teams = nodes_of(project.get("teams"))
    status = as_map(project.get("status"))
    legacy_state = text(project.get("state"))
    # The short ``description`` and the long ``content`` body can both hold the outcome sections.
    summary, summary_sections = _markdown(project.get("description"))
    body, body_sections = _markdown(project.get("content"))
    return WorkItem(
        tracker=Tracker.LINEAR.value,
        key=text(project.get("slugId")) or text(project.get("id")),
        title=text(project.get("name")),
        kind="project",
        type_name="Project",
        id=text(project.get("id")),
        site=site or (text_in(teams[0], "organization", "id") if teams else ""),
        url=text(project.get("url")),
        project=text(teams[0].get("key")) if teams else "",
        description="\n\n".join(part for part in (summary, body) if part),
        sections=summary_sections + body_sections,
        labels=_label_names(nodes_of(project.get("labels"))),
        status=text(status.get("name")) or legacy_state,
        status_category=_PROJECT_CATEGORIES.get(text(status.get("type")) or legacy_state),
        reporter=_person(project.get("creator")),
        owner=_person(project.get("lead")),
        customer_needs=_customer_needs(project),
        created=timestamp(project.get("createdAt")),
        updated=timestamp(project.get("updatedAt")),
    )


def linear_webhook_to_item(
    payload: Mapping[str, Any], *, epic_labels: Sequence[str] = EPIC_LABELS
) -> WorkItem | None:
    """Map a Linear webhook's Issue or Project to a work item; ``None`` for other types."""
    data = as_map(payload.get("data"))
    if not data:
        return None
    # Issue webhooks leave ``url`` out of ``data``; the envelope carries it.
    if not text(data.get("url")) and text(payload.get("url")):
        data = {**data, "url": payload["url"]}
    site = text(payload.get("organizationId"))
    kind = payload.get("type")
    if kind == "Issue":
        return linear_issue_to_item(data, site=site, epic_labels=epic_labels)
    if kind == "Project":
        return linear_project_to_item(data, site=site)
    return None


def _issue_key(issue: Mapping[str, Any]) -> str:
    identifier = text(issue.get("identifier"))
    if identifier:
        return identifier
    # Webhook payloads leave out ``identifier``; it is the team key and the issue number.
    team, number = text_in(issue, "team", "key"), whole_number(issue.get("number"))
    if team and number is not None:
        return f"{team}-{number}"
    return text(issue.get("id"))


def _is_epic(labels: list[Mapping[str, Any]], epic_labels: Sequence[str]) -> bool:
    # A bare string is one label name, not a sequence of one-letter names.
    names_wanted = (epic_labels,) if isinstance(epic_labels, str) else epic_labels
    wanted = {name.casefold() for name in names_wanted}
    for label in labels:
        # A label group named "Epic" (child "Epic/Checkout") marks an epic as well.
        names = (text(label.get("name")), text_in(label, "parent", "name"))
        if any(name.casefold() in wanted for name in names if name):
            return True
    return False


def _label_names(labels: list[Mapping[str, Any]]) -> tuple[str, ...]:
    names = (label.get("name") for label in labels)
    return tuple(name for name in names if isinstance(name, str) and name.strip())


def _markdown(value: object) -> tuple[str, tuple[Section, ...]]:
    if isinstance(value, str):
        return parse_description(value, "markdown")
    return "", ()


def _person(value: object) -> Person | None:
    user = as_map(value)
    name = text(user.get("name")) or text(user.get("displayName"))
    if not name:
        return None
    return Person(name=name, id=text(user.get("id")) or None)


def _customer_needs(node: Mapping[str, Any]) -> int:
    needs = node.get("needs")
    if isinstance(needs, Mapping | list):
        return len(nodes_of(needs))
    count = whole_number(node.get("customerNeedCount"))
    return max(count, 0) if count is not None else 0


def _links(issue: Mapping[str, Any]) -> list[Link]:
    links: list[Link] = []
    directions = (
        ("relations", "relatedIssue", "outward", _OUTWARD_PHRASES),
        ("inverseRelations", "issue", "inward", _INWARD_PHRASES),
    )
    for connection, side, direction, phrases in directions:
        for relation in nodes_of(issue.get(connection)):
            target = as_map(relation.get(side))
            key = text(target.get("identifier")) or text(target.get("id"))
            if not key:
                continue
            kind = text(relation.get("type"))
            links.append(
                Link(
                    relation=phrases.get(kind, kind),
                    direction=direction,
                    target_key=key,
                    link_type=kind,
                    target_type="Issue",
                    target_title=text(target.get("title")),
                    target_status=text_in(target, "state", "name"),
                )
            )
    return links
