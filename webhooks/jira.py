"""Turn a Jira webhook delivery (Cloud or Data Center) into an :class:`InboundEvent`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from webhooks.errors import BadPayload
from webhooks.events import (
    Change,
    InboundEvent,
    ItemRef,
    RequestHeaders,
    as_text,
    delivery_id_from,
    load_object,
    non_empty_str,
    utc_from_millis,
)

TRACKER = "jira"
DELIVERY_HEADER = "X-Atlassian-Webhook-Identifier"

ISSUE_EVENTS = frozenset({"jira:issue_created", "jira:issue_updated", "jira:issue_deleted"})
LINK_EVENTS = frozenset({"issuelink_created", "issuelink_deleted"})

# Keys and ids end up in REST paths the worker calls; refuse anything that could
# change the path (slashes, dots, query characters) even though the body is signed.
_ISSUE_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*-[0-9]+")
_ISSUE_ID = re.compile(r"[0-9]+")


def parse_jira_delivery(body: bytes, headers: RequestHeaders) -> InboundEvent:
    """Parse a verified Jira delivery; raise :class:`BadPayload` if it has the wrong shape."""
    payload, payload_json = load_object(body)
    event_type = non_empty_str(payload.get("webhookEvent"))
    if event_type is None:
        raise BadPayload("The body has no webhookEvent string.")

    refs: tuple[ItemRef, ...] = ()
    changes: tuple[Change, ...] = ()
    if event_type in ISSUE_EVENTS:
        key = _issue_key(payload)
        refs = (ItemRef(TRACKER, key, deleted=event_type == "jira:issue_deleted"),)
        changes = _changes(payload.get("changelog"))
    elif event_type in LINK_EVENTS:
        refs = _link_refs(payload.get("issueLink"))

    return InboundEvent(
        tracker=TRACKER,
        site=_site(payload),
        delivery_id=delivery_id_from(headers, DELIVERY_HEADER, body),
        event_type=event_type,
        # Comments never change a result, and unknown events are stored for the record only.
        needs_work=bool(refs),
        refs=refs,
        actor_id=_actor_id(payload),
        changes=changes,
        occurred_at=utc_from_millis(payload.get("timestamp")),
        payload=payload,
        payload_json=payload_json,
    )


def _issue_key(payload: Mapping[str, Any]) -> str:
    issue = payload.get("issue")
    key = non_empty_str(issue.get("key")) if isinstance(issue, dict) else None
    if key is None:
        raise BadPayload("The issue event has no issue.key.")
    if not _ISSUE_KEY.fullmatch(key):
        raise BadPayload("The issue.key is not a Jira issue key (PROJECT-123).")
    return key


def _link_refs(link: Any) -> tuple[ItemRef, ...]:
    if not isinstance(link, dict):
        raise BadPayload("The issue link event has no issueLink object.")
    ids: list[str] = []
    for name in ("sourceIssueId", "destinationIssueId"):
        value = link.get(name)
        # Jira sends numbers; tolerate digit strings, and refuse booleans (an int in Python).
        text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
        if not _ISSUE_ID.fullmatch(text):
            raise BadPayload(f"The issueLink.{name} is missing or not a numeric issue id.")
        if text not in ids:
            ids.append(text)
    return tuple(ItemRef(TRACKER, issue_id) for issue_id in ids)


def _changes(changelog: Any) -> tuple[Change, ...]:
    items = changelog.get("items") if isinstance(changelog, dict) else None
    if not isinstance(items, list):
        return ()
    changes: list[Change] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        # ``field`` is the display name and may be localised; ``fieldId`` is stable
        # but missing from older Data Center payloads.
        name = non_empty_str(item.get("fieldId")) or non_empty_str(item.get("field"))
        if name is None:
            continue
        changes.append(Change(name, as_text(item.get("fromString")), as_text(item.get("toString"))))
    return tuple(changes)


def _site(payload: Mapping[str, Any]) -> str:
    for holder in ("issue", "user", "comment"):
        value = payload.get(holder)
        url = non_empty_str(value.get("self")) if isinstance(value, dict) else None
        if url is not None and (site := _base_url(url)):
            return site
    return ""


def _base_url(url: str) -> str:
    """Return scheme, host and context path of a REST ``self`` link, or "" if it is not one."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return ""
    context, sep, _ = parts.path.partition("/rest/")
    if not sep:
        return ""
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{context.rstrip('/')}"


def _actor_id(payload: Mapping[str, Any]) -> str | None:
    comment = payload.get("comment")
    candidates = [payload.get("user")]
    if isinstance(comment, dict):
        # Comment events carry no ``user``; the comment's author acted.
        candidates += [comment.get("updateAuthor"), comment.get("author")]
    for user in candidates:
        if not isinstance(user, dict):
            continue
        # Cloud identifies people by accountId; Data Center by key, then name.
        for name in ("accountId", "key", "name"):
            actor = non_empty_str(user.get(name))
            if actor is not None:
                return actor
    return None
