"""The storage layer, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import TypeVar

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, func, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError, StatementError

from plugin.storage import (
    Base,
    Database,
    Delivery,
    DeliveryState,
    EvaluationRow,
    RulesetRow,
    Tenant,
    WorkItemRow,
    accept_delivery,
    claim_delivery,
    complete_delivery,
    dead_deliveries,
    default_database_url,
    delivery_counts,
    due_deliveries,
    fail_delivery,
    find_work_item,
    get_card,
    get_or_create_tenant,
    latest_evaluation,
    latest_results,
    latest_ruleset,
    mark_work_item_deleted,
    record_evaluation,
    ruleset_history,
    save_card,
    save_ruleset,
    upsert_work_item,
)
from plugin.storage import db as db_module
from rules.model import StatusCategory, WorkItem
from rules.result import Evaluation, Mode, Result, Severity, Status
from webhooks.events import InboundEvent, ItemRef

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEASE_S = 300.0
TABLES = {
    "tenants",
    "deliveries",
    "work_items",
    "evaluations",
    "cards",
    "rulesets",
    "reevaluations",
    "backfills",
    "epic_timelines",
    "outcome_reminders",
    "item_hygiene",
    "report_watermarks",
}

T = TypeVar("T")


# Fixtures ------------------------------------------------------------------------------------


# Builders ------------------------------------------------------------------------------------


def event(
    delivery_id: str = "d-1", *, needs_work: bool = True, key: str = "PROJ-1"
) -> InboundEvent:
    """Build a Jira issue-updated event."""
    return InboundEvent(
        tracker="jira",
        site="https://acme.atlassian.net",
        delivery_id=delivery_id,
        event_type="jira:issue_updated",
        needs_work=needs_work,
        refs=(ItemRef(tracker="jira", key=key, kind="epic"),),
        actor_id="557058:abc",
        changes=(),
        occurred_at=T0,
        payload={"webhookEvent": "jira:issue_updated", "issue": {"key": key}},
    )


def item(
    key: str = "PROJ-1",
    *,
    item_id: str = "10001",
    title: str = "Checkout redesign",
    updated: datetime | None = T0,
) -> WorkItem:
    """Build a Jira epic."""
    return WorkItem(
        tracker="jira",
        key=key,
        id=item_id,
        title=title,
        kind="epic",
        type_name="Epic",
        project=key.split("-")[0],
        labels=("checkout",),
        status="In Progress",
        status_category=StatusCategory.IN_PROGRESS,
        updated=updated,
    )


def evaluation(key: str = "PROJ-1", *, failing: bool = True) -> Evaluation:
    """Build an evaluation where the hypothesis is present and, if failing, the metric is not."""
    metric = Status.FAIL if failing else Status.PASS
    outcome = Result(
        kind="rule",
        name="outcome-fields",
        status=metric,
        message="Outcome fields",
        mode=Mode.WARN,
        severity=Severity.ERROR if failing else None,
        children=(
            Result(
                kind="field",
                name="hypothesis",
                field="hypothesis",
                status=Status.PASS,
                message="Found",
            ),
            Result(
                kind="field",
                name="success_metric",
                field="success_metric",
                status=metric,
                message="Metric",
            ),
        ),
    )
    preview = Result(
        kind="rule",
        name="metric-has-date",
        status=Status.FAIL,
        message="No date",
        mode=Mode.DRY_RUN,
    )
    tree = Result(
        kind="item", name=key, status=metric, message="Checked", children=(outcome, preview)
    )
    return Evaluation(item_key=key, tracker="jira", ruleset="lean", ruleset_version="3", tree=tree)


def at(minutes: float) -> datetime:
    """Return T0 plus some minutes."""
    return T0 + timedelta(minutes=minutes)


def run_concurrently(count: int, work: Callable[[], T]) -> list[T]:
    """Run ``work`` in ``count`` threads released at the same moment; re-raise any failure."""
    barrier = threading.Barrier(count)
    results: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        barrier.wait()
        try:
            results.append(work())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


# Database and migrations ---------------------------------------------------------------------


def test_upgrade_creates_every_table_from_empty(empty_database: Database) -> None:
    empty_database.upgrade()
    empty_database.upgrade()

    assert set(inspect(empty_database.engine).get_table_names()) == TABLES | {"alembic_version"}


def test_concurrent_upgrades_migrate_once(empty_database: Database) -> None:
    run_concurrently(4, empty_database.upgrade)

    with empty_database.engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    head = ScriptDirectory.from_config(empty_database.alembic_config()).get_current_head()
    assert [row.version_num for row in versions] == [head]


@pytest.mark.filterwarnings("ignore:.*expression-based index:UserWarning")
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_migrations_and_models_agree(database: Database) -> None:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


@pytest.mark.postgres
def test_delivery_payloads_are_compressed_with_lz4_where_the_server_offers_it(
    postgres_database: Database,
) -> None:
    with postgres_database.engine.connect() as connection:
        offered = connection.scalar(
            text(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                "WHERE name = 'default_toast_compression'"
            )
        )
        method = connection.scalar(
            text(
                "SELECT attcompression FROM pg_attribute "
                "WHERE attrelid = 'deliveries'::regclass AND attname = 'payload'"
            )
        )

    assert method == ("l" if offered else "\x00")


def _backend_pid(database: Database) -> int:
    with database.session() as session:
        pid = session.scalar(text("SELECT pg_backend_pid()"))
    assert isinstance(pid, int)
    return pid


def _drop_pooled_connection(server: str, database: Database) -> int:
    """Have the server end the connection the database's pool holds; return its process id."""
    pid = _backend_pid(database)
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()
    return pid


@pytest.mark.postgres
def test_an_idle_pooled_connection_the_server_dropped_is_replaced_before_use(
    postgres_server: str, postgres_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "_PING_AFTER_IDLE_S", 0.0)
    dropped = _drop_pooled_connection(postgres_server, postgres_database)

    assert _backend_pid(postgres_database) != dropped


@pytest.mark.postgres
def test_a_connection_back_from_work_a_moment_ago_is_lent_without_a_ping(
    postgres_server: str, postgres_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "_PING_AFTER_IDLE_S", 3600.0)
    dropped = _drop_pooled_connection(postgres_server, postgres_database)

    # Unpinged, the dead connection fails the next session once; the pool then starts afresh.
    with pytest.raises(OperationalError):
        _backend_pid(postgres_database)
    assert _backend_pid(postgres_database) != dropped


@pytest.mark.postgres
def test_statements_of_an_autocommit_session_are_committed_as_they_run(
    postgres_database: Database,
) -> None:
    with postgres_database.autocommit_session() as session:
        get_or_create_tenant(session, tracker="jira", site="https://acme.atlassian.net")
        with postgres_database.session() as elsewhere:
            seen = elsewhere.scalar(select(func.count()).select_from(Tenant))

    assert seen == 1


@pytest.mark.postgres
def test_an_autocommit_block_works_after_the_last_one_met_a_database_error(
    postgres_database: Database,
) -> None:
    with pytest.raises(SQLAlchemyError), postgres_database.autocommit() as connection:
        connection.execute(text("SELECT * FROM no_such_table"))

    with postgres_database.autocommit() as connection:
        assert connection.scalar(text("SELECT count(*) FROM tenants")) == 0


def test_downgrade_removes_every_table(database: Database) -> None:
    with database.engine.begin() as connection:
        command.downgrade(database.alembic_config(connection), "base")

    assert set(inspect(database.engine).get_table_names()) == {"alembic_version"}


def test_ping_answers_while_the_database_is_up(database: Database) -> None:
    assert database.ping() is True


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////nonexistent-folder/leanguard.db",
        "postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2",
    ],
)
def test_ping_says_false_when_the_database_is_unreachable(url: str) -> None:
    database = Database(url)
    try:
        assert database.ping() is False
    finally:
        database.dispose()


def test_default_url_is_a_file_in_the_instance_folder() -> None:
    assert default_database_url("/srv/instance") == "sqlite:////srv/instance/leanguard.db"


def test_timestamps_come_back_aware_in_utc(database: Database) -> None:
    paris = timezone(timedelta(hours=1))
    with database.session() as session:
        tenant = get_or_create_tenant(session, tracker="linear", site="org-1")
        delivery, _ = accept_delivery(
            session, tenant_id=tenant.id, event=event(), now=T0.astimezone(paris)
        )
        pk = delivery.id

    with database.session() as session:
        stored = session.get_one(Delivery, pk)
        assert stored.received_at == T0
        assert stored.received_at.tzinfo is UTC


def test_naive_timestamps_are_refused(database: Database, tenant_id: int) -> None:
    # PostgreSQL's inbox INSERT checks before it reaches the driver; SQLite's column type does.
    refused = pytest.raises((ValueError, StatementError), match="naive datetime")
    with refused, database.session() as session:
        accept_delivery(session, tenant_id=tenant_id, event=event(), now=datetime(2026, 3, 2))


# Tenants -------------------------------------------------------------------------------------


def test_get_or_create_tenant_returns_one_tenant_per_site(database: Database) -> None:
    with database.session() as session:
        first = get_or_create_tenant(session, tracker="jira", site="https://a.atlassian.net")
        again = get_or_create_tenant(session, tracker="jira", site="https://a.atlassian.net")
        other = get_or_create_tenant(session, tracker="linear", site="https://a.atlassian.net")

    assert again.id == first.id
    assert other.id != first.id
    assert first.enabled is True
    assert first.settings == {}


def test_concurrent_first_deliveries_create_one_tenant(database: Database) -> None:
    def create() -> int:
        with database.session() as session:
            return get_or_create_tenant(session, tracker="linear", site="org-9").id

    ids = run_concurrently(6, create)

    assert len(set(ids)) == 1
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Tenant)) == 1


# Deliveries ----------------------------------------------------------------------------------


def test_accept_stores_a_new_delivery_as_received(database: Database, tenant_id: int) -> None:
    with database.session() as session:
        delivery, new = accept_delivery(session, tenant_id=tenant_id, event=event(), now=T0)

    assert new is True
    assert delivery.state == DeliveryState.RECEIVED
    assert delivery.attempts == 0
    assert delivery.received_at == T0
    assert delivery.event_type == "jira:issue_updated"
    assert delivery.event() == event()


def test_accept_is_idempotent_on_the_delivery_id(database: Database, tenant_id: int) -> None:
    with database.session() as session:
        first, _ = accept_delivery(session, tenant_id=tenant_id, event=event(), now=T0)
    with database.session() as session:
        again, new = accept_delivery(
            session, tenant_id=tenant_id, event=event(key="PROJ-2"), now=at(1)
        )

    assert new is False
    assert again.id == first.id
    assert again.received_at == T0
    assert again.event().refs[0].key == "PROJ-1"


def test_the_same_delivery_id_from_two_tenants_is_two_deliveries(
    database: Database, tenant_id: int
) -> None:
    with database.session() as session:
        other = get_or_create_tenant(session, tracker="jira", site="https://other.atlassian.net")
        _, first_new = accept_delivery(session, tenant_id=tenant_id, event=event(), now=T0)
        _, second_new = accept_delivery(session, tenant_id=other.id, event=event(), now=T0)

    assert (first_new, second_new) == (True, True)


def test_an_event_that_needs_no_work_is_stored_as_ignored(
    database: Database, tenant_id: int
) -> None:
    with database.session() as session:
        delivery, new = accept_delivery(
            session, tenant_id=tenant_id, event=event(needs_work=False), now=T0
        )
        claimed = claim_delivery(session, delivery_pk=delivery.id, now=T0, lease_s=LEASE_S)

    assert new is True
    assert delivery.state == DeliveryState.IGNORED
    assert claimed is None


def test_concurrent_accepts_of_one_delivery_store_one_row(
    database: Database, tenant_id: int
) -> None:
    def accept() -> bool:
        with database.session() as session:
            return accept_delivery(session, tenant_id=tenant_id, event=event("race"), now=T0)[1]

    outcomes = run_concurrently(8, accept)

    assert sorted(outcomes) == [False] * 7 + [True]
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 1


def test_claim_takes_a_delivery_under_a_lease(database: Database, tenant_id: int) -> None:
    with database.session() as session:
        delivery, _ = accept_delivery(session, tenant_id=tenant_id, event=event(), now=T0)
        claimed = claim_delivery(session, delivery_pk=delivery.id, now=at(1), lease_s=LEASE_S)
        second = claim_delivery(session, delivery_pk=delivery.id, now=at(2), lease_s=LEASE_S)

    assert claimed is not None
    assert claimed.state == DeliveryState.PROCESSING
    assert claimed.attempts == 1
    assert claimed.next_attempt_at == at(1) + timedelta(seconds=LEASE_S)
    assert second is None


def test_concurrent_claims_give_the_delivery_to_one_worker(
    database: Database, tenant_id: int
) -> None:
    with database.session() as session:
        pk = accept_delivery(session, tenant_id=tenant_id, event=event(), now=T0)[0].id

    def claim() -> bool:
        with database.session() as session:
            return claim_delivery(session, delivery_pk=pk, now=T0, lease_s=LEASE_S) is not None

    assert sorted(run_concurrently(6, claim)) == [False] * 5 + [True]


def test_an_expired_lease_lets_another_worker_take_over(database: Database, tenant_id: int) -> None:
    with database.session() as session:
        delivery, _ = accept_delivery(session, tenant_id=tenant_id, event=event(), now=T0)
        claim_delivery(session, delivery_pk=delivery.id, now=T0, lease_s=LEASE_S)
        after_lease = T0 + timedelta(seconds=LEASE_S + 1)
        taken = claim_delivery(session, delivery_pk=delivery.id, now=after_lease, lease_s=LEASE_S)

    assert taken is not None
    assert taken.attempts == 2


def test_a_completed_delivery_is_done_and_not_claimable(database: Database, tenant_id: int) -> None:
    with database.session() as session:
        delivery, _ = accept_delivery(session, tenant_id=tenant_id, event=event(), now=T0)
        claim_delivery(session, delivery_pk=delivery.id, now=T0, lease_s=LEASE_S)
        complete_delivery(session, delivery_pk=delivery.id, now=at(1))
    with database.session() as session:
        done = session.get_one(Delivery, delivery.id)
        later = claim_delivery(session, delivery_pk=delivery.id, now=at(60), lease_s=LEASE_S)

    assert done.state == DeliveryState.DONE
    assert done.next_attempt_at is None
    assert done.updated_at == at(1)
    assert later is None


def test_a_failing_delivery_retries_then_goes_dead(database: Database, tenant_id: int) -> None:
    def stored(pk: int) -> tuple[str, datetime | None, str | None]:
        with database.session() as session:
            row = session.get_one(Delivery, pk)
            return row.state, row.next_attempt_at, row.last_error

    with database.session() as session:
        pk = accept_delivery(session, tenant_id=tenant_id, event=event(), now=T0)[0].id
        claim_delivery(session, delivery_pk=pk, now=T0, lease_s=LEASE_S)
        fail_delivery(session, delivery_pk=pk, error="Jira answered 503", retry_at=at(5), now=at(1))
    assert stored(pk) == (DeliveryState.RETRYING, at(5), "Jira answered 503")

    with database.session() as session:
        assert claim_delivery(session, delivery_pk=pk, now=at(4), lease_s=LEASE_S) is None
        second = claim_delivery(session, delivery_pk=pk, now=at(5), lease_s=LEASE_S)
        assert second is not None
        assert second.attempts == 2
        fail_delivery(session, delivery_pk=pk, error="Jira answered 500", retry_at=None, now=at(6))
    assert stored(pk) == (DeliveryState.DEAD, None, "Jira answered 500")


def test_a_worker_that_lost_its_lease_cannot_undo_the_new_owner(
    database: Database, tenant_id: int
) -> None:
    after_lease = T0 + timedelta(seconds=LEASE_S + 1)
    with database.session() as session:
        pk = accept_delivery(session, tenant_id=tenant_id, event=event(), now=T0)[0].id
        claim_delivery(session, delivery_pk=pk, now=T0, lease_s=LEASE_S)
        claim_delivery(session, delivery_pk=pk, now=after_lease, lease_s=LEASE_S)
        complete_delivery(session, delivery_pk=pk, now=after_lease)
        fail_delivery(session, delivery_pk=pk, error="timed out", retry_at=None, now=after_lease)
    with database.session() as session:
        assert session.get_one(Delivery, pk).state == DeliveryState.DONE


def test_very_long_errors_keep_their_end(database: Database, tenant_id: int) -> None:
    error = "Traceback\n" + "x" * 50_000 + "\nApiError: 400 field 'labels' cannot be set"
    with database.session() as session:
        pk = accept_delivery(session, tenant_id=tenant_id, event=event(), now=T0)[0].id
        claim_delivery(session, delivery_pk=pk, now=T0, lease_s=LEASE_S)
        fail_delivery(session, delivery_pk=pk, error=error, retry_at=None, now=T0)
    with database.session() as session:
        stored = session.get_one(Delivery, pk).last_error

    assert stored is not None
    assert len(stored) == 10_000
    assert stored.endswith("cannot be set")


def test_due_deliveries_lists_what_the_sweeper_must_redrive(
    database: Database, tenant_id: int
) -> None:
    now = at(30)
    with database.session() as session:

        def accepted(name: str, *, needs_work: bool = True) -> int:
            ev = event(name, needs_work=needs_work)
            return accept_delivery(session, tenant_id=tenant_id, event=ev, now=T0)[0].id

        def failed(name: str, retry_at: datetime | None) -> int:
            pk = accepted(name)
            claim_delivery(session, delivery_pk=pk, now=T0, lease_s=LEASE_S)
            fail_delivery(session, delivery_pk=pk, error="boom", retry_at=retry_at, now=T0)
            return pk

        def claimed(name: str, at_: datetime) -> int:
            pk = accepted(name)
            claim_delivery(session, delivery_pk=pk, now=at_, lease_s=LEASE_S)
            return pk

        waiting = accepted("waiting")
        retry_due = failed("retry-due", retry_at=at(29))
        failed("retry-later", retry_at=at(31))
        stuck = claimed("stuck", at(0))
        claimed("working", at(29))
        failed("dead", retry_at=None)
        accepted("ignored", needs_work=False)
        done = claimed("done", at(0))
        complete_delivery(session, delivery_pk=done, now=at(1))

    with database.session() as session:
        due = due_deliveries(session, now=now, limit=10)
        first_two = due_deliveries(session, now=now, limit=2)

    assert due == [waiting, retry_due, stuck]
    assert first_two == [waiting, retry_due]


def test_due_deliveries_hold_back_only_fresh_received_ones(
    database: Database, tenant_id: int
) -> None:
    with database.session() as session:

        def accepted(name: str, minute: float) -> int:
            return accept_delivery(session, tenant_id=tenant_id, event=event(name), now=at(minute))[
                0
            ].id

        old = accepted("old", 0)
        fresh = accepted("fresh", 10)
        retry = accepted("retry", 10)
        claim_delivery(session, delivery_pk=retry, now=at(10), lease_s=LEASE_S)
        fail_delivery(session, delivery_pk=retry, error="boom", retry_at=at(11), now=at(10))
        expired = accepted("expired", 10)
        claim_delivery(session, delivery_pk=expired, now=at(10), lease_s=60)

    with database.session() as session:
        swept = due_deliveries(session, now=at(12), limit=10, received_before=at(5))
        drained = due_deliveries(session, now=at(12), limit=10)

    # The fresh delivery was enqueued by the web process; the retry and the expired lease
    # have their own due times and are swept however recently they arrived.
    assert swept == [old, retry, expired]
    assert drained == [old, fresh, retry, expired]


def test_dead_deliveries_lists_the_most_recent_failures_first(
    database: Database, tenant_id: int
) -> None:
    with database.session() as session:
        other = get_or_create_tenant(session, tracker="linear", site="org-1").id
        dead: list[int] = []
        for minute, tenant in ((1, tenant_id), (3, tenant_id), (2, other)):
            pk = accept_delivery(session, tenant_id=tenant, event=event(f"d{minute}"), now=T0)[0].id
            claim_delivery(session, delivery_pk=pk, now=T0, lease_s=LEASE_S)
            fail_delivery(session, delivery_pk=pk, error="boom", retry_at=None, now=at(minute))
            dead.append(pk)

        everyone = [d.id for d in dead_deliveries(session, tenant_id=None, limit=10)]
        mine = [d.id for d in dead_deliveries(session, tenant_id=tenant_id, limit=10)]
        newest = [d.id for d in dead_deliveries(session, tenant_id=None, limit=1)]

    assert everyone == [dead[1], dead[2], dead[0]]
    assert mine == [dead[1], dead[0]]
    assert newest == [dead[1]]


def test_delivery_counts_name_every_state(database: Database, tenant_id: int) -> None:
    with database.session() as session:
        assert delivery_counts(session) == dict.fromkeys(
            ["received", "processing", "done", "ignored", "retrying", "dead"], 0
        )
        accept_delivery(session, tenant_id=tenant_id, event=event("a"), now=T0)
        accept_delivery(session, tenant_id=tenant_id, event=event("b"), now=T0)
        accept_delivery(session, tenant_id=tenant_id, event=event("c", needs_work=False), now=T0)
        counts = delivery_counts(session)

    assert counts["received"] == 2
    assert counts["ignored"] == 1
    assert counts["dead"] == 0


# Work items ----------------------------------------------------------------------------------


def test_upsert_stores_the_snapshot_then_replaces_it(database: Database, tenant_id: int) -> None:
    with database.session() as session:
        created, created_applied = upsert_work_item(
            session, tenant_id=tenant_id, item=item(), now=T0
        )
        renamed = item(title="Checkout redesign v2", updated=at(10))
        updated, updated_applied = upsert_work_item(
            session, tenant_id=tenant_id, item=renamed, now=at(11)
        )

    assert (created_applied, updated_applied) == (True, True)
    assert updated.id == created.id
    assert updated.item() == renamed
    assert (updated.title, updated.kind, updated.project) == (
        "Checkout redesign v2",
        "epic",
        "PROJ",
    )
    assert updated.status_category == "in_progress"
    assert updated.source_updated_at == at(10)
    assert (updated.first_seen_at, updated.updated_at) == (T0, at(11))


def test_an_older_snapshot_does_not_replace_a_newer_one(database: Database, tenant_id: int) -> None:
    with database.session() as session:
        upsert_work_item(
            session, tenant_id=tenant_id, item=item(title="New", updated=at(10)), now=T0
        )
    with database.session() as session:
        stale = item(title="Old", updated=at(5))
        row, applied = upsert_work_item(session, tenant_id=tenant_id, item=stale, now=at(20))

    assert applied is False
    assert row.title == "New"
    assert row.source_updated_at == at(10)


def test_a_snapshot_without_an_updated_time_is_always_applied(
    database: Database, tenant_id: int
) -> None:
    with database.session() as session:
        upsert_work_item(session, tenant_id=tenant_id, item=item(updated=at(10)), now=T0)
        row, applied = upsert_work_item(
            session, tenant_id=tenant_id, item=item(title="Refetched", updated=None), now=at(1)
        )

    assert applied is True
    assert row.title == "Refetched"


def test_a_moved_issue_keeps_its_row_and_takes_the_new_key(
    database: Database, tenant_id: int
) -> None:
    with database.session() as session:
        before, _ = upsert_work_item(session, tenant_id=tenant_id, item=item("PROJ-1"), now=T0)
        moved = item("NEW-7", updated=at(1))
        after, _ = upsert_work_item(session, tenant_id=tenant_id, item=moved, now=at(1))
        by_new_key = find_work_item(session, tenant_id=tenant_id, tracker="jira", key="NEW-7")
        by_old_key = find_work_item(session, tenant_id=tenant_id, tracker="jira", key="PROJ-1")

    assert after.id == before.id
    assert by_new_key is not None
    assert by_new_key.id == before.id
    assert by_old_key is None


def test_an_item_first_stored_by_key_is_adopted_once_its_id_is_known(
    database: Database, tenant_id: int
) -> None:
    with database.session() as session:
        by_key, _ = upsert_work_item(session, tenant_id=tenant_id, item=item(item_id=""), now=T0)
        first_id = (by_key.id, by_key.item_id)
        by_id, _ = upsert_work_item(
            session, tenant_id=tenant_id, item=item(item_id="10001"), now=T0
        )
        count = session.scalar(select(func.count()).select_from(WorkItemRow))

    assert first_id == (by_id.id, "PROJ-1")
    assert by_id.item_id == "10001"
    assert count == 1


def test_find_work_item_by_key_or_tracker_id(database: Database, tenant_id: int) -> None:
    with database.session() as session:
        other = get_or_create_tenant(session, tracker="jira", site="https://b.atlassian.net").id
        mine, _ = upsert_work_item(session, tenant_id=tenant_id, item=item(), now=T0)
        theirs, _ = upsert_work_item(
            session, tenant_id=other, item=item("OPS-3", item_id="2"), now=T0
        )

        def found(tenant: int | None, key: str, tracker: str = "jira") -> int | None:
            row = find_work_item(session, tenant_id=tenant, tracker=tracker, key=key)
            return None if row is None else row.id

        assert found(tenant_id, "PROJ-1") == mine.id
        assert found(tenant_id, "10001") == mine.id
        assert found(None, "OPS-3") == theirs.id
        assert found(tenant_id, "OPS-3") is None
        assert found(tenant_id, "PROJ-1", tracker="linear") is None


def test_a_deleted_item_is_marked_and_a_new_snapshot_revives_it(
    database: Database, tenant_id: int
) -> None:
    with database.session() as session:
        upsert_work_item(session, tenant_id=tenant_id, item=item(), now=T0)
        deleted = mark_work_item_deleted(
            session, tenant_id=tenant_id, item_id_or_key="PROJ-1", now=at(1)
        )
        unknown = mark_work_item_deleted(
            session, tenant_id=tenant_id, item_id_or_key="PROJ-404", now=at(1)
        )
        assert deleted is not None
        assert (deleted.deleted, deleted.updated_at) == (True, at(1))
        assert unknown is None

        revived, _ = upsert_work_item(
            session, tenant_id=tenant_id, item=item(updated=at(2)), now=at(2)
        )
        assert revived.deleted is False


# Evaluations ---------------------------------------------------------------------------------


def stored_item(database: Database, tenant_id: int, key: str, item_id: str) -> WorkItemRow:
    """Store an item and return its row."""
    with database.session() as session:
        return upsert_work_item(
            session, tenant_id=tenant_id, item=item(key, item_id=item_id), now=T0
        )[0]


def test_record_evaluation_keeps_a_lean_summary_and_the_whole_tree(
    database: Database, tenant_id: int
) -> None:
    work_item = stored_item(database, tenant_id, "PROJ-1", "1")
    verdict = evaluation()
    with database.session() as session:
        row = record_evaluation(session, work_item=work_item, evaluation=verdict, evaluated_at=T0)

    assert row.status == "fail"
    # The dry-run rule fails too, but no card shows it.
    assert (row.violations, row.failing_rules) == (1, ["outcome-fields"])
    assert row.fields_present == ["hypothesis"]
    assert (row.ruleset_name, row.ruleset_version) == ("lean", "3")
    assert row.evaluation() == verdict


def test_reading_evaluation_rows_leaves_the_tree_unloaded(
    database: Database, tenant_id: int
) -> None:
    work_item = stored_item(database, tenant_id, "PROJ-1", "1")
    with database.session() as session:
        record_evaluation(session, work_item=work_item, evaluation=evaluation(), evaluated_at=T0)
    with database.session() as session:
        row = session.scalars(select(EvaluationRow)).one()

        assert "tree" in inspect(row).unloaded
        assert "violations" not in inspect(row).unloaded


def test_latest_evaluation_is_the_newest_by_evaluation_time(
    database: Database, tenant_id: int
) -> None:
    work_item = stored_item(database, tenant_id, "PROJ-1", "1")
    with database.session() as session:
        assert latest_evaluation(session, work_item_id=work_item.id) is None
        for minute, failing in ((5, False), (1, True), (3, True)):
            record_evaluation(
                session,
                work_item=work_item,
                evaluation=evaluation(failing=failing),
                evaluated_at=at(minute),
            )
    with database.session() as session:
        latest = latest_evaluation(session, work_item_id=work_item.id)

    assert latest is not None
    assert (latest.evaluated_at, latest.status) == (at(5), "pass")
    assert latest.evaluation().status is Status.PASS


def test_latest_results_show_each_live_item_once_newest_first(
    database: Database, tenant_id: int
) -> None:
    first = stored_item(database, tenant_id, "PROJ-1", "1")
    second = stored_item(database, tenant_id, "PROJ-2", "2")
    gone = stored_item(database, tenant_id, "PROJ-3", "3")
    with database.session() as session:
        other = get_or_create_tenant(session, tracker="linear", site="org-1").id
        elsewhere = upsert_work_item(
            session, tenant_id=other, item=item("ENG-1", item_id="e1"), now=T0
        )[0]
        for row, minute in ((first, 1), (second, 2), (first, 3), (gone, 4), (elsewhere, 5)):
            record_evaluation(
                session, work_item=row, evaluation=evaluation(), evaluated_at=at(minute)
            )
        mark_work_item_deleted(session, tenant_id=tenant_id, item_id_or_key="PROJ-3", now=at(6))

    with database.session() as session:
        everyone = latest_results(session)
        mine = latest_results(session, tenant_id=tenant_id)
        newest = latest_results(session, limit=1)

    assert [(w.key, e.evaluated_at) for w, e in everyone] == [
        ("ENG-1", at(5)),
        ("PROJ-1", at(3)),
        ("PROJ-2", at(2)),
    ]
    assert [w.key for w, _ in mine] == ["PROJ-1", "PROJ-2"]
    assert [w.key for w, _ in newest] == ["ENG-1"]
    assert mine[0][1].evaluation().item_key == "PROJ-1"


# Cards ---------------------------------------------------------------------------------------


def test_a_card_is_saved_once_and_updated_in_place(database: Database, tenant_id: int) -> None:
    work_item = stored_item(database, tenant_id, "PROJ-1", "1")
    with database.session() as session:
        assert get_card(session, work_item_id=work_item.id) is None
        draft = save_card(
            session,
            work_item_id=work_item.id,
            comment_id=None,
            content_hash="sha256:aa",
            state="open",
            label_applied=False,
            now=T0,
        )
    with database.session() as session:
        posted = save_card(
            session,
            work_item_id=work_item.id,
            comment_id="10042",
            content_hash="sha256:bb",
            state="resolved",
            label_applied=True,
            now=at(5),
        )
        loaded = get_card(session, work_item_id=work_item.id)

    assert draft.comment_id is None
    assert posted.id == draft.id
    assert loaded is not None
    assert (loaded.comment_id, loaded.content_hash, loaded.state) == (
        "10042",
        "sha256:bb",
        "resolved",
    )
    assert loaded.label_applied is True
    assert (loaded.created_at, loaded.updated_at) == (T0, at(5))


def test_a_card_state_outside_the_known_ones_is_refused(database: Database, tenant_id: int) -> None:
    work_item = stored_item(database, tenant_id, "PROJ-1", "1")
    with pytest.raises(IntegrityError), database.session() as session:
        save_card(
            session,
            work_item_id=work_item.id,
            comment_id=None,
            content_hash="sha256:aa",
            state="pending",
            label_applied=False,
            now=T0,
        )


# Rule sets -----------------------------------------------------------------------------------


def saved(database: Database, tenant_id: int | None, project: str | None, note: str) -> RulesetRow:
    """Save a rule set version for a Jira project (or every project when None)."""
    with database.session() as session:
        return save_ruleset(
            session,
            tenant_id=tenant_id,
            tracker="jira" if tenant_id is not None else None,
            project=project,
            source_text=f"# {note}\nrules: []\n",
            source_kind="api",
            source_path=None,
            author="pat@acme.test",
            note=note,
            now=T0,
        )


def test_ruleset_versions_count_up_per_scope(database: Database, tenant_id: int) -> None:
    one = saved(database, tenant_id, "PROJ", "first")
    two = saved(database, tenant_id, "PROJ", "second")
    elsewhere = saved(database, tenant_id, "OPS", "ops")
    default = saved(database, None, None, "organisation default")
    default_two = saved(database, None, None, "organisation default, stricter")

    assert (one.version, two.version, elsewhere.version) == (1, 2, 1)
    assert (default.version, default_two.version) == (1, 2)


def test_latest_ruleset_and_history_read_one_scope_newest_first(
    database: Database, tenant_id: int
) -> None:
    for note in ("first", "second", "third"):
        saved(database, tenant_id, "PROJ", note)
    saved(database, tenant_id, None, "every Jira project")
    saved(database, None, None, "organisation default")

    with database.session() as session:
        latest = latest_ruleset(session, tenant_id=tenant_id, tracker="jira", project="PROJ")
        history = ruleset_history(session, tenant_id=tenant_id, tracker="jira", project="PROJ")
        tenant_wide = ruleset_history(session, tenant_id=tenant_id, tracker="jira", project=None)
        missing = latest_ruleset(session, tenant_id=tenant_id, tracker="linear", project="PROJ")

    assert latest is not None
    assert (latest.version, latest.note) == (3, "third")
    assert [(r.version, r.note) for r in history] == [(3, "third"), (2, "second"), (1, "first")]
    assert [r.note for r in tenant_wide] == ["every Jira project"]
    assert missing is None


def test_concurrent_saves_take_distinct_versions(database: Database, tenant_id: int) -> None:
    versions = run_concurrently(6, lambda: saved(database, tenant_id, "PROJ", "edit").version)

    assert sorted(versions) == [1, 2, 3, 4, 5, 6]


def test_two_organisation_defaults_cannot_share_a_version(database: Database) -> None:
    row = {
        "tenant_id": None,
        "tracker": None,
        "project": None,
        "version": 1,
        "source_text": "rules: []\n",
        "source_kind": "file",
        "source_path": "rules/lean.yaml",
        "author": "",
        "note": "",
        "created_at": T0,
    }
    with database.session() as session:
        session.execute(insert(RulesetRow).values(**row))
    with pytest.raises(IntegrityError), database.session() as session:
        session.execute(insert(RulesetRow).values(**row))
