"""Group commit of the inbox: concurrent webhooks share statements, each is committed once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from plugin.storage import Database, Delivery, get_or_create_tenant
from plugin.storage import delivery_writer as writer_module
from plugin.storage.deliveries import NewDelivery, store_deliveries
from plugin.storage.delivery_writer import DeliveryWriter
from webhooks.events import InboundEvent, ItemRef

WAIT_S = 10.0
"""The longest a test waits for a thread to get where it is going before failing."""


def delivery(tenant_id: int, delivery_id: str, key: str = "PROJ-1") -> NewDelivery:
    payload = {"webhookEvent": "jira:issue_updated", "issue": {"key": key}}
    return NewDelivery(
        tenant_id,
        InboundEvent(
            tracker="jira",
            site="https://acme.atlassian.net",
            delivery_id=delivery_id,
            event_type="jira:issue_updated",
            needs_work=True,
            refs=(ItemRef("jira", key),),
            actor_id=None,
            changes=(),
            occurred_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
            payload=payload,
            payload_json=json.dumps(payload).encode(),
        ),
    )


class Requests:
    """Webhook requests storing deliveries from their own threads, as gunicorn's threads do."""

    def __init__(self, writer: DeliveryWriter) -> None:
        self.writer = writer
        self.outcomes: dict[str, tuple[int, bool]] = {}
        self.errors: dict[str, BaseException] = {}
        self._threads: list[threading.Thread] = []

    def send(self, new: NewDelivery, name: str | None = None) -> None:
        """Start a request storing ``new``; its outcome is kept under ``name``."""
        label = name or new.event.delivery_id

        def run() -> None:
            try:
                self.outcomes[label] = self.writer.store(new)
            except BaseException as exc:
                self.errors[label] = exc

        thread = threading.Thread(target=run)
        self._threads.append(thread)
        thread.start()

    def finish(self) -> None:
        """Wait for every request to be answered."""
        for thread in self._threads:
            thread.join(WAIT_S)
            assert not thread.is_alive(), "a request never got its answer"


class HeldFirstStatement:
    """Records each statement's deliveries; holds the first until released."""

    def __init__(self, fail_first: Exception | None = None) -> None:
        self.batches: list[list[str]] = []
        self.release = threading.Event()
        self.fail_first = fail_first

    def __call__(
        self, connection: Connection, deliveries: Sequence[NewDelivery], *, now: datetime
    ) -> list[tuple[int, bool]]:
        self.batches.append([new.event.delivery_id for new in deliveries])
        if len(self.batches) == 1:
            assert self.release.wait(WAIT_S)
            if self.fail_first is not None:
                raise self.fail_first
        return store_deliveries(connection, deliveries, now=now)


def arrive_during_first_write(
    writer: DeliveryWriter,
    held: HeldFirstStatement,
    first: NewDelivery,
    later: Sequence[tuple[str, NewDelivery]],
) -> Requests:
    """Send ``first``; while its statement is held, send ``later`` (name, delivery); answer all."""
    requests = Requests(writer)
    requests.send(first)
    eventually(lambda: len(held.batches) == 1)
    for name, new in later:
        requests.send(new, name=name)
    eventually(lambda: writer.waiting == len(later))
    held.release.set()
    requests.finish()
    return requests


def eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.001)


def stored_rows(database: Database) -> dict[str, int]:
    with database.session() as session:
        return {name: pk for name, pk in session.execute(select(Delivery.delivery_id, Delivery.id))}


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> HeldFirstStatement:
    spy = HeldFirstStatement()
    monkeypatch.setattr(writer_module, "store_deliveries", spy)
    return spy


def test_a_lone_webhook_is_stored_at_once_as_received(database: Database, tenant_id: int) -> None:
    writer = DeliveryWriter(database)
    new = delivery(tenant_id, "d-1")

    pk, is_new = writer.store(new)

    assert is_new
    with database.session() as session:
        row = session.get(Delivery, pk)
        assert row is not None
        assert row.event() == new.event
        assert row.payload["payload"] == new.event.payload


def test_a_redelivery_gets_the_first_row_and_is_not_new(database: Database, tenant_id: int) -> None:
    writer = DeliveryWriter(database)
    first, _ = writer.store(delivery(tenant_id, "d-1"))

    again = writer.store(delivery(tenant_id, "d-1"))

    assert again == (first, False)
    assert stored_rows(database) == {"d-1": first}


def test_webhooks_arriving_during_a_write_share_the_next_statement(
    database: Database, tenant_id: int, held: HeldFirstStatement
) -> None:
    later = [f"later-{n}" for n in range(6)]

    requests = arrive_during_first_write(
        DeliveryWriter(database),
        held,
        delivery(tenant_id, "first"),
        [(name, delivery(tenant_id, name)) for name in later],
    )

    assert held.batches[0] == ["first"]
    assert sorted(held.batches[1]) == later
    assert len(held.batches) == 2
    assert not requests.errors
    assert stored_rows(database) == {name: pk for name, (pk, _) in requests.outcomes.items()}
    assert all(is_new for _, is_new in requests.outcomes.values())


def test_copies_of_one_delivery_in_one_statement_store_one_row(
    database: Database, tenant_id: int, held: HeldFirstStatement
) -> None:
    requests = arrive_during_first_write(
        DeliveryWriter(database),
        held,
        delivery(tenant_id, "other"),
        [(f"copy-{copy}", delivery(tenant_id, "redelivered")) for copy in range(4)],
    )

    copies = [requests.outcomes[f"copy-{copy}"] for copy in range(4)]
    assert len({pk for pk, _ in copies}) == 1
    assert sorted(is_new for _, is_new in copies) == [False, False, False, True]
    assert set(stored_rows(database)) == {"other", "redelivered"}


def test_a_failed_statement_fails_each_of_its_webhooks_and_not_the_next(
    database: Database, tenant_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    failure = OperationalError("INSERT", {}, Exception("the disk is full"))
    held = HeldFirstStatement(fail_first=failure)
    monkeypatch.setattr(writer_module, "store_deliveries", held)
    writer = DeliveryWriter(database)

    requests = arrive_during_first_write(
        writer, held, delivery(tenant_id, "lost"), [("queued", delivery(tenant_id, "queued"))]
    )

    # Only what was in the failed statement is refused (its sender retries on the 503).
    assert requests.errors == {"lost": failure}
    assert requests.outcomes["queued"][1] is True
    assert writer.store(delivery(tenant_id, "lost"))[1] is True
    assert set(stored_rows(database)) == {"lost", "queued"}


def test_a_refused_row_raises_the_database_error_without_the_body(
    database: Database, tenant_id: int
) -> None:
    writer = DeliveryWriter(database)
    no_such_tenant = delivery(tenant_id + 1_000, "orphan", key="SECRET-1")

    with pytest.raises(IntegrityError) as refused:
        writer.store(no_such_tenant)

    assert "SECRET-1" not in str(refused.value)
    # The writer's connection is as good as before.
    assert writer.store(delivery(tenant_id, "next"))[1] is True
    assert set(stored_rows(database)) == {"next"}


def test_many_concurrent_webhooks_are_each_stored_once(database: Database, tenant_id: int) -> None:
    writer = DeliveryWriter(database)
    requests = Requests(writer)
    # Eight senders, each redelivering two of every five deliveries another sender also sent.
    for sender in range(8):
        for n in range(25):
            name = f"d-{n}" if n % 5 < 2 else f"d-{sender}-{n}"
            requests.send(delivery(tenant_id, name), name=f"{sender}/{n}")
    requests.finish()

    assert not requests.errors
    rows = stored_rows(database)
    assert len(rows) == 10 + 8 * 15
    news: dict[str, int] = {}
    for label, (pk, is_new) in requests.outcomes.items():
        sender, n = (int(part) for part in label.split("/"))
        name = f"d-{n}" if n % 5 < 2 else f"d-{sender}-{n}"
        assert rows[name] == pk
        news[name] = news.get(name, 0) + is_new
    assert set(news.values()) == {1}, "every delivery is new exactly once"


@pytest.mark.postgres
def test_a_connection_the_server_dropped_is_replaced_without_failing_a_webhook(
    postgres_server: str, postgres_database: Database
) -> None:
    database = postgres_database
    with database.session() as session:
        tenant_id = get_or_create_tenant(session, tracker="jira", site="https://a.example").id
    writer = DeliveryWriter(database)
    writer.store(delivery(tenant_id, "before"))
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            # The schema is this test's own: its only idle sessions are the writer's.
            dropped = connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE pid <> pg_backend_pid() AND datname = current_database() "
                    "AND state = 'idle' AND query LIKE 'INSERT INTO deliveries%'"
                )
            ).all()
    finally:
        admin.dispose()
    assert dropped, "the writer kept no connection open"

    pk, is_new = writer.store(delivery(tenant_id, "after"))

    assert is_new
    assert stored_rows(database)["after"] == pk


def test_payloads_and_counts_survive_a_burst(database: Database, tenant_id: int) -> None:
    writer = DeliveryWriter(database)
    requests = Requests(writer)
    for n in range(40):
        requests.send(delivery(tenant_id, f"d-{n}", key=f"PROJ-{n}"))
    requests.finish()

    with database.session() as session:
        rows: list[Any] = list(session.scalars(select(Delivery)))
        count = session.scalar(select(func.count()).select_from(Delivery))
    assert count == 40
    assert {row.event().refs[0].key for row in rows} == {f"PROJ-{n}" for n in range(40)}
