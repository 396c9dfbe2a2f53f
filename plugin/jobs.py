"""rq job functions; arguments are plain ids, and the job reloads everything it needs."""

from __future__ import annotations

from plugin.metrics import COUNTERS
from plugin.processing import process_delivery
from plugin.runtime import Runtime

_runtime: Runtime | None = None


def bind_runtime(runtime: Runtime) -> None:
    """Give this worker process the runtime its jobs use."""
    global _runtime
    _runtime = runtime


def run_delivery(delivery_pk: int) -> str:
    """Work one delivery (the rq job)."""
    if _runtime is None:
        raise RuntimeError("the worker has no runtime; start it with `leanguard worker`")
    try:
        return process_delivery(_runtime, delivery_pk)
    finally:
        # The job's tracker calls join the deployment's sums that /metrics reads.
        COUNTERS.publish()
