"""Re-evaluation jobs: a durable record of each background re-check after a rule-set change."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from plugin.storage.models import Base


class ReevaluationState(StrEnum):
    """Where a re-evaluation job is."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        """Tell whether the job will not move any more."""
        return self in (ReevaluationState.DONE, ReevaluationState.FAILED)


_STATES = ", ".join(repr(str(state)) for state in ReevaluationState)


class ReevaluationRow(Base):
    """One re-evaluation of a project's open items (or a tenant's, after a default changed)."""

    __tablename__ = "reevaluations"
    __table_args__ = (
        CheckConstraint(f"state IN ({_STATES})", name="state"),
        Index("ix_reevaluations_tenant_id_tracker_project", "tenant_id", "tracker", "project"),
        Index("ix_reevaluations_state_updated_at", "state", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    tracker: Mapped[str] = mapped_column(String(16))
    project: Mapped[str | None] = mapped_column(String(255))
    """The project whose items are re-checked; None for every project of the tenant."""
    ruleset_version: Mapped[int | None]
    """The saved version that asked for the re-check."""
    requested_by: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    """Items re-checked so far, failed ones included."""
    failed: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    """Moves on every item, so a job nobody works on any more can be told from a slow one."""
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


def create_reevaluation(
    session: Session,
    *,
    tenant_id: int,
    tracker: str,
    project: str | None,
    ruleset_version: int | None,
    requested_by: str,
    now: datetime,
) -> ReevaluationRow:
    """Record a queued job."""
    row = ReevaluationRow(
        tenant_id=tenant_id,
        tracker=tracker,
        project=project,
        ruleset_version=ruleset_version,
        requested_by=requested_by,
        state=ReevaluationState.QUEUED.value,
        total=0,
        done=0,
        failed=0,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def get_reevaluation(session: Session, job_id: int) -> ReevaluationRow | None:
    """Return a job by id."""
    return session.get(ReevaluationRow, job_id)


def latest_reevaluation(
    session: Session, *, tenant_id: int, tracker: str, project: str | None
) -> ReevaluationRow | None:
    """Return the newest job for a scope."""
    scope = (
        ReevaluationRow.project.is_(None) if project is None else ReevaluationRow.project == project
    )
    return session.scalars(
        select(ReevaluationRow)
        .where(ReevaluationRow.tenant_id == tenant_id, ReevaluationRow.tracker == tracker, scope)
        .order_by(ReevaluationRow.id.desc())
        .limit(1)
    ).first()


def start_reevaluation(session: Session, job_id: int, *, total: int, now: datetime) -> None:
    """Mark a job running over ``total`` items, counting from zero (a restart counts again)."""
    session.execute(
        update(ReevaluationRow)
        .where(ReevaluationRow.id == job_id)
        .values(
            state=ReevaluationState.RUNNING.value,
            total=total,
            done=0,
            failed=0,
            last_error=None,
            started_at=now,
            finished_at=None,
            updated_at=now,
        )
    )


def count_item(session: Session, job_id: int, *, error: str | None, now: datetime) -> None:
    """Count one item as re-checked, failed when ``error`` says why."""
    # Increments in SQL, so progress read by the API never goes backwards.
    values: dict[str, object] = {"done": ReevaluationRow.done + 1, "updated_at": now}
    if error is not None:
        values["failed"] = ReevaluationRow.failed + 1
        values["last_error"] = error[-2000:]
    session.execute(update(ReevaluationRow).where(ReevaluationRow.id == job_id).values(**values))


def finish_reevaluation(
    session: Session, job_id: int, *, state: ReevaluationState, error: str | None, now: datetime
) -> None:
    """Mark a job done or failed."""
    values: dict[str, object] = {"state": state.value, "finished_at": now, "updated_at": now}
    if error is not None:
        values["last_error"] = error[-2000:]
    session.execute(update(ReevaluationRow).where(ReevaluationRow.id == job_id).values(**values))


def stale_reevaluations(session: Session, *, older_than: datetime) -> list[int]:
    """Return unfinished jobs that nobody has moved since ``older_than`` (their worker died)."""
    return list(
        session.scalars(
            select(ReevaluationRow.id)
            .where(
                ReevaluationRow.state.in_(
                    [ReevaluationState.QUEUED.value, ReevaluationState.RUNNING.value]
                ),
                ReevaluationRow.updated_at < older_than,
            )
            .order_by(ReevaluationRow.id)
        )
    )
