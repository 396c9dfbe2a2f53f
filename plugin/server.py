"""Running the service under gunicorn, and the rq worker with its sweeper."""

from __future__ import annotations

import logging
import threading

from plugin.app import create_app
from plugin.followup import send_due_reminders
from plugin.gunicorn_app import FlaskServer, gunicorn_options
from plugin.jobs import bind_runtime
from plugin.metrics import COUNTERS
from plugin.queue import DISPATCH_WAIT_S, RqQueue
from plugin.runtime import Runtime
from plugin.settings import Settings

log = logging.getLogger(__name__)


def serve(settings: Settings, *, workers: int, threads: int) -> None:
    """Run gunicorn on the configured host and port."""
    if not settings.redis_url and workers > 1:
        # Without Redis the worker thread lives in the web process; one process keeps the
        # embedded SQLite database to a single writer.
        log.warning("serve.single-process: no LEANGUARD_REDIS_URL, so running one web process")
        workers = 1
    options = gunicorn_options(settings.host, settings.port, workers=workers, threads=threads)
    FlaskServer(lambda: create_app(settings), options).run()


def run_worker(settings: Settings, *, burst: bool) -> None:
    """Run an rq worker on the deliveries queue, with the dispatcher and the sweeper beside it."""
    from rq import SimpleWorker

    runtime = Runtime.from_settings(settings)
    bind_runtime(runtime)
    queue = RqQueue(runtime, settings.redis_url)
    COUNTERS.share_via(queue.redis)
    stop = threading.Event()

    def sweep_forever() -> None:
        while not stop.wait(settings.sweep_interval_s):
            try:
                queue.sweep()
            except Exception:
                log.exception("worker.sweep-failed")
            try:
                send_due_reminders(runtime)
            except Exception:
                log.exception("worker.follow-up-failed")

    def dispatch_forever() -> None:
        while not stop.is_set():
            try:
                queue.dispatch(wait_s=DISPATCH_WAIT_S)
            except Exception:
                log.exception("worker.dispatch-failed")
                # Redis is down or restarting: look again later rather than spin.
                stop.wait(DISPATCH_WAIT_S)

    queue.sweep()
    if not burst:
        # A burst worker works what the sweep above dispatched and stops; a lasting one keeps
        # turning the web processes' hand-offs into jobs.
        for name, target in (("sweeper", sweep_forever), ("dispatcher", dispatch_forever)):
            threading.Thread(target=target, name=f"leanguard-{name}", daemon=True).start()
    # SimpleWorker runs jobs in this process: no fork, so the database pool stays valid.
    worker = SimpleWorker([queue.queue], connection=queue.redis)
    try:
        worker.work(burst=burst, with_scheduler=False)
    finally:
        stop.set()
