"""The inbox: deliveries from acceptance through processing to done, ignored or dead."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

from plugin.storage.models import Delivery, DeliveryState
from webhooks.events import InboundEvent

MAX_ERROR_LENGTH = 10_000
"""Longer error texts are cut to their end, where the cause of a traceback is."""


def store_delivery(
    session: Session, *, tenant_id: int, event: InboundEvent, now: datetime
) -> tuple[int, bool]:
    """Store a delivery once per (tenant, delivery id); return its row id and True if new."""
    state = DeliveryState.RECEIVED if event.needs_work else DeliveryState.IGNORED
    connection = session.connection()
    inserted = connection.scalar(
        _store_statement(connection.dialect.name),
        {
            "tenant_id": tenant_id,
            "tracker": event.tracker,
            "delivery_id": event.delivery_id,
            "event_type": event.event_type,
            "received_at": now,
            "payload": event.to_dict(),
            "state": state,
            "attempts": 0,
            "updated_at": now,
        },
    )
    if inserted is not None:
        return int(inserted), True
    # Only the id: the webhook path must not load and decode the stored body again.
    existing = session.scalar(
        select(Delivery.id).where(
            Delivery.tenant_id == tenant_id, Delivery.delivery_id == event.delivery_id
        )
    )
    if existing is None:
        raise LookupError(f"delivery {event.delivery_id} vanished while it was being stored")
    return existing, False


@cache
def _store_statement(dialect: str) -> Executable:
    """Build the inbox INSERT once per dialect; every webhook runs it with new parameters."""
    # This is the busiest statement of the service: built once and run on the connection,
    # it skips both the ORM's bulk-insert path and rebuilding the statement per request.
    # ON CONFLICT DO NOTHING waits for a concurrent insert of the same id to settle, so
    # exactly one of several web processes receiving a redelivery stores it.
    table = Delivery.__table__
    columns = (table.c.tenant_id, table.c.delivery_id)
    if dialect == "postgresql":
        return (
            postgresql.insert(Delivery)
            .on_conflict_do_nothing(index_elements=columns)
            .returning(table.c.id)
        )
    return (
        sqlite.insert(Delivery).on_conflict_do_nothing(index_elements=columns).returning(table.c.id)
    )


def accept_delivery(
    session: Session, *, tenant_id: int, event: InboundEvent, now: datetime
) -> tuple[Delivery, bool]:
    """Store a delivery once per (tenant, delivery id) and return its row; True if it was new."""
    delivery_pk, new = store_delivery(session, tenant_id=tenant_id, event=event, now=now)
    delivery = session.get(Delivery, delivery_pk)
    if delivery is None:
        raise LookupError(f"delivery {delivery_pk} vanished while it was being stored")
    return delivery, new


def _claimable(now: datetime) -> ColumnElement[bool]:
    return or_(
        Delivery.state == DeliveryState.RECEIVED,
        and_(
            Delivery.state.in_([DeliveryState.RETRYING, DeliveryState.PROCESSING]),
            # For retrying this is the retry time; for processing it is the end of a worker's
            # lease, past which that worker is taken to have died.
            Delivery.next_attempt_at <= now,
        ),
    )


def claim_delivery(
    session: Session, *, delivery_pk: int, now: datetime, lease_s: float
) -> Delivery | None:
    """Take a delivery for processing under a lease; None if it is not claimable now."""
    # One conditional UPDATE is the whole claim: of two workers racing, only one matches.
    return session.scalars(
        update(Delivery)
        .where(Delivery.id == delivery_pk, _claimable(now))
        .values(
            state=DeliveryState.PROCESSING,
            attempts=Delivery.attempts + 1,
            next_attempt_at=now + timedelta(seconds=lease_s),
            updated_at=now,
        )
        .returning(Delivery),
        execution_options={"populate_existing": True},
    ).one_or_none()


def complete_delivery(session: Session, *, delivery_pk: int, now: datetime) -> None:
    """Mark a claimed delivery done."""
    _finish(session, delivery_pk, now, state=DeliveryState.DONE, next_attempt_at=None)


def fail_delivery(
    session: Session,
    *,
    delivery_pk: int,
    error: str,
    retry_at: datetime | None,
    now: datetime,
) -> None:
    """Record a failed attempt: retry at ``retry_at``, or dead-letter it when None."""
    _finish(
        session,
        delivery_pk,
        now,
        state=DeliveryState.DEAD if retry_at is None else DeliveryState.RETRYING,
        next_attempt_at=retry_at,
        last_error=error[-MAX_ERROR_LENGTH:],
    )


def _finish(
    session: Session,
    delivery_pk: int,
    now: datetime,
    *,
    state: DeliveryState,
    next_attempt_at: datetime | None,
    **values: object,
) -> None:
    # Only a claimed delivery is finished: a worker whose lease ran out and whose delivery
    # another worker has since completed must not move it back.
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_pk, Delivery.state == DeliveryState.PROCESSING)
        .values(state=state, next_attempt_at=next_attempt_at, updated_at=now, **values)
    )


def due_deliveries(
    session: Session, *, now: datetime, limit: int, received_before: datetime | None = None
) -> list[int]:
    """Return ids of deliveries waiting for a worker, oldest first, for the sweeper.

    ``received_before`` leaves out ``received`` deliveries that arrived at or after it: the web
    process enqueued those itself a moment ago, so only older ones can have lost their job.
    Retries and expired leases have their own due time and are never held back.
    """
    due = _claimable(now)
    if received_before is not None:
        due = and_(
            due,
            or_(
                Delivery.state != DeliveryState.RECEIVED,
                Delivery.received_at < received_before,
            ),
        )
    return list(session.scalars(select(Delivery.id).where(due).order_by(Delivery.id).limit(limit)))


def dead_deliveries(session: Session, *, tenant_id: int | None, limit: int) -> list[Delivery]:
    """Return dead-lettered deliveries, most recently failed first."""
    query = select(Delivery).where(Delivery.state == DeliveryState.DEAD)
    if tenant_id is not None:
        query = query.where(Delivery.tenant_id == tenant_id)
    return list(
        session.scalars(query.order_by(Delivery.updated_at.desc(), Delivery.id.desc()).limit(limit))
    )


def delivery_counts(session: Session) -> dict[str, int]:
    """Count deliveries by state, every state included."""
    counts = {str(state): 0 for state in DeliveryState}
    rows = session.execute(select(Delivery.state, func.count()).group_by(Delivery.state))
    for state, count in rows:
        counts[state] = count
    return counts
