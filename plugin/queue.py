"""Queues that run deliveries: rq on Redis when configured, else a worker thread in-process."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job, JobStatus
from sqlalchemy import select

from plugin.followup import send_due_reminders
from plugin.runtime import Runtime
from plugin.storage import Delivery, DeliveryState, due_deliveries

log = logging.getLogger(__name__)

QUEUE_NAME = "leanguard"
JOB_FUNCTION = "plugin.jobs.run_delivery"
SWEEP_BATCH = 200
ENQUEUE_BATCH = 200
ENQUEUE_IDLE_S = 1.0
"""The enqueuer thread also wakes this often, so nothing waits long on a missed wake-up."""
ENQUEUE_LINGER_S = 0.02
"""How long the enqueuer lets deliveries gather before it hands them over: a busy process then
pushes several ids per round trip instead of one each, and wakes the thread far less often
(each wake-up and round trip costs a web process about as much as parsing a webhook)."""
DISPATCH_WAIT_S = 1.0
"""How long a worker's dispatcher blocks on an empty hand-off list before it looks again."""
RQ_GRACE_S = 5.0
"""A received delivery younger than this is assumed to be on its way to rq: the web process hands
it over right after its commit, and a worker's dispatcher enqueues it at once. Older ones are
re-enqueued unless rq still holds their job, so the grace only has to cover that moment, not a
backlog."""
_WAITING = frozenset({JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED})


class WorkQueue(Protocol):
    """Where accepted deliveries go to be worked."""

    def submit(self, delivery_pk: int) -> None:
        """Ask for a delivery to be worked soon; losing the request only delays the work."""

    def depth(self) -> int | None:
        """Return how many jobs wait, if known."""

    def ping(self) -> bool:
        """Tell whether the queue can take work."""


class InProcessQueue:
    """A single worker thread draining the inbox in the web process (the embedded default)."""

    def __init__(
        self,
        runtime: Runtime,
        process: Callable[[Runtime, int], str],
        *,
        poll_s: float = 1.0,
    ) -> None:
        self.runtime = runtime
        self.process = process
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="leanguard-worker", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker thread after its current delivery."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def submit(self, delivery_pk: int) -> None:
        """Wake the worker; it finds the delivery in the database."""
        self._wake.set()

    def depth(self) -> int | None:
        """The in-process queue is the inbox itself; its depth is the count of due deliveries."""
        with self.runtime.database.session() as session:
            return len(due_deliveries(session, now=datetime.now(UTC), limit=10_000))

    def ping(self) -> bool:
        """The thread is the queue; it is reachable while it runs."""
        return self._thread is not None and self._thread.is_alive()

    def drain(self, *, rounds: int = 50) -> int:
        """Work every due delivery in the calling thread; return how many were worked."""
        worked = 0
        for _ in range(rounds):
            with self.runtime.database.session() as session:
                due = due_deliveries(session, now=datetime.now(UTC), limit=SWEEP_BATCH)
            if not due:
                break
            for delivery_pk in due:
                self.process(self.runtime, delivery_pk)
                worked += 1
        return worked

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.drain(rounds=1)
            except Exception:
                # The database may be restarting; keep the thread alive and try again.
                log.exception("worker.sweep-failed")
            try:
                send_due_reminders(self.runtime)
            except Exception:
                log.exception("worker.follow-up-failed")
            self._wake.wait(self.poll_s)
            self._wake.clear()


class RqQueue:
    """Deliveries as rq jobs; the job id is the delivery's row id, so a re-submit is harmless.

    Web processes only push delivery ids onto a Redis list, the hand-off; the workers'
    dispatchers (:meth:`dispatch`) turn them into rq jobs. Building an rq job record costs a web
    process more than storing the delivery does, and a worker can do it a moment later.
    """

    def __init__(self, runtime: Runtime, redis_url: str, *, name: str = QUEUE_NAME) -> None:
        self.runtime = runtime
        self.redis = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
        self.queue = Queue(name, connection=self.redis)
        self.handoff_key = f"leanguard:handoff:{name}"
        # Webhook requests hand their delivery ids to one enqueuer thread per process: the
        # request answers without waiting for Redis (or for its timeout, when Redis is down),
        # and the thread pushes whatever has gathered in one round trip.
        self._pending: deque[int] = deque()
        self._wake = threading.Event()
        self._drain_lock = threading.Lock()
        self._enqueuer: threading.Thread | None = None
        self._enqueuer_guard = threading.Lock()

    def submit(self, delivery_pk: int) -> None:
        """Ask for a delivery to be enqueued soon; if Redis is down, the sweeper does it later."""
        self._pending.append(delivery_pk)
        if self._enqueuer is None or not self._enqueuer.is_alive():
            with self._enqueuer_guard:
                if self._enqueuer is None or not self._enqueuer.is_alive():
                    self._enqueuer = threading.Thread(
                        target=self._enqueue_forever, name="leanguard-enqueuer", daemon=True
                    )
                    self._enqueuer.start()
        self._wake.set()

    def flush(self) -> None:
        """Hand over everything submitted so far before returning (tests, shutdown)."""
        self._drain()

    def dispatch(self, *, wait_s: float = 0.0) -> int:
        """Turn handed-over delivery ids into rq jobs; return how many were enqueued.

        With ``wait_s``, block up to that long for a first id when there is none. Ids leave
        the list atomically, so two workers' dispatchers never both enqueue one; ids taken by a
        worker that dies before enqueuing them are re-driven by the sweeper.
        """
        taken: list[int] = []
        if wait_s > 0:
            first = self.redis.blpop([self.handoff_key], timeout=wait_s)
            if first is None:
                return 0
            taken.append(int(first[1]))
        enqueued = 0
        while True:
            # LRANGE and LTRIM in one transaction take a batch off the head on any Redis
            # version (LPOP with a count needs 6.2).
            pipe = self.redis.pipeline(transaction=True)
            pipe.lrange(self.handoff_key, 0, ENQUEUE_BATCH - 1)
            pipe.ltrim(self.handoff_key, ENQUEUE_BATCH, -1)
            batch, _ = pipe.execute()
            taken += [int(value) for value in batch]
            if taken:
                self._enqueue(taken)
                enqueued += len(taken)
                taken = []
            if len(batch) < ENQUEUE_BATCH:
                return enqueued

    def _enqueue_forever(self) -> None:
        while True:
            if not self._wake.wait(ENQUEUE_IDLE_S):
                continue
            time.sleep(ENQUEUE_LINGER_S)
            self._wake.clear()
            try:
                self._drain()
            except Exception:
                log.exception("queue.enqueuer-failed")

    def _drain(self) -> None:
        with self._drain_lock:
            # What is pending now, in batches; later arrivals wait for the next linger so that
            # a steady stream is pushed in batches rather than one id at a time.
            for _ in range(0, len(self._pending), ENQUEUE_BATCH):
                batch: list[int] = []
                while self._pending and len(batch) < ENQUEUE_BATCH:
                    batch.append(self._pending.popleft())
                self._hand_over(batch)

    def _hand_over(self, delivery_pks: list[int]) -> None:
        try:
            self.redis.rpush(self.handoff_key, *delivery_pks)
        except RedisError as exc:
            # Stored deliveries are never lost: the sweeper enqueues them once Redis is back.
            log.warning(
                "queue.handoff-failed",
                extra={"deliveries": len(delivery_pks), "error": type(exc).__name__},
            )

    def _enqueue(self, delivery_pks: list[int]) -> None:
        settings = self.runtime.settings
        try:
            self.queue.enqueue_many(
                [
                    Queue.prepare_data(
                        JOB_FUNCTION,
                        args=(delivery_pk,),
                        job_id=_job_id(delivery_pk),
                        timeout=settings.job_timeout_s,
                        result_ttl=600,
                        failure_ttl=7 * 24 * 3600,
                    )
                    for delivery_pk in delivery_pks
                ]
            )
        except RedisError as exc:
            # Stored deliveries are never lost: the sweeper enqueues them once Redis is back.
            log.warning(
                "queue.enqueue-failed",
                extra={"deliveries": len(delivery_pks), "error": type(exc).__name__},
            )

    def sweep(self) -> int:
        """Enqueue deliveries that are due but may have no job (Redis lost it, a worker died).

        Retries and expired leases are enqueued when due: nothing else runs them (a dead
        worker's job still looks started in Redis). A ``received`` delivery is enqueued only
        once it is past the grace and rq holds no waiting job for it, so a backlog in Redis is
        not enqueued a second time. Returns how many were enqueued.
        """
        # Ids still on the hand-off list have no job yet; enqueue them first so that a backlog
        # there is not taken for lost deliveries and enqueued twice.
        self.dispatch()
        now = datetime.now(UTC)
        with self.runtime.database.session() as session:
            due = due_deliveries(
                session,
                now=now,
                received_before=now - timedelta(seconds=RQ_GRACE_S),
                limit=SWEEP_BATCH,
            )
            received = set(
                session.scalars(
                    select(Delivery.id).where(
                        Delivery.id.in_(due), Delivery.state == DeliveryState.RECEIVED
                    )
                )
            )
        waiting = self._waiting_jobs(received)
        lost = [pk for pk in due if pk not in waiting]
        if lost:
            self._enqueue(lost)
        if lost:
            log.info("queue.swept", extra={"enqueued": len(lost)})
        return len(lost)

    def _waiting_jobs(self, delivery_pks: set[int]) -> set[int]:
        """Return the deliveries among ``delivery_pks`` whose rq job is queued or running."""
        if not delivery_pks:
            return set()
        ordered = sorted(delivery_pks)
        jobs = Job.fetch_many(
            [_job_id(pk) for pk in ordered], connection=self.redis, serializer=self.queue.serializer
        )
        return {
            pk
            for pk, job in zip(ordered, jobs, strict=True)
            if job is not None and job.get_status(refresh=False) in _WAITING
        }

    def depth(self) -> int | None:
        """Return how many jobs and handed-over ids wait, or None when Redis does not answer."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.llen(self.queue.key)
        pipe.llen(self.handoff_key)
        try:
            return sum(int(count) for count in pipe.execute())
        except RedisError:
            return None

    def ping(self) -> bool:
        """Tell whether Redis answers."""
        try:
            return bool(self.redis.ping())
        except RedisError:
            return False


def _job_id(delivery_pk: int) -> str:
    return f"delivery-{delivery_pk}"
