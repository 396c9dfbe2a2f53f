"""The inbox: deliveries from acceptance through processing to done, ignored or dead."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Text,
    and_,
    bindparam,
    cast,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

from plugin.storage.models import Delivery, DeliveryState
from webhooks.events import InboundEvent

MAX_ERROR_LENGTH = 10_000
"""Longer error texts are cut to their end, where the cause of a traceback is."""


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A verified delivery on its way into the inbox, with the tenant it belongs to."""

    tenant_id: int
    event: InboundEvent


def store_deliveries(
    connection: Connection, deliveries: Sequence[NewDelivery], *, now: datetime
) -> list[tuple[int, bool]]:
    """Store deliveries once per (tenant, delivery id), in one statement.

    Return each one's row id and whether it is new, in the order given. Of several copies of
    one delivery, in the batch or already stored, only the first stored is new.
    """
    rows = [
        {
            "tenant_id": new.tenant_id,
            "tracker": new.event.tracker,
            "delivery_id": new.event.delivery_id,
            "event_type": new.event.event_type,
            "received_at": now,
            "payload": new.event.to_json(),
            "state": DeliveryState.RECEIVED if new.event.needs_work else DeliveryState.IGNORED,
            "attempts": 0,
            "updated_at": now,
        }
        for new in deliveries
    ]
    statement = _store_statement(connection.dialect.name)
    # One row runs as a plain execute: the many-rows path has a cost a lone webhook need not pay.
    result = connection.execute(statement, rows[0] if len(rows) == 1 else rows)
    inserted = {(tenant_id, delivery_id): pk for pk, tenant_id, delivery_id in result}
    keys = [(new.tenant_id, new.event.delivery_id) for new in deliveries]
    missing = [key for key in keys if key not in inserted]
    existing = _stored_ids(connection, missing) if missing else {}
    outcomes: list[tuple[int, bool]] = []
    for key in keys:
        pk = inserted.pop(key, None)
        if pk is not None:
            outcomes.append((pk, True))
            existing[key] = pk
        elif key in existing:
            outcomes.append((existing[key], False))
        else:
            raise LookupError(f"delivery {key[1]} vanished while it was being stored")
    return outcomes


def store_delivery(
    session: Session, *, tenant_id: int, event: InboundEvent, now: datetime
) -> tuple[int, bool]:
    """Store a delivery once per (tenant, delivery id); return its row id and True if new."""
    return store_deliveries(session.connection(), [NewDelivery(tenant_id, event)], now=now)[0]


def _stored_ids(connection: Connection, keys: list[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Return the row ids of deliveries already stored, by (tenant id, delivery id)."""
    # Only the ids: the webhook path must not load and decode stored bodies again.
    found: dict[tuple[int, str], int] = {}
    for tenant_id in {tenant_id for tenant_id, _ in keys}:
        names = [name for owner, name in keys if owner == tenant_id]
        rows = connection.execute(
            select(Delivery.id, Delivery.delivery_id).where(
                Delivery.tenant_id == tenant_id, Delivery.delivery_id.in_(names)
            )
        )
        found.update({(tenant_id, name): pk for pk, name in rows})
    return found


@cache
def _store_statement(dialect: str) -> Executable:
    """Build the inbox INSERT once per dialect; every webhook runs it with new parameters."""
    # This is the busiest statement of the service: built once and run on the connection,
    # it skips both the ORM's bulk-insert path and rebuilding the statement per request.
    # ON CONFLICT DO NOTHING waits for a concurrent insert of the same id to settle, so
    # exactly one of several web processes receiving a redelivery stores it. The returned
    # keys tell which rows of a batch were new; conflicting rows return nothing.
    table = Delivery.__table__
    columns = (table.c.tenant_id, table.c.delivery_id)
    # The payload arrives as JSON text (InboundEvent.to_json): bound as the JSON column it would
    # be encoded again, as one string. PostgreSQL casts the text; SQLite stores JSON as text.
    payload: ColumnElement[Any] = bindparam("payload", type_=Text)
    if dialect == "postgresql":
        payload = cast(payload, postgresql.JSON)
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(Delivery)
        .values(payload=payload)
        .on_conflict_do_nothing(index_elements=columns)
        .returning(table.c.id, table.c.tenant_id, table.c.delivery_id)
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
