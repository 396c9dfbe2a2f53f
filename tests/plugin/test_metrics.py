"""The /metrics figures: read from the inbox when scraped; counters summed across processes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis import Redis
from support.processes import free_port, postgres_schema

from plugin.metrics import (
    RATE_LIMIT_WAITS,
    TRACKER_CALLS,
    Counters,
    parse,
    render,
    total,
)
from plugin.storage import (
    Database,
    accept_delivery,
    claim_delivery,
    complete_delivery,
    fail_delivery,
    get_or_create_tenant,
)
from webhooks.events import InboundEvent, ItemRef

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class _Queue:
    def depth(self) -> int | None:
        return 4


def event(delivery_id: str) -> InboundEvent:
    return InboundEvent(
        tracker="jira",
        site="https://acme.atlassian.net",
        delivery_id=delivery_id,
        event_type="jira:issue_updated",
        needs_work=True,
        refs=(ItemRef("jira", "ACME-1"),),
        actor_id=None,
        changes=(),
        occurred_at=None,
        payload={},
    )


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty, migrated database of each kind (the latency is computed in SQL per dialect)."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'metrics.db'}")
        db.upgrade()
        yield db
        db.dispose()
        return
    with postgres_schema(request.getfixturevalue("postgres_server")) as url:
        db = Database(url)
        db.upgrade()
        yield db
        db.dispose()


def test_deliveries_and_their_latency_are_read_from_the_inbox(database: Database) -> None:
    with database.session() as session:
        tenant = get_or_create_tenant(session, tracker="jira", site="https://acme.atlassian.net")
        for name, seconds in (("fast", 0.2), ("slow", 3.0), ("retried", 400.0)):
            pk = accept_delivery(session, tenant_id=tenant.id, event=event(name), now=T0)[0].id
            claim_delivery(session, delivery_pk=pk, now=T0, lease_s=300)
            complete_delivery(session, delivery_pk=pk, now=T0 + timedelta(seconds=seconds))
        dead = accept_delivery(session, tenant_id=tenant.id, event=event("dead"), now=T0)[0].id
        claim_delivery(session, delivery_pk=dead, now=T0, lease_s=300)
        fail_delivery(session, delivery_pk=dead, error="boom", retry_at=None, now=T0)
        accept_delivery(session, tenant_id=tenant.id, event=event("waiting"), now=T0)

    with database.session() as session:
        text = render(session, queue=_Queue(), rules_valid=True)
    samples = parse(text)

    def bucket(le: str) -> float:
        return samples[f'leanguard_job_latency_seconds_bucket{{tracker="jira",le="{le}"}}']

    buckets = {le: bucket(le) for le in ("0.1", "0.25", "2.5", "5", "300", "900", "+Inf")}
    assert buckets == {"0.1": 0, "0.25": 1, "2.5": 1, "5": 2, "300": 2, "900": 3, "+Inf": 3}
    assert samples['leanguard_job_latency_seconds_count{tracker="jira"}'] == 3
    assert samples['leanguard_job_latency_seconds_sum{tracker="jira"}'] == pytest.approx(403.2)
    assert samples['leanguard_job_latency_seconds_count{tracker="linear"}'] == 0
    assert total(samples, "leanguard_deliveries", state="done") == 3
    assert total(samples, "leanguard_deliveries_by_tracker", tracker="jira", state="dead") == 1
    assert total(samples, "leanguard_deliveries_by_tracker", tracker="linear") == 0
    assert samples["leanguard_queue_depth"] == 4
    assert samples["leanguard_rules_valid"] == 1
    assert "# TYPE leanguard_job_latency_seconds histogram" in text


@pytest.mark.redis
def test_counters_of_several_processes_add_up_in_redis(redis_server: str) -> None:
    redis = Redis.from_url(redis_server)
    redis.flushdb()
    # Two processes (a web process and an rq worker) count, a third is scraped.
    web, worker, scraped = Counters(), Counters(), Counters()
    for counters in (web, worker, scraped):
        counters.share_via(Redis.from_url(redis_server))
    try:
        web.add(TRACKER_CALLS, ("jira", "GET issue", "200"))
        worker.add(TRACKER_CALLS, ("jira", "GET issue", "200"), 2)
        worker.add(RATE_LIMIT_WAITS, ("linear",))
        assert web.publish() and worker.publish()

        counts = scraped.read()

        assert counts is not None
        assert counts[TRACKER_CALLS] == {("jira", "GET issue", "200"): 3.0}
        assert counts[RATE_LIMIT_WAITS] == {("linear",): 1.0}
    finally:
        redis.flushdb()
        redis.close()


def test_counts_wait_for_redis_to_come_back() -> None:
    # Nothing listens on this port: Redis is down.
    counters = Counters()
    counters.share_via(Redis.from_url(f"redis://127.0.0.1:{free_port()}/0"))
    counters.add(TRACKER_CALLS, ("linear", "Issue", "200"))

    assert counters.publish() is False
    assert counters.read() is None
    assert counters._pending[TRACKER_CALLS] == {("linear", "Issue", "200"): 1.0}


def test_without_redis_the_process_counts_alone() -> None:
    counters = Counters()
    counters.share_via(None)
    counters.add(TRACKER_CALLS, ("jira", "POST issue/comment", "timeout"))
    counters.add(TRACKER_CALLS, ("jira", "POST issue/comment", "timeout"))

    assert counters.read() == {TRACKER_CALLS: {("jira", "POST issue/comment", "timeout"): 2.0}}
