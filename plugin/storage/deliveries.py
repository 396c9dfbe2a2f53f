"""The inbox: deliveries from acceptance through processing to done, ignored or dead."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, lru_cache
from typing import Any

import psycopg
from psycopg.types.json import Json
from sqlalchemy import (
    ColumnElement,
    Connection,
    Text,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

from plugin.storage.models import Delivery, DeliveryState
from plugin.storage.types import UTCDateTime
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
    on_postgresql = connection.dialect.name == "postgresql"
    if on_postgresql:
        # The rows reach the driver without SQLAlchemy's column types; apply the timestamp
        # columns' rule (aware, in UTC) here.
        now = _TIMESTAMP.process_bind_param(now, connection.dialect) or now
    rows = [
        (
            new.tenant_id,
            new.event.tracker,
            new.event.delivery_id,
            new.event.event_type,
            now,
            # The document goes to psycopg as the UTF-8 JSON it is, typed json: no text to
            # encode, no cast. SQLite's JSON column stores text.
            (
                Json(new.event.to_json(), dumps=_as_is)
                if on_postgresql
                else new.event.to_json().decode("utf-8")
            ),
            DeliveryState.RECEIVED.value if new.event.needs_work else DeliveryState.IGNORED.value,
            0,
            now,
        )
        for new in deliveries
    ]
    result: Iterable[Sequence[Any]]
    if on_postgresql:
        result = _insert_with_psycopg(connection, rows)
    else:
        statement = _sqlite_store_statement()
        named = [dict(zip(_STORED_COLUMNS, row, strict=True)) for row in rows]
        # One row runs as a plain execute: the many-rows path costs more than a lone row needs.
        result = connection.execute(statement, named[0] if len(named) == 1 else named)
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


_STORED_COLUMNS = (
    "tenant_id",
    "tracker",
    "delivery_id",
    "event_type",
    "received_at",
    "payload",
    "state",
    "attempts",
    "updated_at",
)
"""The columns a new delivery's row is written with, in the order of ``store_deliveries``' rows."""

# ON CONFLICT DO NOTHING waits for a concurrent insert of the same id to settle, so exactly one
# of several web processes receiving a redelivery stores it. The returned keys tell which rows
# of a batch were new; conflicting rows return nothing.
_CONFLICT_KEY = ("tenant_id", "delivery_id")
_RETURNED = ("id", "tenant_id", "delivery_id")


_TIMESTAMP = UTCDateTime()


def _insert_with_psycopg(connection: Connection, rows: list[tuple[Any, ...]]) -> list[Any]:
    """Run the inbox INSERT for ``rows`` on a psycopg cursor; return the rows it returns.

    This is the busiest statement of the service, and SQLAlchemy's work around one statement
    (compiling or looking up, binding, an execution context, a result object) costs a web
    process about as much as psycopg's own; here it goes to psycopg as SQL text. Its errors
    are raised as SQLAlchemy's, as any other statement's would be, and a dropped connection is
    invalidated, which is what callers retry on.
    """
    sql = _postgresql_store_sql(len(rows))
    params = tuple(value for row in rows for value in row)
    pooled = connection.connection
    driver = pooled.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise TypeError(f"expected a psycopg connection, got {type(driver).__name__}")
    with driver.cursor() as cursor:
        try:
            cursor.execute(sql, params, prepare=True)
            return cursor.fetchall()
        except psycopg.Error as exc:
            dropped = connection.dialect.is_disconnect(
                exc,  # type: ignore[arg-type]  # psycopg's Error is the DB-API Error
                pooled.dbapi_connection,
                None,
            )
            if dropped:
                connection.invalidate(exc)
            # The parameters hold webhook bodies: keep them out of the error's text.
            raise DBAPIError.instance(
                sql,
                None,
                exc,
                psycopg.Error,
                hide_parameters=True,
                connection_invalidated=dropped,
                dialect=connection.dialect,
            ) from exc


def _as_is(document: bytes) -> bytes:
    """Return JSON that is JSON already (the ``dumps`` of psycopg's Json wrapper)."""
    return document


@lru_cache(maxsize=64)
def _postgresql_store_sql(rows: int) -> str:
    """Return the inbox INSERT for ``rows`` rows as PostgreSQL SQL text with %s placeholders."""
    group = "(" + ", ".join(["%s"] * len(_STORED_COLUMNS)) + ")"
    return (
        f"INSERT INTO {Delivery.__tablename__} ({', '.join(_STORED_COLUMNS)}) "
        f"VALUES {', '.join([group] * rows)} "
        f"ON CONFLICT ({', '.join(_CONFLICT_KEY)}) DO NOTHING RETURNING {', '.join(_RETURNED)}"
    )


@cache
def _sqlite_store_statement() -> Executable:
    """Build the inbox INSERT for SQLite once; every webhook runs it with new parameters."""
    table = Delivery.__table__
    # The payload arrives as JSON text: bound as the JSON column it would be encoded again, as
    # one string. SQLite stores a JSON column as text.
    return (
        sqlite.insert(Delivery)
        .values(payload=bindparam("payload", type_=Text))
        .on_conflict_do_nothing(index_elements=[table.c[name] for name in _CONFLICT_KEY])
        .returning(*(table.c[name] for name in _RETURNED))
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
