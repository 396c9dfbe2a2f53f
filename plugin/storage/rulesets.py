"""Rule set versions per tenant, tracker and project, each kept with its YAML."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import ColumnElement, func, insert, select
from sqlalchemy.orm import Session

from plugin.storage.models import RulesetRow


def save_ruleset(
    session: Session,
    *,
    tenant_id: int | None,
    tracker: str | None,
    project: str | None,
    source_text: str,
    source_kind: str,
    source_path: str | None,
    author: str,
    note: str,
    now: datetime,
) -> RulesetRow:
    """Store a rule set as the next version of its (tenant, tracker, project) scope."""
    next_version = (
        select(func.coalesce(func.max(RulesetRow.version), 0) + 1)
        .where(*_scope(tenant_id, tracker, project))
        .scalar_subquery()
    )
    statement = (
        insert(RulesetRow)
        .values(
            tenant_id=tenant_id,
            tracker=tracker,
            project=project,
            version=next_version,
            source_text=source_text,
            source_kind=source_kind,
            source_path=source_path,
            author=author,
            note=note,
            created_at=now,
        )
        .returning(RulesetRow)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Writers to one scope take turns until commit, so each reads the version the previous
        # one stored; the unique index stays as the backstop. SQLite needs no lock: it runs the
        # whole INSERT, subquery included, under its single write lock.
        session.execute(
            select(func.pg_advisory_xact_lock(_scope_lock_key(tenant_id, tracker, project)))
        )
    return session.scalars(statement).one()


def latest_ruleset(
    session: Session, *, tenant_id: int | None, tracker: str | None, project: str | None
) -> RulesetRow | None:
    """Return the newest version saved for exactly this scope."""
    return session.scalars(
        select(RulesetRow)
        .where(*_scope(tenant_id, tracker, project))
        .order_by(RulesetRow.version.desc())
        .limit(1)
    ).first()


def ruleset_history(
    session: Session, *, tenant_id: int | None, tracker: str | None, project: str | None
) -> list[RulesetRow]:
    """Return every version saved for exactly this scope, newest first."""
    return list(
        session.scalars(
            select(RulesetRow)
            .where(*_scope(tenant_id, tracker, project))
            .order_by(RulesetRow.version.desc())
        )
    )


def _scope(
    tenant_id: int | None, tracker: str | None, project: str | None
) -> list[ColumnElement[bool]]:
    # None means "any" and is stored as NULL, which ``=`` never matches.
    return [
        column.is_(None) if value is None else column == value
        for column, value in (
            (RulesetRow.tenant_id, tenant_id),
            (RulesetRow.tracker, tracker),
            (RulesetRow.project, project),
        )
    ]


def _scope_lock_key(tenant_id: int | None, tracker: str | None, project: str | None) -> int:
    scope = f"leanguard.rulesets\0{tenant_id}\0{tracker}\0{project}".encode()
    return int.from_bytes(hashlib.blake2b(scope, digest_size=8).digest(), "big", signed=True)
