"""Adapters from Jira and Linear JSON to tracker-neutral work items."""

from plugin.mappers.detect import UnknownFormat, items_from_document
from plugin.mappers.jira import jira_issue_to_item, jira_site_of, jira_webhook_to_item
from plugin.mappers.linear import (
    EPIC_LABELS,
    linear_issue_to_item,
    linear_project_to_item,
    linear_webhook_to_item,
)

__all__ = [
    "EPIC_LABELS",
    "UnknownFormat",
    "items_from_document",
    "jira_issue_to_item",
    "jira_site_of",
    "jira_webhook_to_item",
    "linear_issue_to_item",
    "linear_project_to_item",
    "linear_webhook_to_item",
]
