"""What a worker does with one delivery: fetch, map, evaluate, store, and reconcile the card."""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.cards import Card, build_card, card_hash, status_property
from plugin.logs import log_context
from plugin.mappers import jira_issue_to_item, linear_issue_to_item, linear_project_to_item
from plugin.metrics import record_rate_limit_wait
from plugin.rules_store import ruleset_for
from plugin.runtime import Runtime
from plugin.storage import (
    CARD_POSTING,
    CardRow,
    CardState,
    Tenant,
    claim_delivery,
    complete_delivery,
    fail_delivery,
    find_work_item,
    forget_card,
    get_card,
    mark_work_item_deleted,
    record_evaluation,
    save_card,
    upsert_work_item,
)
from plugin.trackers.base import TrackerClient
from plugin.trackers.errors import (
    AuthFailed,
    BadRequest,
    NotFound,
    RateLimited,
    TrackerError,
    TrackerUnavailable,
)
from plugin.trackers.jira import JiraClient
from rules import Evaluation, WorkItem, evaluate
from webhooks.events import InboundEvent, ItemRef

log = logging.getLogger(__name__)

LEASE_S = 300.0
"""How long a claim lasts by default (``LEANGUARD_LEASE_S``); a worker that dies mid-job loses
its claim after this."""
BACKOFF_BASE_S = 30.0
BACKOFF_CAP_S = 3600.0

OWN_CHANGE_FIELDS = frozenset({"labels", "labelIds", "comment", "updatedAt"})
"""Fields the service itself changes on an item; an update touching only these may be ours."""


class DeadEnd(Exception):
    """A delivery that cannot succeed however often it is retried."""


def utcnow() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


def backoff(attempts: int, retry_after: float | None = None) -> float:
    """Seconds before the next try: exponential, and never sooner than the tracker asked."""
    delay = min(BACKOFF_CAP_S, BACKOFF_BASE_S * float(2 ** max(0, attempts - 1)))
    return max(delay, retry_after or 0.0)


def process_delivery(runtime: Runtime, delivery_pk: int) -> str:
    """Claim a delivery and work it to a final or retry state; return the state it ends in."""
    database = runtime.database
    runtime.refresh_rules()
    lease_s = float(runtime.settings.lease_s)
    # The claim is one conditional UPDATE, committed as it runs; so are the reads of a job and
    # the final state, and none of them pays for a transaction around it.
    with database.autocommit_session() as session:
        claimed = claim_delivery(session, delivery_pk=delivery_pk, now=utcnow(), lease_s=lease_s)
        if claimed is None:
            return "not-claimed"
        event, attempts, received_at = claimed.event(), claimed.attempts, claimed.received_at
        tenant = session.get(Tenant, claimed.tenant_id)
        if tenant is None:
            raise LookupError(f"delivery {delivery_pk} has no tenant")
        session.expunge(tenant)
    extra = {"delivery_id": event.delivery_id, "tracker": event.tracker, "tenant": tenant.id}
    # Every line logged while this delivery is worked, the tracker clients' included, carries
    # its ids; check_item adds the item's.
    with log_context(**extra):
        return _process(runtime, delivery_pk, tenant, event, attempts, received_at, extra)


def _process(
    runtime: Runtime,
    delivery_pk: int,
    tenant: Tenant,
    event: InboundEvent,
    attempts: int,
    received_at: datetime,
    extra: Mapping[str, Any],
) -> str:
    # Coalescing trusts that a fetch made after the delivery arrived was worked to the end. On a
    # retry that fetch may be this delivery's own failed attempt, so a retry always fetches.
    coalesce_before = received_at if attempts == 1 else None
    try:
        _work(runtime, tenant, event, coalesce_before)
    except TrackerError as exc:
        return _failed(runtime, delivery_pk, attempts, exc, extra, exc.retryable, _wait(exc))
    except DeadEnd as exc:
        return _failed(runtime, delivery_pk, attempts, exc, extra, False, None)
    except Exception as exc:
        # An unexpected error may be passing (a database restart); retry it, visibly.
        log.exception("delivery.crashed", extra=extra)
        return _failed(runtime, delivery_pk, attempts, exc, extra, True, None)
    with runtime.database.autocommit_session() as session:
        complete_delivery(session, delivery_pk=delivery_pk, now=utcnow())
    log.info("delivery.done", extra=extra)
    return "done"


def _wait(exc: TrackerError) -> float | None:
    return getattr(exc, "retry_after", None)


def _failed(
    runtime: Runtime,
    delivery_pk: int,
    attempts: int,
    exc: BaseException,
    extra: Mapping[str, Any],
    retryable: bool,
    retry_after: float | None,
) -> str:
    now = utcnow()
    retry_at = None
    if retryable and attempts < runtime.settings.max_attempts:
        retry_at = now + timedelta(seconds=backoff(attempts, retry_after))
    error = f"{type(exc).__name__}: {exc}"
    with runtime.database.session() as session:
        fail_delivery(session, delivery_pk=delivery_pk, error=error, retry_at=retry_at, now=now)
    state = "retrying" if retry_at else "dead"
    level = logging.WARNING if retry_at else logging.ERROR
    log.log(level, f"delivery.{state}", extra={**extra, "error": error, "attempts": attempts})
    if isinstance(exc, RateLimited):
        log.info("tracker.rate-limited", extra={**extra, "retry_after": exc.retry_after})
        if retry_at is not None:
            record_rate_limit_wait(str(extra["tracker"]), (retry_at - now).total_seconds())
    return state


def _work(
    runtime: Runtime, tenant: Tenant, event: InboundEvent, received_at: datetime | None
) -> None:
    if not event.needs_work or not event.refs:
        return
    client = runtime.client_for(tenant)
    if client is None:
        raise DeadEnd(
            f"no API credentials for {tenant.tracker} site {tenant.site!r}; set "
            + (
                "LEANGUARD_JIRA_URL and LEANGUARD_JIRA_API_TOKEN"
                if tenant.tracker == "jira"
                else "LEANGUARD_LINEAR_API_KEY"
            )
        )
    if _caused_by_us(event, client, runtime.settings.card_label):
        log.info("delivery.own-change", extra={"delivery_id": event.delivery_id})
        return
    for ref in event.refs:
        with item_lock(runtime, tenant.id, ref.key), log_context(item=ref.key):
            check_item(runtime, tenant, client, ref, received_at=received_at)


def _caused_by_us(event: InboundEvent, client: TrackerClient, label: str) -> bool:
    """Tell whether an update only echoes the service's own writes (comment, label, property)."""
    if event.actor_id is None or event.event_type.endswith(("created", "create")):
        return False
    if any(ref.deleted for ref in event.refs):
        # The service deletes no items, and a deletion has no changelog to tell by.
        return False
    if event.actor_id != client.identity():
        return False
    # The bot may be a real person's account (an API token); their other edits still count.
    return all(change.field in OWN_CHANGE_FIELDS for change in event.changes)


def check_item(
    runtime: Runtime,
    tenant: Tenant,
    client: TrackerClient,
    ref: ItemRef,
    *,
    received_at: datetime | None = None,
) -> Evaluation | None:
    """Fetch one item's current state, evaluate it, store the result and reconcile its card."""
    database = runtime.database
    if ref.deleted:
        with database.session() as session:
            mark_work_item_deleted(
                session, tenant_id=tenant.id, item_id_or_key=ref.key, now=utcnow()
            )
        return None
    if received_at is not None:
        with database.autocommit_session() as session:
            known = find_work_item(session, tenant_id=tenant.id, tracker=ref.tracker, key=ref.key)
            # Coalescing: a fetch that started after this delivery arrived already saw its change.
            if known is not None and known.updated_at > received_at:
                log.info("item.coalesced", extra={"item": ref.key})
                return None
    fetched_at = utcnow()
    raw = client.fetch_item(ref.key, ref.kind)
    if raw is None:
        with database.session() as session:
            mark_work_item_deleted(
                session, tenant_id=tenant.id, item_id_or_key=ref.key, now=utcnow()
            )
        return None
    item = map_item(client, tenant, raw, ref.kind)
    ruleset = ruleset_for(runtime, tenant.id, item.tracker, item.project)
    evaluation = evaluate(item, ruleset)
    # The caller holds the lock of ref.key, but deliveries name an item by key (issue events)
    # or by id (issue links): storing and carding also lock the item's own id, or two workers
    # reaching one item both ways at once would each post a card.
    with _also_locked(runtime, tenant.id, held=ref.key, name=item.id or item.key):
        with database.session() as session:
            row, applied = upsert_work_item(session, tenant_id=tenant.id, item=item, now=fetched_at)
            if not applied:
                log.info("item.stale-snapshot", extra={"item": item.key})
                return None
            record_evaluation(
                session, work_item=row, evaluation=evaluation, evaluated_at=fetched_at
            )
            row_id = row.id
        reconcile_card(runtime, client, row_id, item, evaluation, ref.kind)
    return evaluation


def map_item(client: TrackerClient, tenant: Tenant, raw: Mapping[str, Any], kind: str) -> WorkItem:
    """Turn a tracker's raw item into a :class:`WorkItem`."""
    if isinstance(client, JiraClient):
        return jira_issue_to_item(raw, site=tenant.site, field_names=client.field_names())
    if kind == "project":
        return linear_project_to_item(raw, site=tenant.site)
    return linear_issue_to_item(raw, site=tenant.site)


def reconcile_card(
    runtime: Runtime,
    client: TrackerClient,
    work_item_id: int,
    item: WorkItem,
    evaluation: Evaluation,
    kind: str,
) -> None:
    """Bring the item's single card in line with its evaluation, writing only what changed."""
    settings = runtime.settings
    details = runtime.details_url(item)
    # Linear's mutations take ids: a project's slug, its key here, is no projectId.
    target = item.id if item.tracker == "linear" and item.id else item.key
    with runtime.database.autocommit_session() as session:
        stored = get_card(session, work_item_id=work_item_id)
        existing = _StoredCard.of(stored) if stored is not None else None
    if existing is not None and existing.posting:
        # An earlier attempt began to post the card and never stored the comment's id: it may
        # have died after the tracker took the comment. Adopt that comment if it is there.
        found = client.find_card(target, kind)
        log.info("card.adopted" if found else "card.never-posted", extra={"item": item.key})
        if found:
            existing = existing._replace(comment_id=found, content_hash="")
        else:
            # Nothing was posted; only the label (set after an earlier card) is left to know.
            existing = existing._replace(content_hash="") if existing.label_applied else None
            with runtime.database.session() as session:
                _restore_card(session, work_item_id, existing)
    failing = bool(evaluation.failing_rules())
    showing = existing is not None and existing.open and existing.comment_id is not None
    if not failing and not showing:
        return  # an item that never failed (or whose card is closed) gets no writes at all
    card = build_card(evaluation, details_url=details, show_passed=existing is not None)
    # The hash is of what asks for work (the card without ticked rules): a first card leaves the
    # passing rules out and later edits tick them, so hashing the card as shown would edit an
    # unchanged card once more on the next evaluation.
    digest = card_hash(build_card(evaluation, details_url=details, show_passed=False))
    now = utcnow()
    label_applied = existing is not None and existing.label_applied
    if failing:
        comment_id = existing.comment_id if existing and not existing.deleted else None
        if comment_id is None:
            comment_id = _post_card(runtime, client, work_item_id, target, kind, card, existing)
        elif existing and (existing.content_hash != digest or not existing.open):
            try:
                client.edit_card(target, kind, comment_id, card)
            except NotFound:
                comment_id = _post_card(runtime, client, work_item_id, target, kind, card, existing)
        else:
            return
        state = CardState.OPEN
        if settings.card_label and not label_applied:
            client.set_label(target, kind, settings.card_label, True)
            label_applied = True
    else:
        assert existing is not None and existing.comment_id is not None
        comment_id = existing.comment_id
        if settings.resolved_card == "delete":
            client.delete_card(target, kind, comment_id)
            state = CardState.DELETED
        else:
            try:
                client.edit_card(target, kind, comment_id, card)
            except NotFound:
                # Someone deleted the card by hand; a resolved item needs no new one.
                log.info("card.gone", extra={"item": item.key})
            state = CardState.RESOLVED
        if label_applied:
            client.set_label(target, kind, settings.card_label, False)
            label_applied = False
    client.publish_status(
        target, kind, status_property(evaluation, details_url=details, evaluated_at=now)
    )
    with runtime.database.session() as session:
        save_card(
            session,
            work_item_id=work_item_id,
            comment_id=comment_id,
            content_hash=digest,
            state=state,
            label_applied=label_applied,
            now=now,
        )
    log.info("card.reconciled", extra={"item": item.key, "state": state})


def _post_card(
    runtime: Runtime,
    client: TrackerClient,
    work_item_id: int,
    target: str,
    kind: str,
    card: Card,
    existing: _StoredCard | None,
) -> str:
    """Post a new card, recording first that a post is under way.

    Between the tracker taking the comment and the card row holding its id, a worker can die,
    time out or lose its connection; the retry (or the next delivery for the item) then finds
    the mark and adopts the comment (``find_card``) instead of posting a second card.
    """
    label_applied = existing is not None and existing.label_applied
    with runtime.database.session() as session:
        save_card(
            session,
            work_item_id=work_item_id,
            comment_id=None,
            content_hash=CARD_POSTING,
            state=CardState.OPEN,
            label_applied=label_applied,
            now=utcnow(),
        )
    try:
        return client.post_card(target, kind, card)
    except TrackerError as exc:
        if _not_posted(exc):
            # The tracker answered that it took nothing: no comment to look for next time.
            with runtime.database.session() as session:
                _restore_card(session, work_item_id, existing)
        raise


def _not_posted(exc: TrackerError) -> bool:
    """Tell whether a failed post certainly left no comment behind."""
    if isinstance(exc, RateLimited | AuthFailed | NotFound | BadRequest):
        return True
    # A 503 refuses the request; other 5xx answers, timeouts and dropped connections may come
    # after the tracker stored the comment.
    return isinstance(exc, TrackerUnavailable) and exc.status == 503


def _restore_card(session: Session, work_item_id: int, existing: _StoredCard | None) -> None:
    if existing is None:
        forget_card(session, work_item_id=work_item_id)
        return
    save_card(
        session,
        work_item_id=work_item_id,
        comment_id=existing.comment_id,
        content_hash=existing.content_hash,
        state=existing.state,
        label_applied=existing.label_applied,
        now=utcnow(),
    )


class _StoredCard(NamedTuple):
    """What reconciliation needs of a stored card, read inside its session."""

    comment_id: str | None
    content_hash: str
    state: str
    label_applied: bool

    @classmethod
    def of(cls, row: CardRow) -> _StoredCard:
        return cls(row.comment_id, row.content_hash, row.state, row.label_applied)

    @property
    def open(self) -> bool:
        return self.state == CardState.OPEN

    @property
    def deleted(self) -> bool:
        return self.state == CardState.DELETED

    @property
    def posting(self) -> bool:
        """A post began and its comment id was never stored (see ``_post_card``)."""
        return self.comment_id is None and self.content_hash == CARD_POSTING


@contextmanager
def _also_locked(runtime: Runtime, tenant_id: int, *, held: str, name: str) -> Iterator[None]:
    """Take the item lock ``name`` unless it is the one already ``held``."""
    # Only an item's id is ever locked second, so two workers never wait on each other in turn.
    if name == held:
        yield
        return
    with item_lock(runtime, tenant_id, name):
        yield


_local_locks: dict[str, threading.Lock] = {}
_local_locks_guard = threading.Lock()


@contextmanager
def item_lock(runtime: Runtime, tenant_id: int, key: str) -> Iterator[None]:
    """Serialise work on one item across workers, so two jobs never post two cards."""
    name = f"{tenant_id}:{key}"
    if runtime.database.dialect == "postgresql":
        lock_id = zlib.crc32(name.encode())
        # A session-level advisory lock needs no transaction: in autocommit, taking and
        # releasing it are one round trip each.
        with runtime.database.autocommit() as connection:
            connection.execute(select(func.pg_advisory_lock(lock_id)))
            try:
                yield
            finally:
                connection.execute(select(func.pg_advisory_unlock(lock_id)))
        return
    # SQLite serves one process (the embedded default); a process-wide lock is enough there.
    with _local_locks_guard:
        lock = _local_locks.setdefault(name, threading.Lock())
    with lock:
        yield
