"""The rq queue's enqueuer: deliveries stored together reach Redis together."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from rq.job import Job

from plugin import queue as queue_module
from plugin.queue import RqQueue
from plugin.runtime import Runtime
from plugin.settings import Settings
from plugin.storage import Database

WAIT_S = 10.0


@pytest.fixture
def rq_queue(redis_server: str) -> Iterator[RqQueue]:
    """An rq queue of its own name on the test Redis database, emptied afterwards."""
    runtime = Runtime(settings=Settings(), database=Database("sqlite://"))
    queue = RqQueue(runtime, redis_server, name=f"leanguard-test-{uuid.uuid4().hex}")
    yield queue
    queue.queue.delete(delete_jobs=True)
    queue.redis.close()


@pytest.mark.redis
def test_deliveries_submitted_together_are_enqueued_in_one_round_trip(
    rq_queue: RqQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A linger far longer than the loop below, so the batch cannot split by chance.
    monkeypatch.setattr(queue_module, "ENQUEUE_LINGER_S", 0.5)
    batches: list[int] = []
    enqueue_many = rq_queue.queue.enqueue_many

    def counted(job_datas: list[Any], **options: Any) -> list[Job]:
        batches.append(len(job_datas))
        return enqueue_many(job_datas, **options)

    monkeypatch.setattr(rq_queue.queue, "enqueue_many", counted)

    for delivery_pk in range(1, 51):
        rq_queue.submit(delivery_pk)
    deadline = time.monotonic() + WAIT_S
    while rq_queue.queue.count < 50:
        assert time.monotonic() < deadline, "the enqueuer never sent the deliveries"
        time.sleep(0.01)

    assert batches == [50]
    assert sorted(rq_queue.queue.job_ids) == sorted(f"delivery-{pk}" for pk in range(1, 51))


@pytest.mark.redis
def test_flush_sends_what_is_pending_without_waiting_for_the_linger(
    rq_queue: RqQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue_module, "ENQUEUE_LINGER_S", 60.0)

    rq_queue.submit(7)
    rq_queue.flush()

    assert rq_queue.queue.job_ids == ["delivery-7"]
