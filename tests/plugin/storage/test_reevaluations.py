"""The re-evaluation jobs table: its migration, and progress that only moves forward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from plugin.storage import Base, Database, get_or_create_tenant
from plugin.storage.reevaluations import (
    ReevaluationRow,
    ReevaluationState,
    count_item,
    create_reevaluation,
    finish_reevaluation,
    get_reevaluation,
    latest_reevaluation,
    stale_reevaluations,
    start_reevaluation,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.filterwarnings("ignore:.*expression-based index:UserWarning")
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_the_migration_and_the_model_agree(database: Database) -> None:
    def ours(obj: object, name: str | None, kind: str, reflected: bool, other: object) -> bool:
        # Other tables belong to other revisions and their own tests; this one answers for
        # the table this revision creates.
        table = obj if kind == "table" else getattr(obj, "table", None)
        return getattr(table, "name", None) == ReevaluationRow.__tablename__

    with database.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": ours}
        )
        assert compare_metadata(context, Base.metadata) == []
    assert ReevaluationRow.__tablename__ in inspect(database.engine).get_table_names()


def test_downgrading_past_the_revision_drops_the_table(database: Database) -> None:
    with database.engine.begin() as connection:
        command.downgrade(database.alembic_config(connection), "0001")

    assert "reevaluations" not in inspect(database.engine).get_table_names()
    assert "rulesets" in inspect(database.engine).get_table_names()


def test_a_job_counts_its_items_and_finishes(database: Database) -> None:
    with database.session() as session:
        tenant = get_or_create_tenant(session, tracker="jira", site="https://a.atlassian.net")
        job = create_reevaluation(
            session,
            tenant_id=tenant.id,
            tracker="jira",
            project="PAY",
            ruleset_version=3,
            requested_by="admin",
            now=T0,
        )
        job_id, tenant_id = job.id, tenant.id
    with database.session() as session:
        start_reevaluation(session, job_id, total=3, now=T0 + timedelta(seconds=1))
        count_item(session, job_id, error=None, now=T0 + timedelta(seconds=2))
        count_item(session, job_id, error="TrackerError: 503", now=T0 + timedelta(seconds=3))
        count_item(session, job_id, error=None, now=T0 + timedelta(seconds=4))
        finish_reevaluation(
            session, job_id, state=ReevaluationState.DONE, error=None, now=T0 + timedelta(seconds=5)
        )
    with database.session() as session:
        row = get_reevaluation(session, job_id)
        latest = latest_reevaluation(session, tenant_id=tenant_id, tracker="jira", project="PAY")
        other = latest_reevaluation(session, tenant_id=tenant_id, tracker="jira", project=None)

    assert row is not None and latest is not None and latest.id == job_id
    assert (row.state, row.total, row.done, row.failed) == ("done", 3, 3, 1)
    assert row.last_error == "TrackerError: 503"
    assert row.started_at == T0 + timedelta(seconds=1)
    assert row.finished_at == T0 + timedelta(seconds=5)
    assert other is None


def test_only_unfinished_jobs_nobody_moved_are_stale(database: Database) -> None:
    with database.session() as session:
        tenant = get_or_create_tenant(session, tracker="jira", site="https://a.atlassian.net")
        ids = [
            create_reevaluation(
                session,
                tenant_id=tenant.id,
                tracker="jira",
                project=None,
                ruleset_version=None,
                requested_by="admin",
                now=T0 + timedelta(minutes=minutes),
            ).id
            for minutes in (0, 0, 30)
        ]
        finish_reevaluation(session, ids[1], state=ReevaluationState.FAILED, error="boom", now=T0)

    with database.session() as session:
        stale = stale_reevaluations(session, older_than=T0 + timedelta(minutes=10))

    assert stale == [ids[0]]


def test_a_state_outside_the_known_ones_is_refused(database: Database) -> None:
    with database.session() as session:
        tenant = get_or_create_tenant(session, tracker="jira", site="https://a.atlassian.net")
        job = create_reevaluation(
            session,
            tenant_id=tenant.id,
            tracker="jira",
            project="PAY",
            ruleset_version=1,
            requested_by="admin",
            now=T0,
        )
        job_id = job.id

    with pytest.raises(IntegrityError), database.session() as session:
        session.execute(
            text("UPDATE reevaluations SET state = 'paused' WHERE id = :id"), {"id": job_id}
        )
