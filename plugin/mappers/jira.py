"""Turn Jira issues (REST v2 or v3, webhook ``issue``) into work items."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from plugin.mappers._json import (
    as_list,
    as_map,
    get_in,
    maps_in,
    number_text,
    text,
    text_in,
    timestamp,
)
from rules.model import Link, Person, Section, StatusCategory, Tracker, WorkItem
from rules.naming import normalize_name
from rules.sections import adf_to_text, parse_description

CUSTOM_FIELD_PREFIX = "customfield_"
PRODUCT_DISCOVERY = "product_discovery"

_CATEGORY_BY_KEY = {
    "new": StatusCategory.TODO,
    "indeterminate": StatusCategory.IN_PROGRESS,
    "done": StatusCategory.DONE,
}
_DONE_NAMES = frozenset({"done", "closed", "resolved"})
_IN_PROGRESS_NAMES = frozenset({"in progress", "in review"})
# Company-managed projects keep the epic in a custom field instead of ``fields.parent``.
_PARENT_FIELD_NAMES = frozenset({"epic link", "parent link"})
# Jira Product Discovery links delivery work to ideas with these (system) link types.
_JPD_LINK_PREFIX = "polaris"
_IDEA_TYPE = "idea"


def jira_site_of(issue: Mapping[str, Any]) -> str:
    """Return the site's base URL from the issue's ``self`` link, context path included."""
    self_url = issue.get("self")
    if not isinstance(self_url, str):
        return ""
    # Data Center may live under a context path (``https://host/jira/rest/...``): keep it.
    base, found, _ = self_url.partition("/rest/")
    candidate = base if found else self_url
    try:
        parts = urlsplit(candidate)
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    if not found:
        return f"{parts.scheme}://{parts.netloc}"
    return candidate.rstrip("/")


def jira_issue_to_item(
    issue: Mapping[str, Any],
    *,
    site: str = "",
    field_names: Mapping[str, str] | None = None,
) -> WorkItem:
    """Map a Jira issue (REST v2/v3 or a webhook's ``issue``) to a work item."""
    fields = as_map(issue.get("fields"))
    names = _field_names(issue, field_names)
    issuetype = as_map(fields.get("issuetype"))
    status = as_map(fields.get("status"))
    key = text(issue.get("key")) or text(issue.get("id"))
    site = (site or jira_site_of(issue)).rstrip("/")
    description, sections = _description(fields.get("description"))
    return WorkItem(
        tracker=Tracker.JIRA.value,
        key=key,
        title=text(fields.get("summary")),
        kind=_kind(issuetype),
        type_name=text(issuetype.get("name")),
        id=text(issue.get("id")),
        site=site,
        url=f"{site}/browse/{key}" if site and key else "",
        project=text_in(fields, "project", "key"),
        description=description,
        sections=sections,
        fields=_custom_fields(fields, names),
        labels=tuple(label for label in as_list(fields.get("labels")) if _is_label(label)),
        links=tuple(_links(fields.get("issuelinks"))),
        parent=_parent(fields, names),
        status=text(status.get("name")),
        status_category=_status_category(status),
        assignee=_person(fields.get("assignee")),
        reporter=_person(fields.get("reporter")),
        created=timestamp(fields.get("created")),
        updated=timestamp(fields.get("updated")),
    )


def jira_webhook_to_item(
    payload: Mapping[str, Any],
    *,
    site: str = "",
    field_names: Mapping[str, str] | None = None,
) -> WorkItem | None:
    """Map a Jira webhook's issue to a work item; ``None`` when it carries no issue."""
    issue = as_map(payload.get("issue"))
    if not is_jira_issue(issue):
        return None
    return jira_issue_to_item(issue, site=site, field_names=field_names)


def is_jira_issue(value: object) -> bool:
    """Tell whether ``value`` is an issue with a key and at least its summary or type."""
    issue = as_map(value)
    fields = as_map(issue.get("fields"))
    return bool(text(issue.get("key"))) and ("summary" in fields or "issuetype" in fields)


def field_text(value: object) -> str:
    """Render a custom field value (text, ADF, option, user, list, number) as text."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number_text(value)
    if isinstance(value, Mapping):
        return _object_text(value)
    if isinstance(value, list):
        return ", ".join(part for part in map(field_text, value) if part)
    return ""


def _object_text(value: Mapping[str, Any]) -> str:
    if value.get("type") == "doc":
        return adf_to_text(value).strip()
    if "value" in value:
        # A cascading select nests its second level under ``child``: "Parent / Child".
        first, second = field_text(value["value"]), field_text(value.get("child"))
        return f"{first} / {second}" if first and second else first
    for key in ("name", "displayName"):
        if key in value:
            return field_text(value[key])
    return ""


def _is_label(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _field_names(issue: Mapping[str, Any], field_names: Mapping[str, str] | None) -> dict[str, str]:
    names = {str(k): v for k, v in (field_names or {}).items() if isinstance(v, str)}
    names.update({k: v for k, v in as_map(issue.get("names")).items() if isinstance(v, str)})
    return names


def _custom_fields(fields: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for field_id, value in fields.items():
        if not str(field_id).startswith(CUSTOM_FIELD_PREFIX):
            continue
        name = names.get(field_id, "").strip()
        if not name:
            continue
        rendered = field_text(value)
        # Jira allows two fields with one name; the first that has a value speaks for both.
        if rendered and name not in values:
            values[name] = rendered
    return values


def _description(value: object) -> tuple[str, tuple[Section, ...]]:
    if isinstance(value, str):
        return parse_description(value, "wiki")
    if isinstance(value, Mapping):
        return parse_description(value)
    return "", ()


def _kind(issuetype: Mapping[str, Any]) -> str:
    name = text(issuetype.get("name")).strip()
    level = issuetype.get("hierarchyLevel")
    if name.lower() == "epic" or (level == 1 and not isinstance(level, bool)):
        return "epic"
    # Cloud marks sub-tasks with hierarchy level -1 even when ``subtask`` is missing.
    if issuetype.get("subtask") is True or (level == -1 and not isinstance(level, bool)):
        return "subtask"
    # Story, Task, Bug, Idea and any custom type keep their own name, lower-cased.
    return name.lower() or "issue"


def _status_category(status: Mapping[str, Any]) -> StatusCategory | None:
    category = _CATEGORY_BY_KEY.get(text_in(status, "statusCategory", "key"))
    if category is not None:
        return category
    name = " ".join(text(status.get("name")).split()).casefold()
    if not name:
        return None
    if name in _DONE_NAMES:
        return StatusCategory.DONE
    if name in _IN_PROGRESS_NAMES:
        return StatusCategory.IN_PROGRESS
    return StatusCategory.TODO


def _person(value: object) -> Person | None:
    user = as_map(value)
    name = text(user.get("displayName")) or text(user.get("name"))
    if not name:
        return None
    # Cloud identifies users by accountId; Data Center by username, then user key.
    ident = text(user.get("accountId")) or text(user.get("name")) or text(user.get("key"))
    return Person(name=name, id=ident or None)


def _parent(fields: Mapping[str, Any], names: Mapping[str, str]) -> str | None:
    parent = text_in(fields, "parent", "key")
    if parent:
        return parent
    for field_id, value in fields.items():
        if normalize_name(names.get(field_id, "")) not in _PARENT_FIELD_NAMES:
            continue
        # "Epic Link" holds a key; Advanced Roadmaps' "Parent Link" wraps it in ``data``.
        key = text(value) or text_in(value, "data", "key")
        if key:
            return key
    return None


def _links(value: object) -> list[Link]:
    links: list[Link] = []
    for entry in maps_in(value):
        link_type = as_map(entry.get("type"))
        for direction, side in (("outward", "outwardIssue"), ("inward", "inwardIssue")):
            target = as_map(entry.get(side))
            key = text(target.get("key"))
            if not key:
                continue
            type_name = text(link_type.get("name"))
            target_type = text_in(target, "fields", "issuetype", "name")
            links.append(
                Link(
                    relation=text(link_type.get(direction)) or type_name,
                    direction=direction,
                    target_key=key,
                    link_type=type_name,
                    target_type=target_type,
                    target_title=text_in(target, "fields", "summary"),
                    target_status=text_in(target, "fields", "status", "name"),
                    target_project_type=_project_type(type_name, target_type, target),
                )
            )
    return links


def _project_type(link_type: str, target_type: str, target: Mapping[str, Any]) -> str:
    project_type = text(get_in(target, "fields", "project", "projectTypeKey"))
    if project_type:
        return project_type
    if target_type.casefold() == _IDEA_TYPE or link_type.casefold().startswith(_JPD_LINK_PREFIX):
        return PRODUCT_DISCOVERY
    return ""
