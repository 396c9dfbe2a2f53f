"""Recognise a JSON document from Jira, Linear or leanguard itself and map its work items."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plugin.mappers._json import as_map, maps_in, nodes_of, text
from plugin.mappers.jira import is_jira_issue, jira_issue_to_item, jira_webhook_to_item
from plugin.mappers.linear import (
    linear_issue_to_item,
    linear_project_to_item,
    linear_webhook_to_item,
)
from rules.model import WorkItem

EXPECTED = (
    "a work item (tracker, key, kind), a Jira webhook, issue or search result, "
    "a Linear webhook or GraphQL response, or a JSON list of these"
)
_GRAPHQL_ROOTS = ("issue", "project", "issues", "projects")


class UnknownFormat(ValueError):
    """The document is not a format leanguard can read work items from."""


def items_from_document(doc: Any, *, source: str = "") -> list[WorkItem]:
    """Return the work items a document carries ([] for events about no item)."""
    where = source or "document"
    if isinstance(doc, list):
        items: list[WorkItem] = []
        for index, entry in enumerate(doc):
            items.extend(items_from_document(entry, source=f"{where}[{index}]"))
        return items
    if not isinstance(doc, Mapping):
        raise UnknownFormat(f"{where}: found a JSON {_json_kind(doc)}; expected {EXPECTED}")
    if all(key in doc for key in ("tracker", "key", "kind")):
        return [_work_item(doc, where)]
    if "webhookEvent" in doc:
        item = jira_webhook_to_item(doc)
        return [item] if item is not None else []
    if "key" in doc and "fields" in doc:
        return [jira_issue_to_item(doc)]
    if isinstance(doc.get("issues"), list):
        return _jira_search_page(doc)
    if all(key in doc for key in ("type", "data", "action")):
        item = linear_webhook_to_item(doc)
        return [item] if item is not None else []
    data = as_map(doc.get("data"))
    if any(root in data for root in _GRAPHQL_ROOTS):
        return _linear_graphql(data)
    raise UnknownFormat(f"{where}: found an object with keys {_key_list(doc)}; expected {EXPECTED}")


def _work_item(doc: Mapping[str, Any], where: str) -> WorkItem:
    try:
        return WorkItem.from_dict(doc)
    # from_dict trusts its input; a hand-edited snapshot fails in any of these ways.
    except (KeyError, TypeError, ValueError, ArithmeticError) as error:
        message = f"{where}: not a valid work item ({error!r}); expected {EXPECTED}"
        raise UnknownFormat(message) from error


def _jira_search_page(page: Mapping[str, Any]) -> list[WorkItem]:
    # ``search/jql`` sends ``names`` once per page when asked with expand=names.
    names = {k: v for k, v in as_map(page.get("names")).items() if isinstance(v, str)}
    # Without a ``fields`` parameter a page holds bare ids: no item to check in those.
    return [
        jira_issue_to_item(issue, field_names=names)
        for issue in maps_in(page["issues"])
        if is_jira_issue(issue)
    ]


def _linear_graphql(data: Mapping[str, Any]) -> list[WorkItem]:
    items: list[WorkItem] = []
    issue, project = data.get("issue"), data.get("project")
    # A missing or inaccessible node comes back as null next to ``errors``: nothing to map.
    if isinstance(issue, Mapping):
        items.append(linear_issue_to_item(issue))
    if isinstance(project, Mapping):
        items.append(linear_project_to_item(project))
    items.extend(linear_issue_to_item(node) for node in nodes_of(data.get("issues")))
    items.extend(linear_project_to_item(node) for node in nodes_of(data.get("projects")))
    return items


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _key_list(doc: Mapping[str, Any]) -> str:
    keys = sorted(text(key) or repr(key) for key in doc)
    shown = ", ".join(keys[:8]) + (", ..." if len(keys) > 8 else "")
    return f"[{shown}]" if keys else "none"
