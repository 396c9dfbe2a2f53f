"""Backfill: import a project's epics with their history, evaluate them, store the results."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from plugin.followup import reminder_due
from plugin.mappers import jira_issue_to_item
from plugin.mappers._json import as_list, as_map, text
from plugin.processing import backoff, map_item
from plugin.reports.history import (
    Timeline,
    jira_timeline,
    linear_issue_timeline,
    linear_project_timeline,
)
from plugin.runtime import Runtime
from plugin.storage import Tenant, get_or_create_tenant
from plugin.storage.backfills import (
    BackfillRow,
    BackfillState,
    note_backfill,
    record_page,
    save_timelines,
    schedule_reminder,
    start_backfill,
    store_page,
)
from plugin.trackers.errors import RateLimited, TrackerError, TrackerUnavailable
from plugin.trackers.jira import JiraClient
from plugin.trackers.linear import LinearClient
from rules import Evaluation, RuleSet, WorkItem, evaluate

log = logging.getLogger(__name__)

T = TypeVar("T")
Progress = Callable[[int, int | None], None]
"""Told (items evaluated so far, items expected or None) after every page."""

MAX_TRIES = 8
"""Tries of one tracker call before the backfill stops (it can be resumed later)."""
MAX_WAIT_S = 1800.0
"""The most a backfill waits on rate limits in a row before it stops."""
JIRA_PAGE = 100
LINEAR_PAGE = 10
TRACKERS = ("jira", "linear")


class BackfillError(Exception):
    """A backfill that cannot start or cannot go on."""


@dataclass(frozen=True, slots=True)
class Imported:
    """One epic read from the tracker, ready to store."""

    item: WorkItem
    evaluation: Evaluation
    timeline: Timeline
    ruleset: RuleSet


class Backfiller:
    """Runs one project's backfill page by page, storing the cursor after each page."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_wait_s: float = MAX_WAIT_S,
        review_days: int = 30,
    ) -> None:
        self.runtime = runtime
        self.sleep = sleep
        self.clock = clock
        self.max_wait_s = max_wait_s
        self.review_days = review_days

    def tenant_for(self, tracker: str) -> Tenant:
        """Return the tenant a backfill of ``tracker`` works for, creating it if needed."""
        settings = self.runtime.settings
        database = self.runtime.database
        if tracker == "jira":
            if not settings.jira_url:
                raise BackfillError("set LEANGUARD_JIRA_URL (and an API token) to backfill Jira")
            site = settings.jira_url.rstrip("/")
        elif tracker == "linear":
            if not settings.linear_api_key:
                raise BackfillError("set LEANGUARD_LINEAR_API_KEY to backfill Linear")
            client = LinearClient(settings.linear_api_key, api_url=settings.linear_api_url)
            site = self._call(None, client.organization_id)
        else:
            raise BackfillError(f"unknown tracker {tracker!r}; choose jira or linear")
        with database.session() as session:
            tenant = get_or_create_tenant(session, tracker=tracker, site=site)
            session.expunge(tenant)
        return tenant

    def start(
        self, tenant: Tenant, project: str, *, requested_by: str = "", restart: bool = False
    ) -> BackfillRow:
        """Create or resume the project's backfill record; refuse one that is running."""
        with self.runtime.database.session() as session:
            row, started = start_backfill(
                session,
                tenant_id=tenant.id,
                tracker=tenant.tracker,
                project=project,
                now=self.clock(),
                requested_by=requested_by,
                restart=restart,
            )
            session.expunge(row)
        if not started:
            raise BackfillError(
                f"a backfill of {tenant.tracker} project {project} is running (#{row.id})"
            )
        return row

    def run(self, tenant: Tenant, backfill: BackfillRow, progress: Progress | None = None) -> None:
        """Work the backfill from its stored cursor to the last page."""
        client = self.runtime.client_for(tenant)
        if client is None:
            self._finish(backfill.id, BackfillState.FAILED, "No API credentials for this site.")
            raise BackfillError(f"no API credentials for {tenant.tracker} site {tenant.site!r}")
        done = backfill.items_evaluated
        total = backfill.items_total
        token = backfill.page_token
        first = token is None and backfill.pages_done == 0
        try:
            if isinstance(client, JiraClient):
                jql = (
                    f'project = "{_jql_quoted(backfill.project)}" AND issuetype = Epic ORDER BY key'
                )
                if first:
                    total = self._call(backfill.id, client.count_issues, jql)
                while True:
                    issues, token = self._call(
                        backfill.id,
                        client.search_epics,
                        jql,
                        page_token=token,
                        max_results=JIRA_PAGE,
                        changelog=True,
                    )
                    imported = self._jira_page(backfill.id, client, tenant, issues)
                    done += self._store(tenant, backfill.id, imported, len(issues), token, total)
                    if progress is not None:
                        progress(done, total)
                    if token is None:
                        break
            elif isinstance(client, LinearClient):
                while True:
                    nodes, token = self._call(
                        backfill.id,
                        client.list_epic_histories,
                        team=backfill.project,
                        after=token,
                        first=LINEAR_PAGE,
                    )
                    imported = self._linear_page(backfill.id, client, tenant, nodes)
                    done += self._store(tenant, backfill.id, imported, len(nodes), token, total)
                    if progress is not None:
                        progress(done, total)
                    if token is None:
                        break
            else:
                raise BackfillError(f"{tenant.tracker} cannot be backfilled")
        except TrackerError as exc:
            self._finish(
                backfill.id, BackfillState.FAILED, f"Stopped: {exc}. Run it again to resume."
            )
            raise BackfillError(f"the tracker refused: {exc}") from exc
        except Exception as exc:
            self._finish(backfill.id, BackfillState.FAILED, f"Stopped: {type(exc).__name__}.")
            raise
        self._finish(backfill.id, BackfillState.DONE, f"Done: {done} epics evaluated.")

    # Pages ---------------------------------------------------------------------------------

    def _jira_page(
        self,
        backfill_id: int,
        client: JiraClient,
        tenant: Tenant,
        issues: Sequence[Mapping[str, Any]],
    ) -> list[Imported]:
        if not issues:
            return []
        categories = self._call(backfill_id, client.status_categories)
        children = self._jira_children(backfill_id, client, [text(i.get("key")) for i in issues])
        out: list[Imported] = []
        for raw in issues:
            changelog = as_map(raw.get("changelog"))
            histories: Sequence[Mapping[str, Any]] = [
                as_map(h) for h in as_list(changelog.get("histories"))
            ]
            total = changelog.get("total")
            if isinstance(total, int) and total > len(histories):
                key = text(raw.get("key"))
                histories = self._call(backfill_id, client.issue_changelog, key)
            item = map_item(client, tenant, raw, "issue")
            ruleset = self.runtime.catalog.select(item.tracker, item.project)
            evaluation = evaluate(item, ruleset)
            timeline = jira_timeline(
                raw,
                item,
                ruleset,
                histories=histories,
                status_categories=categories,
                child_issues_done=children.get(item.key, 0),
                current=evaluation,
            )
            out.append(Imported(item, evaluation, timeline, ruleset))
        return out

    def _jira_children(
        self, backfill_id: int, client: JiraClient, keys: Sequence[str]
    ) -> Counter[str]:
        """Count each epic's child issues that are done (one search for the whole page)."""
        keys = [key for key in keys if key]
        if not keys:
            return Counter()
        listed = ", ".join(f'"{_jql_quoted(key)}"' for key in keys)
        # Company-managed Data Center projects link children through "Epic Link"; Cloud has
        # "parent" for every kind of project.
        relation = "parent" if client.cloud else '"Epic Link"'
        jql = f"{relation} in ({listed}) AND statusCategory = Done"
        counts: Counter[str] = Counter()
        token: str | None = None
        while True:
            page, token = self._call(
                backfill_id, client.search_epics, jql, page_token=token, max_results=100
            )
            names = client.field_names()
            for child in page:
                parent = jira_issue_to_item(child, site=client.base_url, field_names=names).parent
                if parent:
                    counts[parent] += 1
            if token is None:
                return counts

    def _linear_page(
        self,
        backfill_id: int,
        client: LinearClient,
        tenant: Tenant,
        nodes: Sequence[Mapping[str, Any]],
    ) -> list[Imported]:
        out: list[Imported] = []
        for node in nodes:
            kind = "project" if node.get("__typename") == "Project" else "issue"
            item = map_item(client, tenant, node, kind)
            ruleset = self.runtime.catalog.select(item.tracker, item.project)
            evaluation = evaluate(item, ruleset)
            if kind == "project":
                updates = self._rest(
                    backfill_id,
                    as_map(node.get("projectUpdates")),
                    client.project_updates,
                    text(node.get("id")),
                )
                timeline = linear_project_timeline(
                    node, item, ruleset, updates=updates, current=evaluation
                )
            else:
                history = self._rest(
                    backfill_id,
                    as_map(node.get("history")),
                    client.issue_history,
                    text(node.get("id")),
                )
                timeline = linear_issue_timeline(
                    node, item, ruleset, history=history, current=evaluation
                )
            out.append(Imported(item, evaluation, timeline, ruleset))
        return out

    def _rest(
        self,
        backfill_id: int,
        connection: Mapping[str, Any],
        fetch: Callable[..., tuple[list[dict[str, Any]], str | None]],
        node_id: str,
    ) -> list[Mapping[str, Any]]:
        """The nodes of a nested connection, with every further page fetched."""
        nodes: list[Mapping[str, Any]] = [as_map(n) for n in as_list(connection.get("nodes"))]
        info = as_map(connection.get("pageInfo"))
        cursor = text(info.get("endCursor")) if info.get("hasNextPage") else None
        while cursor:
            more, cursor = self._call(backfill_id, fetch, node_id, after=cursor)
            nodes += more
        return nodes

    # Storing -------------------------------------------------------------------------------

    def _store(
        self,
        tenant: Tenant,
        backfill_id: int,
        imported: Sequence[Imported],
        seen: int,
        next_token: str | None,
        total: int | None,
    ) -> int:
        """Store one page and its cursor in one transaction, so a resumed run never skips."""
        now = self.clock()
        with self.runtime.database.session() as session:
            stored = store_page(
                session,
                tenant_id=tenant.id,
                entries=[(entry.item, entry.evaluation) for entry in imported],
                now=now,
            )
            timelines = []
            for entry, (row_id, _) in zip(imported, stored, strict=True):
                values = entry.timeline.values()
                values.update(
                    work_item_id=row_id,
                    tracker=entry.item.tracker,
                    project=entry.item.project,
                    key=entry.item.key,
                    source="backfill",
                    synced_at=now,
                )
                timelines.append(values)
                self._remind(session, row_id, entry, now)
            save_timelines(session, tenant_id=tenant.id, rows=timelines)
            record_page(
                session,
                backfill_id=backfill_id,
                next_token=next_token,
                seen=seen,
                evaluated=len(imported),
                now=now,
                total=total,
            )
        return len(imported)

    def _remind(self, session: Any, work_item_id: int, entry: Imported, now: datetime) -> None:
        timeline = entry.timeline
        if timeline.done_at is None or timeline.canceled or timeline.outcome_review:
            return
        due, basis = reminder_due(entry.item, entry.ruleset, timeline.done_at, self.review_days)
        # History is not nagged about: only epics whose review is still ahead get a reminder.
        if due > now:
            schedule_reminder(session, work_item_id=work_item_id, due_at=due, basis=basis, now=now)

    # Tracker calls -------------------------------------------------------------------------

    def _call(
        self, backfill_id: int | None, call: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        """Make a tracker call, waiting out rate limits and outages within the bounds."""
        waited = 0.0
        for attempt in range(1, MAX_TRIES + 1):
            try:
                return call(*args, **kwargs)
            except (RateLimited, TrackerUnavailable) as exc:
                wait = exc.retry_after if exc.retry_after is not None else backoff(attempt) / 10
                if attempt == MAX_TRIES or waited + wait > self.max_wait_s:
                    raise
                reason = "rate limited" if isinstance(exc, RateLimited) else "unavailable"
                log.info("backfill.waiting", extra={"reason": reason, "wait_s": wait})
                if backfill_id is not None:
                    with self.runtime.database.session() as session:
                        note_backfill(
                            session,
                            backfill_id=backfill_id,
                            now=self.clock(),
                            message=f"The tracker is {reason}; waiting {wait:.0f} s.",
                            waited_s=wait,
                        )
                self.sleep(wait)
                waited += wait
        raise AssertionError("unreachable: the last try raises")

    def _finish(self, backfill_id: int, state: BackfillState, message: str) -> None:
        with self.runtime.database.session() as session:
            note_backfill(
                session, backfill_id=backfill_id, now=self.clock(), message=message, state=state
            )
        log.info("backfill.%s", state.value, extra={"backfill": backfill_id})


def run_in_background(
    runtime: Runtime, tenant: Tenant, project: str, *, requested_by: str
) -> BackfillRow:
    """Start (or resume) a backfill on a thread of this process and return its record."""
    backfiller = Backfiller(runtime)
    row = backfiller.start(tenant, project, requested_by=requested_by)

    def work() -> None:
        try:
            backfiller.run(tenant, row)
        except Exception:
            # The record says why it stopped; the page shows it and a new request resumes.
            log.exception("backfill.stopped", extra={"backfill": row.id})

    threading.Thread(target=work, name=f"leanguard-backfill-{row.id}", daemon=True).start()
    return row


def _jql_quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
