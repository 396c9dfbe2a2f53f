"""Queues that run deliveries: rq on Redis when configured, else a worker thread in-process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from plugin.runtime import Runtime
from plugin.storage import due_deliveries

log = logging.getLogger(__name__)

QUEUE_NAME = "leanguard"
JOB_FUNCTION = "plugin.jobs.run_delivery"
SWEEP_BATCH = 200
RQ_GRACE_S = 30.0
"""A received delivery younger than this is assumed to be in Redis already."""


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
            self._wake.wait(self.poll_s)
            self._wake.clear()


class RqQueue:
    """Deliveries as rq jobs; the job id is the delivery's row id, so a re-submit is harmless."""

    def __init__(self, runtime: Runtime, redis_url: str, *, name: str = QUEUE_NAME) -> None:
        self.runtime = runtime
        self.redis = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
        self.queue = Queue(name, connection=self.redis)

    def submit(self, delivery_pk: int) -> None:
        """Enqueue a delivery; if Redis is down, the sweeper enqueues it later."""
        try:
            self.queue.enqueue_call(
                JOB_FUNCTION,
                args=(delivery_pk,),
                job_id=f"delivery-{delivery_pk}",
                timeout=self.runtime.settings.job_timeout_s,
                result_ttl=600,
                failure_ttl=7 * 24 * 3600,
            )
        except RedisError as exc:
            log.warning(
                "queue.enqueue-failed",
                extra={"delivery_pk": delivery_pk, "error": type(exc).__name__},
            )

    def sweep(self) -> int:
        """Enqueue deliveries that are due but may have no job (Redis lost it, a worker died)."""
        now = datetime.now(UTC) - timedelta(seconds=RQ_GRACE_S)
        with self.runtime.database.session() as session:
            due = due_deliveries(session, now=now, limit=SWEEP_BATCH)
        for delivery_pk in due:
            self.submit(delivery_pk)
        return len(due)

    def depth(self) -> int | None:
        """Return the number of queued jobs, or None when Redis does not answer."""
        try:
            return int(self.queue.count)
        except RedisError:
            return None

    def ping(self) -> bool:
        """Tell whether Redis answers."""
        try:
            return bool(self.redis.ping())
        except RedisError:
            return False
