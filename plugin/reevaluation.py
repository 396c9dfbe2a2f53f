"""Re-evaluating a scope's open items after its rules change, in the background, visibly."""

from __future__ import annotations

import logging
import threading
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from plugin.processing import item_lock, reconcile_card
from plugin.queue import RqQueue, WorkQueue
from plugin.rules_store import effective_ruleset, open_items
from plugin.runtime import Runtime
from plugin.storage import Tenant, WorkItemRow, record_evaluation
from plugin.storage.reevaluations import (
    ReevaluationState,
    count_item,
    create_reevaluation,
    finish_reevaluation,
    get_reevaluation,
    stale_reevaluations,
    start_reevaluation,
)
from plugin.trackers.base import TrackerClient
from rules import evaluate

log = logging.getLogger(__name__)

EXTENSION = "leanguard.reevaluations"
JOB_FUNCTION = "plugin.reevaluation.run_job"
STALE_AFTER_S = 600.0
"""A job that has not moved for this long lost its worker and is started again."""


def utcnow() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


class ReevaluationRunner:
    """Runs re-evaluation jobs: as rq jobs when Redis is configured, else in a thread."""

    def __init__(self, runtime: Runtime, queue: WorkQueue | None = None) -> None:
        self.runtime = runtime
        self.queue = queue
        self._threads: list[threading.Thread] = []
        self._guard = threading.Lock()

    def request(
        self,
        *,
        tenant_id: int,
        tracker: str,
        project: str | None,
        ruleset_version: int | None,
        requested_by: str,
    ) -> int:
        """Record a job for a scope and start it; return the job's id."""
        with self.runtime.database.session() as session:
            job = create_reevaluation(
                session,
                tenant_id=tenant_id,
                tracker=tracker,
                project=project,
                ruleset_version=ruleset_version,
                requested_by=requested_by,
                now=utcnow(),
            )
            job_id = job.id
        # The record is committed first: a lost start only leaves a queued job that the next
        # start of the service picks up again.
        self.submit(job_id)
        return job_id

    def submit(self, job_id: int) -> None:
        """Start a recorded job."""
        if isinstance(self.queue, RqQueue):
            try:
                self.queue.queue.enqueue_call(
                    JOB_FUNCTION,
                    args=(job_id,),
                    job_id=f"reevaluation-{job_id}",
                    timeout=max(600, self.runtime.settings.job_timeout_s),
                    result_ttl=600,
                    failure_ttl=7 * 24 * 3600,
                )
                return
            except RedisError as exc:
                # Redis is down: do the work here rather than leave the cards stale.
                log.warning(
                    "reevaluation.enqueue-failed",
                    extra={"job": job_id, "error": type(exc).__name__},
                )
        thread = threading.Thread(
            target=run_reevaluation,
            args=(self.runtime, job_id),
            name=f"leanguard-reevaluation-{job_id}",
            daemon=True,
        )
        with self._guard:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def wait(self, timeout: float = 30.0) -> bool:
        """Wait for the jobs started in this process; True if all finished in time."""
        with self._guard:
            threads = list(self._threads)
        deadline = utcnow() + timedelta(seconds=timeout)
        for thread in threads:
            thread.join(max(0.0, (deadline - utcnow()).total_seconds()))
        return not any(thread.is_alive() for thread in threads)

    def resume_stale(self) -> int:
        """Start again the jobs whose worker died (unfinished and not moved for a while)."""
        try:
            with self.runtime.database.session() as session:
                stale = stale_reevaluations(
                    session, older_than=utcnow() - timedelta(seconds=STALE_AFTER_S)
                )
        except SQLAlchemyError:
            log.exception("reevaluation.resume-failed")
            return 0
        for job_id in stale:
            log.info("reevaluation.resumed", extra={"job": job_id})
            self.submit(job_id)
        return len(stale)


def run_reevaluation(runtime: Runtime, job_id: int) -> str:
    """Re-check every open item of the job's scope from its stored snapshot; return the state."""
    try:
        with runtime.database.session() as session:
            job = get_reevaluation(session, job_id)
            if job is None:
                return "missing"
            if ReevaluationState(job.state).finished:
                return job.state
            tenant = session.get(Tenant, job.tenant_id)
            if tenant is None:
                raise LookupError(f"re-evaluation {job_id} has no tenant")
            session.expunge(tenant)
            items = [
                row.id
                for row in open_items(
                    session, tenant_id=job.tenant_id, tracker=job.tracker, project=job.project
                )
            ]
            start_reevaluation(session, job_id, total=len(items), now=utcnow())
        client = runtime.client_for(tenant)
        log.info("reevaluation.started", extra={"job": job_id, "items": len(items)})
        for item_pk in items:
            error: str | None = None
            try:
                _recheck(runtime, tenant, client, item_pk)
            except Exception as exc:
                # One item's tracker failure must not stop the others; it is counted and shown.
                error = f"{type(exc).__name__}: {exc}"
                log.warning("reevaluation.item-failed", extra={"job": job_id, "error": error})
            with runtime.database.session() as session:
                count_item(session, job_id, error=error, now=utcnow())
        with runtime.database.session() as session:
            finish_reevaluation(
                session, job_id, state=ReevaluationState.DONE, error=None, now=utcnow()
            )
    except Exception as exc:
        log.exception("reevaluation.crashed", extra={"job": job_id})
        with runtime.database.session() as session:
            finish_reevaluation(
                session,
                job_id,
                state=ReevaluationState.FAILED,
                error=f"{type(exc).__name__}: {exc}",
                now=utcnow(),
            )
        return ReevaluationState.FAILED.value
    log.info("reevaluation.done", extra={"job": job_id})
    return ReevaluationState.DONE.value


def _recheck(runtime: Runtime, tenant: Tenant, client: TrackerClient | None, item_pk: int) -> None:
    """Evaluate one stored snapshot under the rules now in force and reconcile its card."""
    with runtime.database.session() as session:
        row = session.get(WorkItemRow, item_pk)
        if row is None:
            return
        key, item_id = row.key, row.item_id
    # Webhook workers lock an item by the key or id their delivery names, then by its id;
    # taking them in the same order keeps this job and a worker from posting two cards.
    with (
        item_lock(runtime, tenant.id, key),
        item_lock(runtime, tenant.id, item_id) if item_id != key else nullcontext(),
    ):
        with runtime.database.session() as session:
            row = session.get(WorkItemRow, item_pk)
            if row is None or row.deleted:
                return
            item = row.item()
            ruleset, _ = effective_ruleset(session, runtime, tenant.id, item.tracker, item.project)
            evaluation = evaluate(item, ruleset)
            record_evaluation(session, work_item=row, evaluation=evaluation, evaluated_at=utcnow())
        if client is None:
            return  # no credentials: the result is stored, the tracker is left alone
        kind = "project" if item.tracker == "linear" and item.kind == "project" else "issue"
        reconcile_card(runtime, client, item_pk, item, evaluation, kind)


def run_job(job_id: int) -> str:
    """Run one re-evaluation (the rq job), with the runtime ``leanguard worker`` bound."""
    from plugin import jobs

    # The worker binds its runtime in plugin.jobs (bind_runtime) before it takes any job.
    runtime = jobs._runtime
    if runtime is None:
        raise RuntimeError("the worker has no runtime; start it with `leanguard worker`")
    return run_reevaluation(runtime, job_id)
