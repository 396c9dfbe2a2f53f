"""The figures ``/metrics`` serves in the Prometheus text format, right across processes.

gunicorn runs several web processes and every rq worker is a process of its own, often in
another container, so no figure may live only in the memory of the process that is scraped:

- Deliveries by tracker and state (dead letters are ``state="dead"``) and the latency from
  receipt to done are read from the database at scrape time. The inbox is the record every
  process writes to, so any web process answers the same, and a restart loses nothing. The
  latency histogram counts done deliveries by ``updated_at - received_at``; its buckets only
  grow, as a Prometheus histogram's must, because deliveries are never deleted.
- Tracker calls and rate-limit waits happen in whichever process works a job and leave no row.
  Each process counts them in memory and, in the distributed set-up, adds its counts to hashes
  in the Redis the queue already uses (after every job, and when scraped); a scrape reads the
  sums there. In the embedded set-up one process does everything and its memory is the truth.

prometheus_client's multiprocess mode would need one directory shared by every web process and
every rq worker; the workers run in other containers (docker-compose.yml), so it would count
only the web processes' own calls. No new dependency is needed for a few text lines either.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Mapping
from typing import Protocol, cast

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from plugin.storage import Delivery, DeliveryState

log = logging.getLogger(__name__)

TRACKERS = ("jira", "linear")
LATENCY_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

TRACKER_CALLS = "leanguard_tracker_calls_total"
TRACKER_CALL_SECONDS = "leanguard_tracker_call_seconds_total"
RATE_LIMIT_WAITS = "leanguard_rate_limit_waits_total"
RATE_LIMIT_WAIT_SECONDS = "leanguard_rate_limit_wait_seconds_total"

_COUNTER_HELP = {
    TRACKER_CALLS: (
        ("tracker", "operation", "status"),
        "Requests to the trackers' APIs, by operation and HTTP status (or the network error).",
    ),
    TRACKER_CALL_SECONDS: (
        ("tracker", "operation"),
        "Seconds spent waiting for the trackers' APIs, by operation.",
    ),
    RATE_LIMIT_WAITS: (
        ("tracker",),
        "Deliveries put off because a tracker asked to slow down (429, Linear RATELIMITED).",
    ),
    RATE_LIMIT_WAIT_SECONDS: (
        ("tracker",),
        "Seconds deliveries were put off for at a tracker's request (Retry-After).",
    ),
}
_REDIS_PREFIX = "leanguard:metrics:"
_PUBLISH_EVERY_S = 10.0
"""A process that counts but never finishes a job (a web request) still publishes this often."""
_RETRY_PUBLISH_S = 30.0
"""After Redis failed to take the counts, they are kept and offered again after this long."""

Labels = tuple[str, ...]
Counts = dict[str, dict[Labels, float]]


class Queue(Protocol):
    """What the metrics need of a work queue."""

    def depth(self) -> int | None:
        """Return how many jobs wait, if known."""


class Counters:
    """This process's counters, and where the deployment's sums live."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: Counts = {}
        self._pending: Counts = {}
        self._redis: Redis | None = None
        self._published_at = time.monotonic()
        self._publish_after = 0.0

    def share_via(self, redis: Redis | None) -> None:
        """Add this process's counts to Redis from now on (None: keep them in memory only)."""
        with self._lock:
            self._redis = redis
            self._pending = {}

    def add(self, name: str, labels: Labels, value: float = 1.0) -> None:
        """Count ``value`` more for one series."""
        with self._lock:
            series = self._totals.setdefault(name, {})
            series[labels] = series.get(labels, 0.0) + value
            if self._redis is not None:
                pending = self._pending.setdefault(name, {})
                pending[labels] = pending.get(labels, 0.0) + value
            due = time.monotonic() - self._published_at > _PUBLISH_EVERY_S
        if due:
            self.publish()

    def publish(self) -> bool:
        """Add the counts not yet in Redis to its sums; True unless Redis failed."""
        with self._lock:
            redis, pending = self._redis, self._pending
            if redis is None or not pending or time.monotonic() < self._publish_after:
                return redis is None or not pending
            self._pending = {}
            self._published_at = time.monotonic()
        try:
            pipe = redis.pipeline(transaction=False)
            for name, series in pending.items():
                for labels, value in series.items():
                    pipe.hincrbyfloat(_REDIS_PREFIX + name, json.dumps(labels), value)
            pipe.execute()
        except RedisError as exc:
            with self._lock:
                # Keep the counts for the next try; a lost scrape is better than a lost count.
                for name, series in pending.items():
                    kept = self._pending.setdefault(name, {})
                    for labels, value in series.items():
                        kept[labels] = kept.get(labels, 0.0) + value
                self._publish_after = time.monotonic() + _RETRY_PUBLISH_S
            log.warning("metrics.publish-failed", extra={"error": type(exc).__name__})
            return False
        return True

    def read(self) -> Counts | None:
        """Return the deployment's sums (Redis) or this process's (embedded); None if unknown."""
        with self._lock:
            redis = self._redis
            if redis is None:
                return {name: dict(series) for name, series in self._totals.items()}
        self.publish()
        try:
            pipe = redis.pipeline(transaction=False)
            for name in _COUNTER_HELP:
                pipe.hgetall(_REDIS_PREFIX + name)
            answers = pipe.execute()
        except RedisError as exc:
            log.warning("metrics.read-failed", extra={"error": type(exc).__name__})
            return None
        counts: Counts = {}
        for name, raw in zip(_COUNTER_HELP, answers, strict=True):
            counts[name] = {
                tuple(json.loads(field)): float(value) for field, value in dict(raw).items()
            }
        return counts


COUNTERS = Counters()
"""The process's counters, like a logging registry: one per process, shared by its threads."""


def record_tracker_call(tracker: str, operation: str, status: int | str, seconds: float) -> None:
    """Count one request to a tracker's API (called from each client's single request path)."""
    COUNTERS.add(TRACKER_CALLS, (tracker, operation, str(status)))
    COUNTERS.add(TRACKER_CALL_SECONDS, (tracker, operation), max(0.0, seconds))


def record_rate_limit_wait(tracker: str, seconds: float) -> None:
    """Count a delivery put off for ``seconds`` because the tracker asked to slow down."""
    COUNTERS.add(RATE_LIMIT_WAITS, (tracker,))
    COUNTERS.add(RATE_LIMIT_WAIT_SECONDS, (tracker,), max(0.0, seconds))


def render(session: Session, *, queue: Queue, rules_valid: bool) -> str:
    """Return every figure in the Prometheus text exposition format (version 0.0.4)."""
    out: list[str] = []
    by_tracker = _delivery_counts(session)
    states = [str(state) for state in DeliveryState]
    _family(out, "leanguard_deliveries", "gauge", "Webhook deliveries in the inbox, by state.")
    for state in states:
        total = sum(counts.get(state, 0) for counts in by_tracker.values())
        out.append(_sample("leanguard_deliveries", {"state": state}, total))
    _family(
        out,
        "leanguard_deliveries_by_tracker",
        "gauge",
        "Webhook deliveries in the inbox, by tracker and state (dead letters: state dead).",
    )
    for tracker, counts in sorted(by_tracker.items()):
        for state in states:
            labels = {"tracker": tracker, "state": state}
            out.append(_sample("leanguard_deliveries_by_tracker", labels, counts.get(state, 0)))
    depth = queue.depth()
    _family(out, "leanguard_queue_depth", "gauge", "Deliveries waiting for a worker.")
    out.append(_sample("leanguard_queue_depth", {}, math.nan if depth is None else depth))
    _latency(out, session)
    shared = COUNTERS.read()
    _family(
        out,
        "leanguard_shared_counters_up",
        "gauge",
        "Whether the tracker call and rate-limit counters could be read (Redis answers).",
    )
    out.append(_sample("leanguard_shared_counters_up", {}, 0 if shared is None else 1))
    for name, (label_names, text) in _COUNTER_HELP.items():
        _family(out, name, "counter", text)
        series: dict[Labels, float] = dict((shared or {}).get(name, {}))
        if name in (RATE_LIMIT_WAITS, RATE_LIMIT_WAIT_SECONDS):
            # Every tracker has a series from the start, so a rate() never misses the first wait.
            series = {(tracker,): 0.0 for tracker in TRACKERS} | series
        for values, value in sorted(series.items()):
            out.append(_sample(name, dict(zip(label_names, values, strict=False)), value))
    _family(
        out,
        "leanguard_rules_valid",
        "gauge",
        "1 when LEANGUARD_RULES loaded cleanly in this process; 0 while the last good rules run.",
    )
    out.append(_sample("leanguard_rules_valid", {}, 1 if rules_valid else 0))
    return "\n".join(out) + "\n"


def _delivery_counts(session: Session) -> dict[str, dict[str, int]]:
    by_tracker: dict[str, dict[str, int]] = {tracker: {} for tracker in TRACKERS}
    rows = session.execute(
        select(Delivery.tracker, Delivery.state, func.count()).group_by(
            Delivery.tracker, Delivery.state
        )
    )
    for tracker, state, count in rows:
        by_tracker.setdefault(str(tracker), {})[str(state)] = int(count)
    return by_tracker


def _latency_s(dialect: str) -> ColumnElement[float]:
    if dialect == "postgresql":
        epoch = func.extract("epoch", Delivery.updated_at - Delivery.received_at)
        return cast(ColumnElement[float], epoch)
    # SQLite keeps UTC text; julianday() reads it as days.
    return (func.julianday(Delivery.updated_at) - func.julianday(Delivery.received_at)) * 86400.0


def _latency(out: list[str], session: Session) -> None:
    name = "leanguard_job_latency_seconds"
    _family(
        out,
        name,
        "histogram",
        "Seconds from a delivery's receipt to the end of its work, for deliveries done.",
    )
    latency = _latency_s(session.get_bind().dialect.name)
    columns = [
        Delivery.tracker,
        func.count(),
        func.coalesce(func.sum(latency), 0.0),
        *(func.sum(case((latency <= bound, 1), else_=0)) for bound in LATENCY_BUCKETS_S),
    ]
    rows = {
        str(row[0]): row[1:]
        for row in session.execute(
            select(*columns).where(Delivery.state == DeliveryState.DONE).group_by(Delivery.tracker)
        )
    }
    for tracker in sorted(set(TRACKERS) | set(rows)):
        count, total, *buckets = rows.get(tracker, (0, 0.0, *(0 for _ in LATENCY_BUCKETS_S)))
        for bound, within in zip(LATENCY_BUCKETS_S, buckets, strict=True):
            labels = {"tracker": tracker, "le": _number(bound)}
            out.append(_sample(f"{name}_bucket", labels, int(within or 0)))
        out.append(_sample(f"{name}_bucket", {"tracker": tracker, "le": "+Inf"}, int(count)))
        out.append(_sample(f"{name}_sum", {"tracker": tracker}, float(total or 0.0)))
        out.append(_sample(f"{name}_count", {"tracker": tracker}, int(count)))


def _family(out: list[str], name: str, kind: str, text: str) -> None:
    out += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]


def _sample(name: str, labels: Mapping[str, str], value: float) -> str:
    if not labels:
        return f"{name} {_number(value)}"
    rendered = ",".join(f'{key}="{_escape(str(text))}"' for key, text in labels.items())
    return f"{name}{{{rendered}}} {_number(value)}"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def parse(text: str) -> dict[str, float]:
    """Read an exposition back into ``{'name{labels}': value}`` (for tests and the bench)."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        samples[series] = float(value)
    return samples


def total(samples: Mapping[str, float], name: str, **labels: str) -> float:
    """Sum the samples of one metric whose labels include ``labels``."""
    wanted = [f'{key}="{_escape(value)}"' for key, value in labels.items()]
    return sum(
        value
        for series, value in samples.items()
        if series.partition("{")[0] == name and all(part in series for part in wanted)
    )
