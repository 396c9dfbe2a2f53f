"""Jira Cloud and Data Center client: reads issues, writes the card, the status property, labels."""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Mapping, Sequence
from html import unescape
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import requests
from atlassian import Jira

from plugin.cards import Card, render_adf, render_wiki
from plugin.metrics import record_tracker_call
from plugin.trackers.base import CARD_MARKER, STATUS_PROPERTY_KEY, TrackerClient
from plugin.trackers.errors import (
    DEFAULT_RETRY_AFTER,
    AuthFailed,
    BadRequest,
    NotFound,
    RateLimited,
    TrackerError,
    TrackerUnavailable,
    parse_retry_after,
    retry_after_from_iso,
)

log = logging.getLogger("plugin.trackers.jira")

CLOUD_HOST_SUFFIXES = (".atlassian.net", ".jira.com")
_MAX_MESSAGE = 300
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]+>")
_COMMENT_PAGE = 100
_API_PATH = re.compile(r"^rest/api/[23]/")
_NAMED_BY_NEXT = frozenset({"issue", "comment", "properties"})
"""Path segments followed by an id or key, which an operation's name leaves out."""


def is_cloud_url(base_url: str) -> bool:
    """Tell whether a Jira base URL is a Cloud site (by its host name)."""
    host = (urlsplit(base_url).hostname or "").lower()
    return host.endswith(CLOUD_HOST_SUFFIXES)


class JiraClient(TrackerClient):
    """Jira REST client: API v3 with ADF bodies on Cloud, API v2 with wiki markup on Data Center."""

    tracker: ClassVar[str] = "jira"

    MYSELF_PATH: ClassVar[str] = "rest/api/{v}/myself"
    FIELDS_PATH: ClassVar[str] = "rest/api/{v}/field"
    ISSUE_PATH: ClassVar[str] = "rest/api/{v}/issue/{key}"
    COMMENTS_PATH: ClassVar[str] = "rest/api/{v}/issue/{key}/comment"
    COMMENT_PATH: ClassVar[str] = "rest/api/{v}/issue/{key}/comment/{comment_id}"
    PROPERTY_PATH: ClassVar[str] = "rest/api/{v}/issue/{key}/properties/{prop}"
    CHANGELOG_PATH: ClassVar[str] = "rest/api/{v}/issue/{key}/changelog"
    STATUSES_PATH: ClassVar[str] = "rest/api/{v}/status"
    CLOUD_SEARCH_PATH: ClassVar[str] = "rest/api/3/search/jql"
    CLOUD_COUNT_PATH: ClassVar[str] = "rest/api/3/search/approximate-count"
    # Cloud removed /search in 2025; Data Center still pages it with startAt.
    DC_SEARCH_PATH: ClassVar[str] = "rest/api/2/search"

    def __init__(
        self,
        base_url: str,
        *,
        email: str | None = None,
        api_token: str | None = None,
        session: requests.Session | None = None,
        cloud: bool | None = None,
        timeout: float = 10.0,
    ) -> None:
        # email + api_token is Cloud basic auth; api_token alone is a Data Center personal
        # access token (Bearer); neither leaves session.auth to the caller, e.g. a Connect JWT
        # signer that must sign each request's own URL.
        if email and not api_token:
            raise ValueError("a Jira email needs an API token")
        self.base_url = base_url.rstrip("/")
        self.cloud = is_cloud_url(self.base_url) if cloud is None else cloud
        self.api_version = "3" if self.cloud else "2"
        self.timeout = timeout
        self._jira = Jira(
            url=self.base_url,
            username=email or None,
            password=api_token if email else None,
            token=api_token if api_token and not email else None,
            session=session,
            cloud=self.cloud,
            api_version=self.api_version,
            # The library keeps whole seconds; round up so a short timeout never becomes zero.
            timeout=max(1, math.ceil(timeout)),
            # The library's own retries sleep inside the call (up to 30 minutes on a 429);
            # the job queue retries instead, so a worker is never parked on one request.
            backoff_and_retry=False,
            retry_with_header=False,
        )
        self._identity: str | None = None
        self._field_names: dict[str, str] | None = None
        self._status_categories: dict[str, str] | None = None

    def identity(self) -> str:
        """Return the bot's accountId (Cloud) or user key, falling back to the name (DC)."""
        if self._identity is None:
            me = self._call("GET", self._path(self.MYSELF_PATH))
            if not isinstance(me, Mapping):
                raise TrackerError("Jira /myself answered without a user", status=200)
            ident = me.get("accountId") if self.cloud else me.get("key") or me.get("name")
            if not ident:
                raise TrackerError("Jira /myself answered without an account id", status=200)
            self._identity = str(ident)
        return self._identity

    def field_names(self) -> dict[str, str]:
        """Return every field's display name by field id, cached after the first call."""
        if self._field_names is None:
            fields = self._call("GET", self._path(self.FIELDS_PATH))
            self._field_names = {
                str(field["id"]): str(field["name"])
                for field in (fields if isinstance(fields, list) else [])
                if isinstance(field, Mapping) and "id" in field and "name" in field
            }
        return self._field_names

    def fetch_item(self, key: str, kind: str) -> Mapping[str, Any] | None:
        """Return the issue JSON with all fields and ``names``; None when it is gone."""
        _require_issue(kind)
        try:
            issue = self._call(
                "GET",
                self._path(self.ISSUE_PATH, key=key),
                params={"expand": "names", "fields": "*all"},
            )
        except NotFound:
            return None
        if not isinstance(issue, Mapping):
            raise TrackerError(f"Jira answered issue {key} without an issue", status=200)
        return issue

    def post_card(self, key: str, kind: str, card: Card) -> str:
        """Post the card as a comment and return its id."""
        _require_issue(kind)
        comment = self._call(
            "POST", self._path(self.COMMENTS_PATH, key=key), json={"body": self._body(card)}
        )
        if not isinstance(comment, Mapping) or not comment.get("id"):
            raise TrackerError(f"Jira answered the comment on {key} without an id", status=201)
        return str(comment["id"])

    def find_card(self, key: str, kind: str) -> str | None:
        """Return the id of the bot's own card on the issue, oldest first; None if it has none."""
        _require_issue(kind)
        me = self.identity()
        start = 0
        while True:
            page = self._call(
                "GET",
                self._path(self.COMMENTS_PATH, key=key),
                params={
                    "startAt": str(start),
                    "maxResults": str(_COMMENT_PAGE),
                    "orderBy": "created",
                },
            )
            found = page.get("comments") if isinstance(page, Mapping) else None
            comments = [c for c in found or [] if isinstance(c, Mapping)]
            for comment in comments:
                if _written_by(comment, me) and CARD_MARKER in _comment_text(comment.get("body")):
                    return str(comment["id"])
            start += len(comments)
            total = page.get("total") if isinstance(page, Mapping) else None
            if not comments or not isinstance(total, int) or start >= total:
                return None

    def edit_card(self, key: str, kind: str, comment_id: str, card: Card) -> None:
        """Replace the card's comment without notifying watchers."""
        _require_issue(kind)
        self._call(
            "PUT",
            self._path(self.COMMENT_PATH, key=key, comment_id=comment_id),
            params={"notifyUsers": "false"},
            json={"body": self._body(card)},
        )

    def delete_card(self, key: str, kind: str, comment_id: str) -> None:
        """Delete the card's comment; one that is already gone counts as deleted."""
        _require_issue(kind)
        try:
            self._call("DELETE", self._path(self.COMMENT_PATH, key=key, comment_id=comment_id))
        except NotFound:
            # A retried job, or a human, got there first: the outcome we want already holds.
            log.info("jira.comment.already-deleted")

    def publish_status(self, key: str, kind: str, value: Mapping[str, Any]) -> None:
        """Store the status as the ``leanguard`` issue property (searchable with JQL)."""
        _require_issue(kind)
        self._call(
            "PUT",
            self._path(self.PROPERTY_PATH, key=key, prop=STATUS_PROPERTY_KEY),
            json=dict(value),
        )

    def set_label(self, key: str, kind: str, label: str, present: bool) -> None:
        """Add or remove a label without notifying watchers."""
        _require_issue(kind)
        operation = "add" if present else "remove"
        self._call(
            "PUT",
            self._path(self.ISSUE_PATH, key=key),
            params={"notifyUsers": "false"},
            json={"update": {"labels": [{operation: label}]}},
        )

    def search_epics(
        self,
        jql: str,
        *,
        page_token: str | None,
        max_results: int = 100,
        changelog: bool = False,
        fields: Sequence[str] = ("*all",),
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Return one page of issues matching ``jql`` (each with ``names``) and the next token."""
        # The token is Jira's nextPageToken on Cloud and the next startAt (as a string) on Data
        # Center, so callers page both the same way; None means this was the last page. With
        # ``changelog`` each issue carries its (possibly truncated) ``changelog``.
        expand = "names,changelog" if changelog else "names"
        if self.cloud:
            body: dict[str, Any] = {
                "jql": jql,
                "maxResults": max_results,
                "fields": list(fields),
                "expand": expand,
            }
            if page_token:
                body["nextPageToken"] = page_token
            page = self._call("POST", self.CLOUD_SEARCH_PATH, json=body)
        else:
            start = int(page_token) if page_token else 0
            page = self._call(
                "GET",
                self.DC_SEARCH_PATH,
                params={
                    "jql": jql,
                    "startAt": str(start),
                    "maxResults": str(max_results),
                    "fields": ",".join(fields),
                    "expand": expand,
                },
            )
        if not isinstance(page, Mapping):
            raise TrackerError("Jira answered a search without a result page", status=200)
        issues = _issues_with_names(page)
        if self.cloud:
            token = page.get("nextPageToken")
            next_token = str(token) if token and page.get("isLast") is not True else None
        else:
            next_token = _next_start(page, start, len(issues), max_results)
        return issues, next_token

    def issue_changelog(self, key: str) -> list[dict[str, Any]]:
        """Return every changelog entry of an issue, oldest first."""
        # Search answers cut long changelogs short; Cloud pages the whole one on its own
        # endpoint, while Data Center returns it whole with the issue.
        if not self.cloud:
            issue = self._call(
                "GET",
                self._path(self.ISSUE_PATH, key=key),
                params={"expand": "changelog", "fields": "status"},
            )
            changelog = issue.get("changelog") if isinstance(issue, Mapping) else None
            histories = changelog.get("histories") if isinstance(changelog, Mapping) else None
            entries = [dict(h) for h in histories or [] if isinstance(h, Mapping)]
            return sorted(entries, key=lambda h: str(h.get("created") or ""))
        entries = []
        start = 0
        while True:
            page = self._call(
                "GET",
                self._path(self.CHANGELOG_PATH, key=key),
                params={"startAt": str(start), "maxResults": "100"},
            )
            values = page.get("values") if isinstance(page, Mapping) else None
            batch = [dict(h) for h in values or [] if isinstance(h, Mapping)]
            entries += batch
            start += len(batch)
            total = page.get("total") if isinstance(page, Mapping) else None
            if (
                not batch
                or page.get("isLast") is True
                or (isinstance(total, int) and start >= total)
            ):
                return sorted(entries, key=lambda h: str(h.get("created") or ""))

    def status_categories(self) -> dict[str, str]:
        """Return each status id's category key (``new``, ``indeterminate``, ``done``), cached."""
        if self._status_categories is None:
            statuses = self._call("GET", self._path(self.STATUSES_PATH))
            self._status_categories = {
                str(status["id"]): str(category.get("key") or "")
                for status in (statuses if isinstance(statuses, list) else [])
                if isinstance(status, Mapping)
                and "id" in status
                and isinstance(category := status.get("statusCategory"), Mapping)
            }
        return self._status_categories

    def count_issues(self, jql: str) -> int | None:
        """Return how many issues match ``jql`` (approximate on Cloud); None if Jira won't say."""
        if self.cloud:
            answer = self._call("POST", self.CLOUD_COUNT_PATH, json={"jql": jql})
            count = answer.get("count") if isinstance(answer, Mapping) else None
        else:
            answer = self._call(
                "GET",
                self.DC_SEARCH_PATH,
                params={"jql": jql, "maxResults": "0", "fields": "id"},
            )
            count = answer.get("total") if isinstance(answer, Mapping) else None
        return count if isinstance(count, int) and not isinstance(count, bool) else None

    def _body(self, card: Card) -> dict[str, Any] | str:
        # The library's comment helpers send the body as a string, which v3 rejects ("Comment
        # body is not valid!"): Cloud needs an ADF document, so the body is built here and sent
        # through the library's plain request method.
        return render_adf(card) if self.cloud else render_wiki(card)

    def _path(self, template: str, **parts: str) -> str:
        quoted = {name: quote(value, safe="") for name, value in parts.items()}
        return template.format(v=self.api_version, **quoted)

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: dict[str, Any] | None = None,
    ) -> Any:
        started = time.monotonic()
        try:
            response = self._jira.request(
                method,
                path,
                data=json,
                params=dict(params) if params else None,
                advanced_mode=True,
            )
        except requests.Timeout as exc:
            _log_call(method, path, "timeout", started)
            raise TrackerUnavailable(f"Jira {method} /{path} timed out") from exc
        except requests.ConnectionError as exc:
            _log_call(method, path, "connection-error", started)
            raise TrackerUnavailable(f"Jira {method} /{path} could not connect") from exc
        except requests.RequestException as exc:
            _log_call(method, path, "request-error", started)
            raise TrackerError(f"Jira {method} /{path} failed: {type(exc).__name__}") from exc
        _log_call(method, path, response.status_code, started)
        if response.status_code >= 400:
            raise _error_from(method, path, response)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            # Usually a single-sign-on login page served with 200 to an unauthenticated call.
            raise TrackerError(
                f"Jira {method} /{path} answered {response.status_code} with a body that is "
                f"not JSON: {_short_message(response)}",
                status=response.status_code,
            ) from exc


def _require_issue(kind: str) -> None:
    if kind != "issue":
        raise ValueError(f"Jira items are issues, not {kind!r}")


def _log_call(method: str, path: str, status: int | str, started: float) -> None:
    elapsed = time.monotonic() - started
    log.info("jira.request %s /%s -> %s (%d ms)", method, path, status, int(elapsed * 1000))
    record_tracker_call("jira", _operation(method, path), status, elapsed)


def _operation(method: str, path: str) -> str:
    """Name a call without its ids, for metrics: ``GET issue``, ``PUT issue/comment``."""
    kept: list[str] = []
    named = False
    for part in _API_PATH.sub("", path.strip("/")).split("/"):
        if named:
            named = False
            continue
        # Any other segment with a digit in it is an id too (ids make endless label values).
        kept.append("{id}" if any(char.isdigit() for char in part) else part)
        named = part in _NAMED_BY_NEXT
    return f"{method} {'/'.join(kept)}"


def _written_by(comment: Mapping[str, Any], identity: str) -> bool:
    author = comment.get("author")
    if not isinstance(author, Mapping):
        return False
    # Cloud names accounts by accountId; Data Center by user key, or name on old versions.
    return identity in {str(author.get(name)) for name in ("accountId", "key", "name")}


def _comment_text(body: Any) -> str:
    """Return a comment's text: wiki markup as it is, an ADF document's text nodes joined."""
    if isinstance(body, str):
        return body
    if isinstance(body, Mapping):
        own = body.get("text") if body.get("type") == "text" else None
        children = body.get("content")
        parts = [_comment_text(child) for child in children] if isinstance(children, list) else []
        return (own if isinstance(own, str) else "") + "".join(parts)
    return ""


def _error_from(method: str, path: str, response: requests.Response) -> TrackerError:
    status = response.status_code
    message = f"Jira {method} /{path} failed with {status}: {_short_message(response)}"
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status == 429:
        if retry_after is None:
            retry_after = retry_after_from_iso(response.headers.get("X-RateLimit-Reset"))
        return RateLimited(message, retry_after=retry_after or DEFAULT_RETRY_AFTER, status=status)
    if status >= 500 or status == 408:
        return TrackerUnavailable(message, status=status, retry_after=retry_after)
    if status in (401, 403):
        return AuthFailed(message, status=status)
    if status == 404:
        return NotFound(message, status=status)
    return BadRequest(message, status=status)


def _short_message(response: requests.Response) -> str:
    """Reduce an error body to one short line: Jira's messages, an HTML title, or the reason."""
    content_type = response.headers.get("Content-Type", "")
    text = response.text or ""
    message = ""
    if "json" in content_type or text.lstrip().startswith(("{", "[")):
        message = _json_message(response)
    elif "html" in content_type or text.lstrip().startswith("<"):
        # Proxies and Jira's own error pages answer with whole HTML documents.
        title = _HTML_TITLE.search(text)
        raw = title.group(1) if title else _HTML_TAG.sub(" ", text)
        message = unescape(" ".join(raw.split()))
    elif text.strip():
        message = " ".join(text.split())
    message = message or response.reason or "no details"
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 1] + "…"


def _json_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, Mapping):
        return ""
    parts = [str(m) for m in body.get("errorMessages") or [] if m]
    errors = body.get("errors")
    if isinstance(errors, Mapping):
        parts += [f"{name}: {value}" for name, value in errors.items()]
    elif isinstance(errors, list):
        parts += [
            str(e.get("message", "")) if isinstance(e, Mapping) else str(e) for e in errors if e
        ]
    if not parts and body.get("message"):
        parts.append(str(body["message"]))
    return "; ".join(part for part in parts if part)


def _issues_with_names(page: Mapping[str, Any]) -> list[dict[str, Any]]:
    # Search answers carry ``names`` once per page; copy it into each issue so every issue has
    # the same shape as fetch_item's answer and the mappers need no second argument.
    names = page.get("names")
    issues: list[dict[str, Any]] = []
    for issue in page.get("issues") or []:
        if not isinstance(issue, Mapping):
            continue
        copy = dict(issue)
        if isinstance(names, Mapping) and "names" not in copy:
            copy["names"] = dict(names)
        issues.append(copy)
    return issues


def _next_start(page: Mapping[str, Any], start: int, count: int, max_results: int) -> str | None:
    if count == 0:
        return None
    following = start + count
    total = page.get("total")
    if isinstance(total, int):
        return str(following) if following < total else None
    return str(following) if count >= max_results else None
