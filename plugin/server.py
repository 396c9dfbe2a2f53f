"""Running the service under gunicorn, and the rq worker with its sweeper."""

from __future__ import annotations

import logging
import threading

from plugin.app import create_app
from plugin.followup import send_due_reminders
from plugin.gunicorn_app import FlaskServer, gunicorn_options
from plugin.jobs import bind_runtime
from plugin.metrics import COUNTERS
from plugin.queue import RqQueue
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
    """Run an rq worker on the deliveries queue, plus the sweeper that re-drives lost work."""
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

    queue.sweep()
    sweeper = threading.Thread(target=sweep_forever, name="leanguard-sweeper", daemon=True)
    sweeper.start()
    # SimpleWorker runs jobs in this process: no fork, so the database pool stays valid.
    worker = SimpleWorker([queue.queue], connection=queue.redis)
    try:
        worker.work(burst=burst, with_scheduler=False)
    finally:
        stop.set()
