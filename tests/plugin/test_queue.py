"""The rq queue: web processes hand delivery ids over in batches, dispatchers enqueue them."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rq.job import Job

from plugin import queue as queue_module
from plugin.queue import RQ_GRACE_S, RqQueue
from plugin.runtime import Runtime
from plugin.settings import Settings
from plugin.storage import Database, get_or_create_tenant
from plugin.storage.deliveries import store_delivery
from webhooks.events import InboundEvent, ItemRef

WAIT_S = 10.0


@pytest.fixture
def rq_queue(redis_server: str) -> Iterator[RqQueue]:
    """An rq queue of its own name on the test Redis database, emptied afterwards."""
    database = Database("sqlite://")
    database.upgrade()
    runtime = Runtime(settings=Settings(), database=database)
    queue = RqQueue(runtime, redis_server, name=f"leanguard-test-{uuid.uuid4().hex}")
    yield queue
    queue.queue.delete(delete_jobs=True)
    queue.redis.delete(queue.handoff_key)
    queue.redis.close()


@pytest.fixture
def enqueued_batches(rq_queue: RqQueue, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The job ids of every ``enqueue_many`` call on the queue, one list per call."""
    batches: list[list[str]] = []
    lock = threading.Lock()
    enqueue_many = rq_queue.queue.enqueue_many

    def recorded(job_datas: list[Any], **options: Any) -> list[Job]:
        with lock:
            batches.append([data.job_id for data in job_datas])
        return enqueue_many(job_datas, **options)

    monkeypatch.setattr(rq_queue.queue, "enqueue_many", recorded)
    return batches


def handed_over(queue: RqQueue) -> list[int]:
    """The delivery ids on the hand-off list, oldest first."""
    return [int(value) for value in queue.redis.lrange(queue.handoff_key, 0, -1)]


@pytest.mark.redis
def test_deliveries_submitted_together_are_handed_over_in_one_round_trip(
    rq_queue: RqQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A linger far longer than the loop below, so the batch cannot split by chance.
    monkeypatch.setattr(queue_module, "ENQUEUE_LINGER_S", 0.5)
    pushes: list[int] = []
    rpush = rq_queue.redis.rpush

    def counted(key: str, *values: Any) -> Any:
        pushes.append(len(values))
        return rpush(key, *values)

    monkeypatch.setattr(rq_queue.redis, "rpush", counted)

    for delivery_pk in range(1, 51):
        rq_queue.submit(delivery_pk)
    deadline = time.monotonic() + WAIT_S
    while len(handed_over(rq_queue)) < 50:
        assert time.monotonic() < deadline, "the enqueuer never handed the deliveries over"
        time.sleep(0.01)

    assert pushes == [50]
    assert handed_over(rq_queue) == list(range(1, 51))
    assert rq_queue.queue.count == 0, "the web side builds no rq jobs"


@pytest.mark.redis
def test_flush_hands_over_what_is_pending_without_waiting_for_the_linger(
    rq_queue: RqQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue_module, "ENQUEUE_LINGER_S", 60.0)

    rq_queue.submit(7)
    rq_queue.flush()

    assert handed_over(rq_queue) == [7]


@pytest.mark.redis
def test_dispatch_turns_the_hand_off_into_jobs_in_batches(
    rq_queue: RqQueue, enqueued_batches: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue_module, "ENQUEUE_BATCH", 4)
    rq_queue.redis.rpush(rq_queue.handoff_key, *range(1, 11))

    assert rq_queue.dispatch() == 10

    assert [len(batch) for batch in enqueued_batches] == [4, 4, 2]
    assert rq_queue.queue.job_ids == [f"delivery-{pk}" for pk in range(1, 11)]
    assert handed_over(rq_queue) == []
    job = rq_queue.queue.fetch_job("delivery-3")
    assert job is not None
    assert job.func_name == queue_module.JOB_FUNCTION
    assert job.args == (3,)


@pytest.mark.redis
def test_a_waiting_dispatch_wakes_when_an_id_is_handed_over(rq_queue: RqQueue) -> None:
    dispatched: list[int] = []
    waiter = threading.Thread(target=lambda: dispatched.append(rq_queue.dispatch(wait_s=WAIT_S)))
    waiter.start()
    time.sleep(0.1)

    rq_queue.submit(42)
    rq_queue.flush()
    waiter.join(WAIT_S)

    assert dispatched == [1]
    assert rq_queue.queue.job_ids == ["delivery-42"]


@pytest.mark.redis
def test_a_dispatch_with_nothing_handed_over_gives_up_after_its_wait(rq_queue: RqQueue) -> None:
    assert rq_queue.dispatch(wait_s=0.1) == 0
    assert rq_queue.dispatch() == 0
    assert rq_queue.queue.count == 0


@pytest.mark.redis
def test_two_dispatchers_never_enqueue_one_delivery_twice(
    rq_queue: RqQueue, enqueued_batches: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue_module, "ENQUEUE_BATCH", 7)
    rq_queue.redis.rpush(rq_queue.handoff_key, *range(1, 301))

    threads = [threading.Thread(target=rq_queue.dispatch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)

    enqueued = [job_id for batch in enqueued_batches for job_id in batch]
    assert sorted(enqueued) == sorted(f"delivery-{pk}" for pk in range(1, 301))


@pytest.mark.redis
def test_depth_counts_jobs_and_handed_over_ids(rq_queue: RqQueue) -> None:
    rq_queue.redis.rpush(rq_queue.handoff_key, 1, 2, 3)
    rq_queue.dispatch()
    rq_queue.redis.rpush(rq_queue.handoff_key, 4, 5)

    assert rq_queue.depth() == 5


def store_old_delivery(queue: RqQueue) -> int:
    """Store a delivery received long before the sweeper's grace; return its row id."""
    event = InboundEvent(
        tracker="jira",
        site="https://acme.atlassian.net",
        delivery_id="d-1",
        event_type="jira:issue_updated",
        needs_work=True,
        refs=(ItemRef(tracker="jira", key="PROJ-1"),),
        actor_id=None,
        changes=(),
        occurred_at=None,
        payload={"webhookEvent": "jira:issue_updated", "issue": {"key": "PROJ-1"}},
    )
    long_ago = datetime.now(UTC) - timedelta(seconds=RQ_GRACE_S + 60)
    with queue.runtime.database.session() as session:
        tenant = get_or_create_tenant(session, tracker="jira", site=event.site)
        delivery_pk, _ = store_delivery(session, tenant_id=tenant.id, event=event, now=long_ago)
    return delivery_pk


@pytest.mark.redis
def test_a_sweep_enqueues_a_backlog_on_the_hand_off_once(rq_queue: RqQueue) -> None:
    # Past the grace and without a job: the sweep alone would take it for lost, and the
    # dispatcher would then enqueue it a second time.
    delivery_pk = store_old_delivery(rq_queue)
    rq_queue.redis.rpush(rq_queue.handoff_key, delivery_pk)

    rq_queue.sweep()
    rq_queue.dispatch()

    assert rq_queue.queue.job_ids == [f"delivery-{delivery_pk}"]
    assert handed_over(rq_queue) == []


@pytest.mark.redis
def test_a_sweep_enqueues_a_delivery_whose_hand_off_was_lost(rq_queue: RqQueue) -> None:
    delivery_pk = store_old_delivery(rq_queue)

    assert rq_queue.sweep() == 1

    assert rq_queue.queue.job_ids == [f"delivery-{delivery_pk}"]
