"""Service benchmark: the real service under gunicorn, beside a bare Flask app on the same settings.

Everything runs on 127.0.0.1: ``leanguard serve --workers 2`` on PostgreSQL and Redis, the bare
app of :mod:`bench.baseline_app`, the :class:`~bench.fake_jira.FakeJira` site the workers write
to, and this process's load generator. Figures:

a. ingest throughput: signed ``jira:issue_updated`` webhooks, a new delivery id each, many
   items, as fast as 16 keep-alive connections get answers (rq workers off, so the web tier is
   measured alone);
b. acknowledgement latency at a fixed open-loop rate;
c. end to end, webhook sent to card received by the fake Jira, with two rq workers running;
d. resident memory of each web and rq worker after the load.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from redis import Redis
from sqlalchemy.engine import URL, make_url

from bench.fake_jira import FakeJira
from bench.loadgen import LoadResult, closed_loop, open_loop
from bench.payloads import SignedWebhooks, item_key
from bench.processes import (
    Launched,
    ProcessFailed,
    children_of,
    cpu_busy,
    cpu_seconds,
    free_port,
    rss_bytes,
    wait_healthy,
)
from bench.report import Budget, Figure, percentile

PART = "service"
PROJECT = Path(__file__).resolve().parent.parent

POSTGRES_URL_ENV = "LEANGUARD_BENCH_POSTGRES_URL"
REDIS_URL_ENV = "LEANGUARD_BENCH_REDIS_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
BENCH_DATABASE = "leanguard_bench"
HOST = "127.0.0.1"

WEB_WORKERS = 2
WEB_THREADS = 4
"""``leanguard serve``'s default; the baseline gets the same."""
RQ_WORKERS = 2

INGEST_WARMUP_S = 2.0
INGEST_S = 10.0
INGEST_CONNECTIONS = 16
INGEST_ITEMS = 2_000
INGEST_FIRST_ITEM = 100_000

SLICES = 4
"""Service and baseline take turns in this many slices of a and b."""
ACK_RATE = 100.0
ACK_S = 10.0

E2E_WARMUP_ITEMS = 6
E2E_WARMUP_RATE = 5.0
E2E_RATE = 50.0
"""The rate the production budget names: webhooks per second while cards are measured."""
E2E_S = 10.0
E2E_FIRST_ITEM = 1_000
E2E_DRAIN_S = 30.0
"""How long after the last webhook the cards may take to arrive before they count as lost."""
READY_TIMEOUT_S = 60.0

INGEST_BUDGET = Budget(">=", 40.0, "%")
ACK_P99_BUDGET = Budget("<", 50.0, "ms")
E2E_P95_BUDGET = Budget("<", 1000.0, "ms")
RSS_BUDGET = Budget("<", 150.0, "MB")


@dataclass
class Target:
    """A web service under load: its process, port and the webhooks it is sent."""

    process: Launched
    port: int
    hooks: SignedWebhooks
    items: Iterator[int] = field(
        default_factory=lambda: itertools.cycle(
            range(INGEST_FIRST_ITEM, INGEST_FIRST_ITEM + INGEST_ITEMS)
        )
    )
    """The items the load webhooks are about, round and round."""

    @property
    def name(self) -> str:
        """The process's name: ``service`` or ``baseline``."""
        return self.process.name

    def next_request(self) -> bytes:
        """Return a signed webhook about the next item, with a new delivery id."""
        return self.hooks.request(next(self.items))


@dataclass(frozen=True)
class Endpoints:
    """Where the bench's own database and Redis database are."""

    admin_url: URL
    """A database on the server to connect to while creating and dropping the bench database."""
    database_url: URL
    redis_url: str

    @classmethod
    def from_env(cls) -> Endpoints:
        """Read the URLs (see the ``LEANGUARD_BENCH_*`` variables); refuse Redis database 0."""
        admin = make_url(os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL)
        redis_url = os.environ.get(REDIS_URL_ENV) or DEFAULT_REDIS_URL
        redis_db = Redis.from_url(redis_url).connection_pool.connection_kwargs.get("db", 0)
        if not redis_db:
            raise ValueError(
                f"{REDIS_URL_ENV} must name a Redis database other than 0 (it is flushed), "
                f"e.g. {DEFAULT_REDIS_URL}"
            )
        return cls(admin, admin.set(database=BENCH_DATABASE), redis_url)


def run(figures: list[Figure], *, log_dir: Path | None = None) -> None:
    """Start everything, measure a-d, and stop and clean up whatever happens.

    The processes' output goes to ``log_dir`` when given (kept), else to a temporary folder.
    """
    endpoints = Endpoints.from_env()
    leanguard = Path(sys.executable).with_name("leanguard")
    if not leanguard.exists():
        raise FileNotFoundError(f"{leanguard} is missing; run `make venv` first")
    with contextlib.ExitStack() as s:
        if log_dir is None:
            logs = Path(s.enter_context(tempfile.TemporaryDirectory(prefix="leanguard-bench-")))
        else:
            logs = log_dir.resolve()
            logs.mkdir(parents=True, exist_ok=True)
        redis = Redis.from_url(endpoints.redis_url)
        _create_database(endpoints)
        s.callback(_drop_database, endpoints)
        redis.flushdb()
        s.callback(redis.flushdb)

        jira = FakeJira()
        jira.start()
        s.callback(jira.stop)

        secret = secrets.token_hex(16)
        service_port, baseline_port = free_port(), free_port()
        env = _service_env(endpoints, jira, secret, service_port, logs)
        _run_checked([str(leanguard), "migrate"], env, logs / "migrate.log")

        service = Launched(
            "service",
            [str(leanguard), "serve", "--workers", str(WEB_WORKERS), "--threads", str(WEB_THREADS)],
            env,
            logs,
            PROJECT,
        )
        s.callback(service.stop)
        baseline = Launched(
            "baseline",
            [
                sys.executable,
                "-m",
                "bench.baseline_app",
                "--port",
                str(baseline_port),
                "--workers",
                str(WEB_WORKERS),
                "--threads",
                str(WEB_THREADS),
            ],
            _plain_env(),
            logs,
            PROJECT,
        )
        s.callback(baseline.stop)
        for launched, port in ((service, service_port), (baseline, baseline_port)):
            took = wait_healthy(launched, port, timeout_s=READY_TIMEOUT_S)
            print(f"[service] {launched.name} ready on :{port} after {took:.1f} s", flush=True)

        run_tag = secrets.token_hex(4)
        ours = Target(service, service_port, SignedWebhooks(secret, HOST, service_port, run_tag))
        bare = Target(baseline, baseline_port, SignedWebhooks(secret, HOST, baseline_port, run_tag))
        accepted = _ingest(figures, ours, bare)
        accepted += _acknowledge(figures, ours, bare)
        stored = _scalar(endpoints, "SELECT count(*) FROM deliveries")
        print(f"[service] {stored:,} deliveries stored for {accepted:,} 2xx answers", flush=True)
        figures.append(
            Figure(
                PART,
                "a+b. deliveries in the database",
                float(stored),
                baseline=float(accepted),
                baseline_name="2xx answers",
                note="every acknowledged webhook must be stored (nothing lost)",
            )
        )

        # The ingest phases left thousands of jobs queued; start the workers on a clean slate
        # so the end-to-end figure measures new webhooks, not the backlog.
        redis.flushdb()
        _execute(endpoints, "TRUNCATE deliveries")
        workers = [
            Launched(f"rq-worker-{n}", [str(leanguard), "worker"], env, logs, PROJECT)
            for n in range(1, RQ_WORKERS + 1)
        ]
        for worker in workers:
            s.callback(worker.stop)
        _end_to_end(figures, jira, ours, workers)
        _memory(figures, service, baseline, workers)
        service.check_alive()
        _report_log_problems(service, *workers)


# Figures a and b.


def _ingest(figures: list[Figure], service: Target, baseline: Target) -> int:
    """Figure a: webhooks per second at saturation, beside the bare app; return 2xx answers."""
    accepted = 0
    for target in (service, baseline):
        warmup = asyncio.run(
            closed_loop(
                HOST,
                target.port,
                target.next_request,
                connections=INGEST_CONNECTIONS,
                duration_s=INGEST_WARMUP_S,
            )
        )
        if target is service:
            accepted += warmup.ok
    runs = {service.name: _Run(), baseline.name: _Run()}
    for target in _interleaved(service, baseline):
        run = runs[target.name]
        usage = _Usage(children_of(target.process.pid))
        result = asyncio.run(
            closed_loop(
                HOST,
                target.port,
                target.next_request,
                connections=INGEST_CONNECTIONS,
                duration_s=INGEST_S / SLICES,
            )
        )
        run.add(result, usage.stop())
        target.process.check_alive()
    accepted += runs[service.name].result.ok
    for name, run in runs.items():
        print(
            f"[service] ingest {name}: {run.result.throughput:,.0f} req/s in "
            f"{run.result.elapsed_s:.1f} s ({run.result.ok:,} 2xx; problems: "
            f"{run.result.problems() or 'none'}; web workers {run.worker_ms_per_request:.2f} ms "
            f"CPU per request; machine {run.busy:.0%} busy; load generator "
            f"{run.client_share:.0%} of a core)",
            flush=True,
        )
    ours, bare = runs[service.name], runs[baseline.name]
    share = 100.0 * ours.result.throughput / bare.result.throughput
    figures += [
        Figure(
            PART,
            "a. webhook ingest throughput",
            ours.result.throughput,
            "req/s",
            baseline=bare.result.throughput,
            baseline_name="bare Flask 204",
            note=f"{INGEST_CONNECTIONS} keep-alive connections, {INGEST_S:.0f} s each in "
            f"{SLICES} alternating slices after {INGEST_WARMUP_S:.0f} s warm-up, "
            f"{INGEST_ITEMS:,} items, rq workers off; machine {ours.busy:.0%} / {bare.busy:.0%} "
            f"busy, load generator {ours.client_share:.0%} / {bare.client_share:.0%} of a core "
            "(service / baseline)" + _problem_note(ours.result, bare.result),
        ),
        Figure(
            PART,
            "a. ingest throughput, share of baseline",
            share,
            "%",
            baseline=100.0,
            baseline_name="bare Flask 204",
            budget=INGEST_BUDGET,
        ),
        Figure(
            PART,
            "a. web worker CPU per webhook",
            ours.worker_ms_per_request,
            "ms",
            baseline=bare.worker_ms_per_request,
            baseline_name="bare Flask 204",
            note="user + system time of the gunicorn workers per 2xx answer during a; "
            "PostgreSQL's and Redis's time not included",
        ),
    ]
    return accepted


def _acknowledge(figures: list[Figure], service: Target, baseline: Target) -> int:
    """Figure b: answer latency at a fixed open-loop rate; return the service's 2xx answers."""
    runs = {service.name: _Run(), baseline.name: _Run()}
    for target in _interleaved(service, baseline):

        def request_for(_index: int, target: Target = target) -> bytes:
            return target.next_request()

        result = asyncio.run(
            open_loop(HOST, target.port, request_for, rate=ACK_RATE, duration_s=ACK_S / SLICES)
        )
        runs[target.name].add(result)
        target.process.check_alive()
    for name, run in runs.items():
        result = run.result
        print(
            f"[service] ack {name}: p50 {_ms(result.latencies_s, 50):.1f} ms, "
            f"p99 {_ms(result.latencies_s, 99):.1f} ms at {ACK_RATE:.0f} req/s "
            f"({result.ok:,}/{result.sent:,} 2xx; sender lag {result.lag_s * 1000:.1f} ms)",
            flush=True,
        )
    ours, bare = runs[service.name].result, runs[baseline.name].result
    note = (
        f"open loop, {ACK_RATE:.0f} req/s for {ACK_S:.0f} s each in {SLICES} alternating "
        "slices; latency from the scheduled send to the last byte of the answer; max sender "
        f"lag {ours.lag_s * 1000:.1f} / {bare.lag_s * 1000:.1f} ms" + _problem_note(ours, bare)
    )
    for pct in (50, 95, 99):
        figures.append(
            Figure(
                PART,
                f"b. ack latency p{pct} at {ACK_RATE:.0f} req/s",
                _ms(ours.latencies_s, pct),
                "ms",
                baseline=_ms(bare.latencies_s, pct),
                baseline_name="bare Flask 204",
                budget=ACK_P99_BUDGET if pct == 99 else None,
                note=note if pct == 99 else "",
            )
        )
    return ours.ok


def _interleaved(first: Target, second: Target) -> Iterator[Target]:
    """Alternate the two targets slice by slice (ABBA...), so a change in the machine's
    background load falls on both alike."""
    for n in range(SLICES):
        yield from (first, second) if n % 2 == 0 else (second, first)


@dataclass(frozen=True)
class _Use:
    """What one slice of load cost: machine ticks, web worker and load generator CPU time."""

    busy_ticks: int
    total_ticks: int
    worker_s: float
    client_s: float


class _Usage:
    """Counts CPU use from construction to :meth:`stop`."""

    def __init__(self, workers: list[int]) -> None:
        """Start counting, for the machine, this process and the given web workers."""
        self.workers = workers
        self._ticks = cpu_busy()
        self._worker_s = sum(cpu_seconds(pid) for pid in workers)
        self._client_s = time.process_time()

    def stop(self) -> _Use:
        """Return what was used since construction."""
        busy, total = cpu_busy()
        return _Use(
            busy_ticks=busy - self._ticks[0],
            total_ticks=total - self._ticks[1],
            worker_s=sum(cpu_seconds(pid) for pid in self.workers) - self._worker_s,
            client_s=time.process_time() - self._client_s,
        )


class _Run:
    """The slices of load one target got, added up."""

    def __init__(self) -> None:
        self.result = LoadResult()
        self.uses: list[_Use] = []

    def add(self, result: LoadResult, use: _Use | None = None) -> None:
        """Add one slice."""
        self.result.merge(result)
        if use is not None:
            self.uses.append(use)

    @property
    def busy(self) -> float:
        """The share of the machine's CPU time that was busy (any process)."""
        total = sum(use.total_ticks for use in self.uses)
        return sum(use.busy_ticks for use in self.uses) / total if total else math.nan

    @property
    def client_share(self) -> float:
        """The load generator's CPU time per second of load, in cores."""
        seconds = self.result.elapsed_s
        return sum(use.client_s for use in self.uses) / seconds if seconds else math.nan

    @property
    def worker_ms_per_request(self) -> float:
        """Web worker CPU milliseconds per 2xx answer."""
        ok = self.result.ok
        return 1000.0 * sum(use.worker_s for use in self.uses) / ok if ok else math.nan


# Figure c.


def _end_to_end(
    figures: list[Figure], jira: FakeJira, service: Target, workers: Sequence[Launched]
) -> None:
    """Figure c: from webhook sent to card received, with the rq workers running."""
    port, hooks = service.port, service.hooks
    # Warm-up: each worker's first job reads /myself and /field and opens its connections.
    warm_keys = _send_paced(port, hooks, range(1, E2E_WARMUP_ITEMS + 1), E2E_WARMUP_RATE)[0]
    missing = jira.wait_for_cards(set(warm_keys), READY_TIMEOUT_S)
    for launched in (*workers, service.process):
        launched.check_alive()
    if missing:
        tails = "\n".join(f"--- {w.name}\n{w.log_tail()}" for w in workers)
        raise ProcessFailed(f"no card for {sorted(missing)} after warm-up:\n{tails}")
    print(f"[service] {len(workers)} rq workers warm ({len(warm_keys)} cards)", flush=True)

    count = int(E2E_RATE * E2E_S)
    numbers = range(E2E_FIRST_ITEM, E2E_FIRST_ITEM + count)
    sent_at, result = _send_paced(port, hooks, numbers, E2E_RATE)
    missing = jira.wait_for_cards(set(sent_at), E2E_DRAIN_S)
    latencies: list[float] = []
    pickups: list[float] = []
    for key, sent in sent_at.items():
        card = jira.first_comment(key)
        fetched = jira.first_fetch(key)
        latencies.append(card - sent if card is not None else math.inf)
        pickups.append(fetched - sent if fetched is not None else math.inf)
    arrived = len(sent_at) - len(missing)
    print(
        f"[service] end to end: {arrived}/{len(sent_at)} cards, p50 {_ms(latencies, 50):.0f} ms, "
        f"p95 {_ms(latencies, 95):.0f} ms (fake Jira saw {dict(jira.requests)})",
        flush=True,
    )
    note = (
        f"{E2E_RATE:.0f} webhooks/s for {E2E_S:.0f} s, a new failing epic each, {len(workers)} rq "
        f"workers; from the request's write to the comment POST's arrival at the fake Jira; "
        f"baseline: the same requests' acknowledgement"
    )
    if missing:
        note += f"; {len(missing)} cards never came within {E2E_DRAIN_S:.0f} s (counted as inf)"
    figures += [
        Figure(
            PART,
            "c. end to end p50 (webhook -> card)",
            _ms(latencies, 50),
            "ms",
            baseline=_ms(result.latencies_s, 50),
            baseline_name="ack of same requests",
        ),
        Figure(
            PART,
            "c. end to end p95 (webhook -> card)",
            _ms(latencies, 95),
            "ms",
            baseline=_ms(result.latencies_s, 95),
            baseline_name="ack of same requests",
            budget=E2E_P95_BUDGET,
            note=note,
        ),
        Figure(
            PART,
            "c. queue pickup p95 (webhook -> issue read)",
            _ms(pickups, 95),
            "ms",
            note="when a worker first asked the fake Jira for the issue: queueing before work",
        ),
        Figure(
            PART,
            "c. cards received",
            float(arrived),
            baseline=float(len(sent_at)),
            baseline_name="webhooks sent",
        ),
    ]


def _send_paced(
    port: int, hooks: SignedWebhooks, numbers: Sequence[int], rate: float
) -> tuple[dict[str, float], LoadResult]:
    """Send one webhook per item at ``rate``; return when each was written, by key."""
    sent_at: dict[str, float] = {}

    def request_for(index: int) -> bytes:
        return hooks.request(numbers[index])

    def on_send(index: int, moment: float) -> None:
        sent_at[item_key(numbers[index])] = moment

    result = asyncio.run(
        open_loop(
            HOST,
            port,
            request_for,
            rate=rate,
            duration_s=len(numbers) / rate,
            on_send=on_send,
        )
    )
    if result.ok != len(numbers):
        raise ProcessFailed(f"the service did not accept every webhook: {result.problems()}")
    return sent_at, result


# Figure d.


def _memory(
    figures: list[Figure], service: Launched, baseline: Launched, workers: Sequence[Launched]
) -> None:
    """Figure d: resident memory of every worker process after the load."""
    ours = [rss_bytes(pid) / 1e6 for pid in children_of(service.pid)]
    bare = [rss_bytes(pid) / 1e6 for pid in children_of(baseline.pid)]
    queue = [rss_bytes(worker.pid) / 1e6 for worker in workers]
    if not ours or not bare:
        raise ProcessFailed(f"gunicorn workers not found: service {ours}, baseline {bare}")
    print(
        f"[service] RSS MB: web workers {_rounded(ours)}, rq workers {_rounded(queue)}, "
        f"bare Flask workers {_rounded(bare)}",
        flush=True,
    )
    for n, value in enumerate(ours, start=1):
        figures.append(
            Figure(
                PART,
                f"d. RSS web worker {n}",
                value,
                "MB",
                baseline=bare[min(n, len(bare)) - 1],
                baseline_name="bare Flask worker",
                budget=RSS_BUDGET,
                note="VmRSS from /proc/<pid>/status after a-c; gunicorn master's children"
                if n == 1
                else "",
            )
        )
    for n, value in enumerate(queue, start=1):
        figures.append(
            Figure(
                PART,
                f"d. RSS rq worker {n}",
                value,
                "MB",
                baseline=max(bare),
                baseline_name="bare Flask worker",
            )
        )


# Plumbing.


def _service_env(
    endpoints: Endpoints, jira: FakeJira, secret: str, port: int, logs: Path
) -> dict[str, str]:
    env = _plain_env()
    env.update(
        LEANGUARD_HOST=HOST,
        LEANGUARD_PORT=str(port),
        LEANGUARD_BASE_URL=f"http://127.0.0.1:{port}",
        LEANGUARD_DATABASE_URL=endpoints.database_url.render_as_string(hide_password=False),
        LEANGUARD_REDIS_URL=endpoints.redis_url,
        LEANGUARD_SECRET_KEY=secrets.token_urlsafe(32),
        LEANGUARD_JIRA_URL=jira.url,
        LEANGUARD_JIRA_EMAIL="leanguard-bot@acme-product.example",
        LEANGUARD_JIRA_API_TOKEN=secrets.token_urlsafe(24),
        LEANGUARD_JIRA_WEBHOOK_SECRET=secret,
        LEANGUARD_INSTANCE_PATH=str(logs / "instance"),
    )
    return env


def _plain_env() -> dict[str, str]:
    """This process's environment without any ``LEANGUARD_*`` setting it may carry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEANGUARD_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run_checked(argv: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("wb") as out:
        done = subprocess.run(
            argv, env=env, cwd=PROJECT, stdout=out, stderr=subprocess.STDOUT, timeout=120
        )
    if done.returncode != 0:
        raise ProcessFailed(f"{' '.join(argv[-1:])} failed:\n{log.read_text(errors='replace')}")


def _dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _create_database(endpoints: Endpoints) -> None:
    name = sql.Identifier(BENCH_DATABASE)
    with psycopg.connect(_dsn(endpoints.admin_url), autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(name))


def _drop_database(endpoints: Endpoints) -> None:
    name = sql.Identifier(BENCH_DATABASE)
    with psycopg.connect(_dsn(endpoints.admin_url), autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


def _execute(endpoints: Endpoints, statement: str) -> None:
    with psycopg.connect(_dsn(endpoints.database_url), autocommit=True) as connection:
        connection.execute(statement.encode())


def _scalar(endpoints: Endpoints, query: str) -> int:
    with psycopg.connect(_dsn(endpoints.database_url), autocommit=True) as connection:
        row: Any = connection.execute(query.encode()).fetchone()
    return int(row[0])


def _report_log_problems(*launched: Launched) -> None:
    """Say how many tracebacks the service and workers logged during the run."""
    for process in launched:
        text = process.log_path.read_text(encoding="utf-8", errors="replace")
        count = text.count("Traceback (most recent call last)")
        if count:
            print(f"[service] {process.name} logged {count} tracebacks; see below", flush=True)
            print(process.log_tail(40), flush=True)


def _ms(samples: Sequence[float], pct: float) -> float:
    return percentile(samples, pct) * 1000.0


def _rounded(values: Sequence[float]) -> str:
    return ", ".join(f"{value:.1f}" for value in values)


def _problem_note(ours: LoadResult, bare: LoadResult) -> str:
    parts = []
    if ours.problems():
        parts.append(f"service problems: {ours.problems()}")
    if bare.problems():
        parts.append(f"baseline problems: {bare.problems()}")
    return "; " + "; ".join(parts) if parts else ""
