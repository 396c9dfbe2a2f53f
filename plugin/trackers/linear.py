"""Linear client over GraphQL: reads issues and projects, writes the card and labels."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, ClassVar, NoReturn

import requests

from plugin.cards import Card, render_markdown
from plugin.metrics import record_tracker_call
from plugin.trackers.base import CARD_MARKER, TrackerClient
from plugin.trackers.errors import (
    DEFAULT_RETRY_AFTER,
    AuthFailed,
    BadRequest,
    NotFound,
    RateLimited,
    TrackerError,
    TrackerUnavailable,
    parse_retry_after,
    retry_after_from_epoch_ms,
)

log = logging.getLogger("plugin.trackers.linear")

DEFAULT_API_URL = "https://api.linear.app/graphql"

VIEWER = """
query Viewer {
  viewer { id }
}
"""

ISSUE = """
query Issue($id: String!) {
  issue(id: $id) {
    id
    identifier
    title
    description
    url
    createdAt
    updatedAt
    labels { nodes { name parent { name } } }
    state { name type }
    team { key }
    assignee { id name }
    creator { id name }
    parent { identifier }
    project { id name }
    needs { nodes { id } }
    relations { nodes { type relatedIssue { identifier title state { name } } } }
    inverseRelations { nodes { type issue { identifier title state { name } } } }
  }
}
"""

PROJECT = """
query Project($id: String!) {
  project(id: $id) {
    id
    slugId
    name
    description
    content
    url
    createdAt
    updatedAt
    status { name type }
    lead { id name }
    labels { nodes { name } }
    teams { nodes { key } }
    needs { nodes { id } }
  }
}
"""

# The bot's cards among an item's comments: its own comments holding the card marker, oldest
# first. Linear filters on both; the client checks both again on what comes back.
ISSUE_CARDS = """
query IssueCards($id: String!, $marker: String!, $user: ID!, $after: String) {
  issue(id: $id) {
    comments(
      first: 50
      after: $after
      filter: { body: { contains: $marker }, user: { id: { eq: $user } } }
    ) {
      nodes { id body user { id } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""

PROJECT_CARDS = """
query ProjectCards($id: String!, $marker: String!, $user: ID!, $after: String) {
  project(id: $id) {
    comments(
      first: 50
      after: $after
      filter: { body: { contains: $marker }, user: { id: { eq: $user } } }
    ) {
      nodes { id body user { id } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""

COMMENT_CREATE = """
mutation CommentCreate($input: CommentCreateInput!) {
  commentCreate(input: $input) {
    success
    comment { id }
  }
}
"""

COMMENT_UPDATE = """
mutation CommentUpdate($id: String!, $input: CommentUpdateInput!) {
  commentUpdate(id: $id, input: $input) {
    success
  }
}
"""

COMMENT_DELETE = """
mutation CommentDelete($id: String!) {
  commentDelete(id: $id) {
    success
  }
}
"""

ISSUE_LABELS_OF = """
query IssueLabelsOf($id: String!) {
  issue(id: $id) {
    id
    team { id }
    labels { nodes { id name } }
  }
}
"""

PROJECT_LABELS_OF = """
query ProjectLabelsOf($id: String!) {
  project(id: $id) {
    id
    labels { nodes { id name } }
  }
}
"""

ISSUE_LABEL_FIND = """
query IssueLabelFind($name: String!) {
  issueLabels(filter: { name: { eqIgnoreCase: $name } }) {
    nodes { id name team { id } }
  }
}
"""

PROJECT_LABEL_FIND = """
query ProjectLabelFind($name: String!) {
  projectLabels(filter: { name: { eqIgnoreCase: $name } }) {
    nodes { id name }
  }
}
"""

ISSUE_LABEL_CREATE = """
mutation IssueLabelCreate($input: IssueLabelCreateInput!) {
  issueLabelCreate(input: $input) {
    success
    issueLabel { id }
  }
}
"""

PROJECT_LABEL_CREATE = """
mutation ProjectLabelCreate($input: ProjectLabelCreateInput!) {
  projectLabelCreate(input: $input) {
    success
    projectLabel { id }
  }
}
"""

ISSUE_ADD_LABEL = """
mutation IssueAddLabel($id: String!, $labelId: String!) {
  issueAddLabel(id: $id, labelId: $labelId) {
    success
  }
}
"""

ISSUE_REMOVE_LABEL = """
mutation IssueRemoveLabel($id: String!, $labelId: String!) {
  issueRemoveLabel(id: $id, labelId: $labelId) {
    success
  }
}
"""

PROJECT_ADD_LABEL = """
mutation ProjectAddLabel($id: String!, $labelId: String!) {
  projectAddLabel(id: $id, labelId: $labelId) {
    success
  }
}
"""

PROJECT_REMOVE_LABEL = """
mutation ProjectRemoveLabel($id: String!, $labelId: String!) {
  projectRemoveLabel(id: $id, labelId: $labelId) {
    success
  }
}
"""

# Lists stay shallow: nested connections multiply query complexity by ``first`` and Linear
# rejects a query over 10,000 points, so callers fetch each item with fetch_item afterwards.
EPIC_PROJECTS = """
query EpicProjects($first: Int!, $after: String) {
  projects(first: $first, after: $after) {
    nodes { __typename id slugId name url updatedAt }
    pageInfo { hasNextPage endCursor }
  }
}
"""

EPIC_ISSUES = """
query EpicIssues($first: Int!, $after: String, $label: String!) {
  issues(
    first: $first
    after: $after
    filter: { labels: { some: { name: { eqIgnoreCase: $label } } } }
  ) {
    nodes { __typename id identifier title url updatedAt }
    pageInfo { hasNextPage endCursor }
  }
}
"""

# Backfill pages carry everything the mappers read plus the history, so one request serves
# ten epics; every connection names a small ``first`` to stay far below 10,000 points.
BACKFILL_PROJECTS = """
query BackfillProjects($first: Int!, $after: String, $team: String!) {
  projects(
    first: $first
    after: $after
    filter: { accessibleTeams: { some: { key: { eq: $team } } } }
  ) {
    nodes {
      __typename
      id
      slugId
      name
      description
      content
      url
      createdAt
      updatedAt
      startedAt
      completedAt
      canceledAt
      status { name type }
      lead { id name }
      labels(first: 20) { nodes { name } }
      teams(first: 5) { nodes { key } }
      needs(first: 20) { nodes { id } }
      completedIssueCountHistory
      documentContent { updatedAt }
      projectUpdates(first: 20) {
        nodes { createdAt body health }
        pageInfo { hasNextPage endCursor }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""

BACKFILL_ISSUES = """
query BackfillIssues($first: Int!, $after: String, $team: String!, $label: String!) {
  issues(
    first: $first
    after: $after
    filter: {
      team: { key: { eq: $team } }
      labels: { some: { name: { eqIgnoreCase: $label } } }
    }
  ) {
    nodes {
      __typename
      id
      identifier
      title
      description
      url
      createdAt
      updatedAt
      startedAt
      completedAt
      canceledAt
      labels(first: 20) { nodes { name parent { name } } }
      state { name type }
      team { key }
      assignee { id name }
      creator { id name }
      parent { identifier }
      project { id name }
      needs(first: 20) { nodes { id } }
      relations(first: 20) { nodes { type relatedIssue { identifier title state { name } } } }
      inverseRelations(first: 20) { nodes { type issue { identifier title state { name } } } }
      children(first: 250, filter: { state: { type: { eq: "completed" } } }) { nodes { id } }
      history(first: 50) {
        nodes { createdAt updatedDescription fromState { type } toState { type } }
        pageInfo { hasNextPage endCursor }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""

ISSUE_HISTORY = """
query IssueHistory($id: String!, $after: String) {
  issue(id: $id) {
    history(first: 100, after: $after) {
      nodes { createdAt updatedDescription fromState { type } toState { type } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""

PROJECT_UPDATES = """
query ProjectUpdates($id: String!, $after: String) {
  project(id: $id) {
    projectUpdates(first: 50, after: $after) {
      nodes { createdAt body health }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""

ORGANIZATION = """
query Organization {
  organization { id name }
}
"""

_PROJECTS_PHASE = "projects:"
_ISSUES_PHASE = "issues:"


class LinearClient(TrackerClient):
    """Linear GraphQL client authenticated with a personal API key."""

    tracker: ClassVar[str] = "linear"

    def __init__(
        self,
        api_key: str,
        *,
        api_url: str = DEFAULT_API_URL,
        session: requests.Session | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not api_key:
            raise ValueError("a Linear API key is required")
        self._api_key = api_key
        self.api_url = api_url
        self.timeout = timeout
        self._session = session or requests.Session()
        self._identity: str | None = None
        self._label_ids: dict[tuple[str, str, str], str] = {}

    def __repr__(self) -> str:
        return f"LinearClient(api_url={self.api_url!r})"

    def identity(self) -> str:
        """Return the id of the user the API key belongs to, cached after the first call."""
        if self._identity is None:
            viewer = self._root("Viewer", VIEWER, {}, "viewer")
            self._identity = str(viewer["id"])
        return self._identity

    def fetch_item(self, key: str, kind: str) -> Mapping[str, Any] | None:
        """Return the issue or project node; None when it no longer exists."""
        document, field = (PROJECT, "project") if _kind(kind) == "project" else (ISSUE, "issue")
        operation = "Project" if field == "project" else "Issue"
        try:
            return self._root(operation, document, {"id": key}, field)
        except NotFound:
            return None

    def post_card(self, key: str, kind: str, card: Card) -> str:
        """Post the card as a Markdown comment and return its id."""
        target = "projectId" if _kind(kind) == "project" else "issueId"
        comment_input: dict[str, Any] = {target: key, "body": render_markdown(card)}
        if target == "issueId":
            # The bot has no use for notifications about the issue it comments on.
            comment_input["doNotSubscribeToIssue"] = True
        payload = self._root(
            "CommentCreate", COMMENT_CREATE, {"input": comment_input}, "commentCreate"
        )
        comment = payload.get("comment")
        if not isinstance(comment, Mapping) or not comment.get("id"):
            raise TrackerError("Linear created a comment without an id")
        return str(comment["id"])

    def find_card(self, key: str, kind: str) -> str | None:
        """Return the id of the bot's own card on the issue or project; None if it has none."""
        me = self.identity()
        document, field, operation = (
            (PROJECT_CARDS, "project", "ProjectCards")
            if _kind(kind) == "project"
            else (ISSUE_CARDS, "issue", "IssueCards")
        )
        after: str | None = None
        while True:
            item = self._root(
                operation,
                document,
                {"id": key, "marker": CARD_MARKER, "user": me, "after": after},
                field,
            )
            comments = item.get("comments")
            nodes, more, end = _page(comments if isinstance(comments, Mapping) else {})
            for node in nodes:
                user = node.get("user")
                author = user.get("id") if isinstance(user, Mapping) else None
                if author == me and CARD_MARKER in str(node.get("body") or ""):
                    return str(node["id"])
            if not more or not end:
                return None
            after = end

    def edit_card(self, key: str, kind: str, comment_id: str, card: Card) -> None:
        """Replace the card's comment body; ``NotFound`` when the comment was deleted."""
        _kind(kind)
        self._root(
            "CommentUpdate",
            COMMENT_UPDATE,
            {"id": comment_id, "input": {"body": render_markdown(card)}},
            "commentUpdate",
        )

    def delete_card(self, key: str, kind: str, comment_id: str) -> None:
        """Delete the card's comment; one that is already gone counts as deleted."""
        _kind(kind)
        try:
            self._root("CommentDelete", COMMENT_DELETE, {"id": comment_id}, "commentDelete")
        except NotFound:
            # A retried job, or a human, got there first: the outcome we want already holds.
            log.info("linear.comment.already-deleted")

    def publish_status(self, key: str, kind: str, value: Mapping[str, Any]) -> None:
        """Do nothing: Linear has no entity properties to hold a machine-readable status."""
        # Issues and projects have no key-value store for apps (Jira's issue properties); the
        # card and the label carry the status on Linear, and the details page serves the rest.
        _kind(kind)

    def set_label(self, key: str, kind: str, label: str, present: bool) -> None:
        """Add (creating the label when needed) or remove a label on an issue or project."""
        if _kind(kind) == "project":
            item = self._root("ProjectLabelsOf", PROJECT_LABELS_OF, {"id": key}, "project")
        else:
            item = self._root("IssueLabelsOf", ISSUE_LABELS_OF, {"id": key}, "issue")
        current = {
            str(node["name"]).casefold(): str(node["id"])
            for node in _nodes(item.get("labels"))
            if node.get("id") and node.get("name")
        }
        item_id = str(item["id"])
        attached = current.get(label.casefold())
        # Writing only on change keeps the bot from triggering webhooks about its own no-ops.
        if present and attached is None:
            label_id = self._label_id(kind, label, _team_id(item))
            if kind == "project":
                self._mutate("ProjectAddLabel", PROJECT_ADD_LABEL, item_id, label_id)
            else:
                self._mutate("IssueAddLabel", ISSUE_ADD_LABEL, item_id, label_id)
        elif not present and attached is not None:
            if kind == "project":
                self._mutate("ProjectRemoveLabel", PROJECT_REMOVE_LABEL, item_id, attached)
            else:
                self._mutate("IssueRemoveLabel", ISSUE_REMOVE_LABEL, item_id, attached)

    def list_epics(
        self, *, after: str | None, first: int = 50, epic_label: str = "Epic"
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Return one page of epics (all projects, then issues labelled ``epic_label``)."""
        # Each node carries __typename ("Project" or "Issue"). The cursor is opaque to callers:
        # its prefix says which of the two lists it walks, so one loop pages through both;
        # None means this was the last page.
        cursor = after or _PROJECTS_PHASE
        if cursor.startswith(_PROJECTS_PHASE):
            page = self._root(
                "EpicProjects",
                EPIC_PROJECTS,
                {"first": first, "after": cursor.removeprefix(_PROJECTS_PHASE) or None},
                "projects",
            )
            nodes, more, end = _page(page)
            return nodes, (_PROJECTS_PHASE + end) if more and end else _ISSUES_PHASE
        if not cursor.startswith(_ISSUES_PHASE):
            raise ValueError(f"not a cursor from list_epics: {after!r}")
        page = self._root(
            "EpicIssues",
            EPIC_ISSUES,
            {
                "first": first,
                "after": cursor.removeprefix(_ISSUES_PHASE) or None,
                "label": epic_label,
            },
            "issues",
        )
        nodes, more, end = _page(page)
        return nodes, (_ISSUES_PHASE + end) if more and end else None

    def list_epic_histories(
        self, *, team: str, after: str | None, first: int = 10, epic_label: str = "Epic"
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Return one page of a team's epics with their history (projects, then issues)."""
        # The same two-phase cursor as list_epics; nodes are whole (mapper-ready) and carry the
        # first page of their history, the rest comes from issue_history / project_updates.
        cursor = after or _PROJECTS_PHASE
        if cursor.startswith(_PROJECTS_PHASE):
            page = self._root(
                "BackfillProjects",
                BACKFILL_PROJECTS,
                {
                    "first": first,
                    "after": cursor.removeprefix(_PROJECTS_PHASE) or None,
                    "team": team,
                },
                "projects",
            )
            nodes, more, end = _page(page)
            return nodes, (_PROJECTS_PHASE + end) if more and end else _ISSUES_PHASE
        if not cursor.startswith(_ISSUES_PHASE):
            raise ValueError(f"not a cursor from list_epic_histories: {after!r}")
        page = self._root(
            "BackfillIssues",
            BACKFILL_ISSUES,
            {
                "first": first,
                "after": cursor.removeprefix(_ISSUES_PHASE) or None,
                "team": team,
                "label": epic_label,
            },
            "issues",
        )
        nodes, more, end = _page(page)
        return nodes, (_ISSUES_PHASE + end) if more and end else None

    def issue_history(
        self, issue_id: str, *, after: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Return one page of an issue's history entries and the cursor of the next."""
        issue = self._root("IssueHistory", ISSUE_HISTORY, {"id": issue_id, "after": after}, "issue")
        nodes, more, end = _page(_map(issue.get("history")))
        return nodes, end if more and end else None

    def project_updates(
        self, project_id: str, *, after: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Return one page of a project's updates and the cursor of the next."""
        project = self._root(
            "ProjectUpdates", PROJECT_UPDATES, {"id": project_id, "after": after}, "project"
        )
        nodes, more, end = _page(_map(project.get("projectUpdates")))
        return nodes, end if more and end else None

    def organization_id(self) -> str:
        """Return the id of the workspace the API key belongs to (the tenant's site)."""
        organization = self._root("Organization", ORGANIZATION, {}, "organization")
        return str(organization["id"])

    def _label_id(self, kind: str, name: str, team_id: str | None) -> str:
        cache_key = (kind, team_id or "", name.casefold())
        if cache_key in self._label_ids:
            return self._label_ids[cache_key]
        if kind == "project":
            found = self._root(
                "ProjectLabelFind", PROJECT_LABEL_FIND, {"name": name}, "projectLabels"
            )
            candidates = _nodes(found)
        else:
            found = self._root("IssueLabelFind", ISSUE_LABEL_FIND, {"name": name}, "issueLabels")
            # An issue can only carry workspace labels and labels of its own team.
            usable = [n for n in _nodes(found) if _team_id(n) in (None, team_id)]
            candidates = sorted(usable, key=lambda n: _team_id(n) is not None)
        if candidates:
            label_id = str(candidates[0]["id"])
        else:
            label_id = self._create_label(kind, name, team_id)
        self._label_ids[cache_key] = label_id
        return label_id

    def _create_label(self, kind: str, name: str, team_id: str | None) -> str:
        if kind == "project":
            payload = self._root(
                "ProjectLabelCreate",
                PROJECT_LABEL_CREATE,
                {"input": {"name": name}},
                "projectLabelCreate",
            )
            created = payload.get("projectLabel")
        else:
            # A team label needs no workspace-admin rights, which a bot's key often lacks.
            label_input = {"name": name, "teamId": team_id} if team_id else {"name": name}
            payload = self._root(
                "IssueLabelCreate", ISSUE_LABEL_CREATE, {"input": label_input}, "issueLabelCreate"
            )
            created = payload.get("issueLabel")
        if not isinstance(created, Mapping) or not created.get("id"):
            raise TrackerError(f"Linear created label {name!r} without an id")
        return str(created["id"])

    def _mutate(self, operation: str, document: str, item_id: str, label_id: str) -> None:
        field = operation[0].lower() + operation[1:]
        self._root(operation, document, {"id": item_id, "labelId": label_id}, field)

    def _root(
        self, operation: str, document: str, variables: Mapping[str, Any], field: str
    ) -> dict[str, Any]:
        """Run a document and return its root field, which must be an object."""
        data = self._execute(operation, document, variables)
        value = data.get(field)
        if not isinstance(value, dict):
            raise NotFound(f"Linear {operation} returned no {field}", status=200)
        if value.get("success") is False:
            raise TrackerError(f"Linear {operation} did not succeed", status=200)
        return value

    def _execute(
        self, operation: str, document: str, variables: Mapping[str, Any]
    ) -> dict[str, Any]:
        started = time.monotonic()
        try:
            response = self._session.post(
                self.api_url,
                json={"query": document, "variables": dict(variables), "operationName": operation},
                headers={"Authorization": self._api_key, "Content-Type": "application/json"},
                timeout=self.timeout,
            )
        except requests.Timeout as exc:
            _log_call(operation, "timeout", started)
            raise TrackerUnavailable(f"Linear {operation} timed out") from exc
        except requests.ConnectionError as exc:
            _log_call(operation, "connection-error", started)
            raise TrackerUnavailable(f"Linear {operation} could not connect") from exc
        except requests.RequestException as exc:
            _log_call(operation, "request-error", started)
            raise TrackerError(f"Linear {operation} failed: {type(exc).__name__}") from exc
        _log_call(operation, response.status_code, started)
        return _data_or_error(operation, response)


def _kind(kind: str) -> str:
    if kind not in ("issue", "project"):
        raise ValueError(f"Linear items are issues or projects, not {kind!r}")
    return kind


def _log_call(operation: str, status: int | str, started: float) -> None:
    elapsed = time.monotonic() - started
    log.info("linear.request %s -> %s (%d ms)", operation, status, int(elapsed * 1000))
    record_tracker_call("linear", operation, status, elapsed)


def _data_or_error(operation: str, response: requests.Response) -> dict[str, Any]:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    errors = body.get("errors") if isinstance(body, Mapping) else None
    data = body.get("data") if isinstance(body, Mapping) else None
    if isinstance(errors, list) and errors:
        first = errors[0] if isinstance(errors[0], Mapping) else {}
        if isinstance(data, dict) and any(value is not None for value in data.values()):
            # Partial data: a nested object the key may not see (a private team's issue) fails
            # alone; the item itself came back, so it is used and the error only logged.
            log.warning("linear.partial-data %s: %s", operation, _error_text(first))
            return data
        return _graphql_error(operation, status, first, response)
    if status >= 400 or not isinstance(data, dict):
        return _http_error(operation, status, response)
    return data


def _graphql_error(
    operation: str, status: int, error: Mapping[str, Any], response: requests.Response
) -> NoReturn:
    extensions = error.get("extensions")
    ext = extensions if isinstance(extensions, Mapping) else {}
    code = str(ext.get("code") or "").upper()
    kind = str(ext.get("type") or "").lower()
    raw = str(error.get("message") or "")
    shown = str(ext.get("userPresentableMessage") or "").lower()
    message = f"Linear {operation}: {_error_text(error)}"
    # Linear answers rate limiting with HTTP 400 and RATELIMITED in the body, not with a 429.
    if code == "RATELIMITED" or kind == "ratelimited":
        raise RateLimited(message, retry_after=_retry_after(response), status=status)
    if code in ("AUTHENTICATION_ERROR", "FORBIDDEN") or kind in (
        "authentication error",
        "forbidden",
    ):
        raise AuthFailed(message, status=status)
    if code == "ENTITY_NOT_FOUND" or "not found" in raw.lower() or "could not find" in shown:
        raise NotFound(message, status=status)
    if status >= 500 or code == "INTERNAL_SERVER_ERROR":
        raise TrackerUnavailable(message, status=status, retry_after=_optional_retry(response))
    raise BadRequest(message, status=status)


def _http_error(operation: str, status: int, response: requests.Response) -> NoReturn:
    reason = response.reason or "no details"
    message = f"Linear {operation} failed with {status}: {reason}"
    if status == 429:
        raise RateLimited(message, retry_after=_retry_after(response), status=status)
    if status >= 500 or status == 408:
        raise TrackerUnavailable(message, status=status, retry_after=_optional_retry(response))
    if status in (401, 403):
        raise AuthFailed(message, status=status)
    if status == 404:
        raise NotFound(message, status=status)
    if status >= 400:
        raise BadRequest(message, status=status)
    raise TrackerError(f"Linear {operation} answered {status} without data", status=status)


def _error_text(error: Mapping[str, Any]) -> str:
    extensions = error.get("extensions")
    ext = extensions if isinstance(extensions, Mapping) else {}
    return str(ext.get("userPresentableMessage") or error.get("message") or "unknown error")


def _optional_retry(response: requests.Response) -> float | None:
    return parse_retry_after(response.headers.get("Retry-After"))


def _retry_after(response: requests.Response) -> float:
    """Pick the wait from Retry-After, else from whichever exhausted budget resets last."""
    explicit = _optional_retry(response)
    if explicit is not None:
        return explicit
    headers = response.headers
    waits = []
    for budget in ("Requests", "Complexity", "Endpoint-Requests"):
        reset = retry_after_from_epoch_ms(headers.get(f"X-RateLimit-{budget}-Reset"))
        if reset is not None and headers.get(f"X-RateLimit-{budget}-Remaining", "0") == "0":
            waits.append(reset)
    if not waits:
        reset = retry_after_from_epoch_ms(headers.get("X-RateLimit-Requests-Reset"))
        waits = [reset] if reset is not None else []
    return max(waits) if waits else DEFAULT_RETRY_AFTER


def _nodes(connection: object) -> list[Mapping[str, Any]]:
    if isinstance(connection, Mapping):
        nodes = connection.get("nodes")
        if isinstance(nodes, list):
            return [node for node in nodes if isinstance(node, Mapping)]
    return []


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _team_id(node: Mapping[str, Any]) -> str | None:
    team = node.get("team")
    return str(team["id"]) if isinstance(team, Mapping) and team.get("id") else None


def _page(connection: Mapping[str, Any]) -> tuple[list[dict[str, Any]], bool, str]:
    nodes = [dict(node) for node in _nodes(connection)]
    info = connection.get("pageInfo")
    page_info = info if isinstance(info, Mapping) else {}
    return nodes, bool(page_info.get("hasNextPage")), str(page_info.get("endCursor") or "")
