"""Production figures: the distributed set-up under load, each beside a baseline from the same run.

Everything runs on 127.0.0.1 against PostgreSQL and Redis: ``leanguard serve --workers 2`` beside
the bare Flask app of :mod:`bench.baseline_app` on the same gunicorn settings, two
``leanguard worker`` processes, the :class:`~bench.fake_jira.FakeJira` site they write to, and
this process's load generator (:mod:`bench.loadgen`). ``run()`` returns
``(figure, value, baseline, verdict)`` rows and prints them:

1. ingest throughput: signed ``jira:issue_updated`` webhooks as fast as 16 keep-alive
   connections get answers, rq workers off, service and baseline in alternating slices;
2. acknowledgement p99 at a fixed open-loop rate, the same way;
3. end to end at 50 webhooks/s with the two rq workers: from the webhook's write to the card's
   arrival at the fake Jira, p50 and p95, beside the acknowledgement of the same requests;
4. resident memory of every web worker and rq worker after the load, beside a bare Flask
   worker.

It creates and drops the database ``leanguard_bench_production`` on the server of
``LEANGUARD_BENCH_POSTGRES_URL`` (default: the local test server) and flushes the Redis
database of ``LEANGUARD_BENCH_PRODUCTION_REDIS_URL`` (default ``redis://127.0.0.1:6379/12``;
database 0 is refused) before and after.
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
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg
from psycopg import sql
from redis import Redis
from sqlalchemy.engine import URL, make_url

from bench.fake_jira import FakeJira
from bench.loadgen import LoadResult, closed_loop, open_loop
from bench.payloads import SignedWebhooks, item_key
from bench.processes import Launched, ProcessFailed, children_of, free_port, rss_bytes, wait_healthy
from bench.report import Budget, Figure, percentile

Row = tuple[str, str, str, str]
PART = "production"
PROJECT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
DATABASE = "leanguard_bench_production"
POSTGRES_URL_ENV = "LEANGUARD_BENCH_POSTGRES_URL"
REDIS_URL_ENV = "LEANGUARD_BENCH_PRODUCTION_REDIS_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"

WEB_WORKERS = 2
WEB_THREADS = 4
RQ_WORKERS = 2
SLICES = 4
"""Service and baseline take turns in this many slices, so background load hits both alike."""
INGEST_CONNECTIONS = 16
INGEST_WARMUP_S = 2.0
INGEST_S = 8.0
INGEST_ITEMS = 2_000
ACK_RATE = 100.0
ACK_S = 8.0
E2E_RATE = 50.0
E2E_S = 10.0
E2E_FIRST_ITEM = 50_000
E2E_WARMUP = 6
E2E_DRAIN_S = 60.0
READY_TIMEOUT_S = 60.0

INGEST_SHARE_BUDGET = Budget(">=", 40.0, "%")
ACK_P99_BUDGET = Budget("<", 50.0, "ms")
E2E_P95_BUDGET = Budget("<", 1000.0, "ms")
RSS_BUDGET = Budget("<", 150.0, "MB")


def run(log_dir: Path | None = None) -> list[Row]:
    """Measure every figure; return (figure, value, baseline, verdict) rows."""
    figures = measure(log_dir=log_dir)
    rows = [(f.name, f.value_text(), f.baseline_text(), f.verdict) for f in figures]
    for name, value, baseline, verdict in rows:
        print(f"[{PART}] {name}: {value} (baseline {baseline}) {verdict}", flush=True)
    for figure in figures:
        if figure.note:
            print(f"[{PART}]   {figure.name}: {figure.note}", flush=True)
    return rows


def measure(*, log_dir: Path | None = None) -> list[Figure]:
    """Start everything, measure, and stop and clean up whatever happens."""
    admin = make_url(os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL)
    database_url = admin.set(database=DATABASE)
    redis_url = os.environ.get(REDIS_URL_ENV) or DEFAULT_REDIS_URL
    redis = Redis.from_url(redis_url)
    if not redis.connection_pool.connection_kwargs.get("db", 0):
        raise ValueError(f"{REDIS_URL_ENV} must name a Redis database other than 0 (it is flushed)")
    leanguard = Path(sys.executable).with_name("leanguard")
    figures: list[Figure] = []
    with contextlib.ExitStack() as stack:
        if log_dir is None:
            logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lg-prod-bench-")))
        else:
            logs = log_dir.resolve()
            logs.mkdir(parents=True, exist_ok=True)
        _database(admin, create=True)
        stack.callback(_database, admin, create=False)
        redis.flushdb()
        stack.callback(redis.flushdb)
        jira = FakeJira()
        jira.start()
        stack.callback(jira.stop)

        secret = secrets.token_hex(16)
        port, bare_port = free_port(), free_port()
        env = _env(database_url, redis_url, jira, secret, port, logs)
        done = subprocess.run(
            [str(leanguard), "migrate"], env=env, cwd=PROJECT, capture_output=True, timeout=120
        )
        if done.returncode:
            raise ProcessFailed(f"leanguard migrate failed: {done.stderr.decode()[-2000:]}")

        web = Launched(
            "web",
            [str(leanguard), "serve", "--workers", str(WEB_WORKERS), "--threads", str(WEB_THREADS)],
            env,
            logs,
            PROJECT,
        )
        stack.callback(web.stop)
        bare = Launched(
            "bare-flask",
            [
                sys.executable,
                "-m",
                "bench.baseline_app",
                "--port",
                str(bare_port),
                "--workers",
                str(WEB_WORKERS),
                "--threads",
                str(WEB_THREADS),
            ],
            _plain_env(),
            logs,
            PROJECT,
        )
        stack.callback(bare.stop)
        for launched, where in ((web, port), (bare, bare_port)):
            wait_healthy(launched, where, timeout_s=READY_TIMEOUT_S)

        tag = secrets.token_hex(4)
        ours = _Target("service", port, SignedWebhooks(secret, HOST, port, tag))
        base = _Target("bare Flask", bare_port, SignedWebhooks(secret, HOST, bare_port, tag))
        figures += _ingest(ours, base)
        figures += _acknowledge(ours, base)
        for launched in (web, bare):
            launched.check_alive()

        # The ingest left thousands of jobs queued; the workers start on a clean slate so the
        # end-to-end figure measures new webhooks, not that backlog.
        redis.flushdb()
        _execute(database_url, "TRUNCATE deliveries")
        workers = [
            Launched(f"rq-worker-{n}", [str(leanguard), "worker"], env, logs, PROJECT)
            for n in range(1, RQ_WORKERS + 1)
        ]
        for worker in workers:
            stack.callback(worker.stop)
        figures += _end_to_end(jira, ours, workers)
        figures += _memory(web, bare, workers)
    return figures


class _Target:
    """A web service under load and the webhooks it is sent (a new delivery id each)."""

    def __init__(self, name: str, port: int, hooks: SignedWebhooks) -> None:
        self.name = name
        self.port = port
        self.hooks = hooks
        self._items = itertools.cycle(range(100_000, 100_000 + INGEST_ITEMS))

    def next_request(self) -> bytes:
        return self.hooks.request(next(self._items))


def _turns(first: _Target, second: _Target) -> Iterator[_Target]:
    for n in range(SLICES):
        yield from (first, second) if n % 2 == 0 else (second, first)


def _ingest(ours: _Target, base: _Target) -> list[Figure]:
    """Webhooks per second at saturation, and the service's share of the baseline's."""
    for target in (ours, base):
        asyncio.run(
            closed_loop(
                HOST,
                target.port,
                target.next_request,
                connections=INGEST_CONNECTIONS,
                duration_s=INGEST_WARMUP_S,
            )
        )
    results = {ours.name: LoadResult(), base.name: LoadResult()}
    for target in _turns(ours, base):
        results[target.name].merge(
            asyncio.run(
                closed_loop(
                    HOST,
                    target.port,
                    target.next_request,
                    connections=INGEST_CONNECTIONS,
                    duration_s=INGEST_S / SLICES,
                )
            )
        )
    mine, bare = results[ours.name], results[base.name]
    note = (
        f"{WEB_WORKERS} gunicorn workers x {WEB_THREADS} threads each, PostgreSQL and Redis; "
        f"{INGEST_CONNECTIONS} keep-alive connections, {INGEST_S:.0f} s each in {SLICES} "
        f"alternating slices; problems: {mine.problems() or 'none'}"
    )
    return [
        Figure(
            PART,
            "ingest throughput, 2 web workers",
            mine.throughput,
            "req/s",
            baseline=bare.throughput,
            baseline_name="bare Flask 204",
            note=note,
        ),
        Figure(
            PART,
            "ingest throughput, share of baseline",
            100.0 * mine.throughput / bare.throughput if bare.throughput else math.nan,
            "%",
            baseline=100.0,
            baseline_name="bare Flask 204",
            budget=INGEST_SHARE_BUDGET,
        ),
    ]


def _acknowledge(ours: _Target, base: _Target) -> list[Figure]:
    """Answer latency at a fixed open-loop rate."""
    results = {ours.name: LoadResult(), base.name: LoadResult()}
    for target in _turns(ours, base):

        def request_for(_index: int, target: _Target = target) -> bytes:
            return target.next_request()

        results[target.name].merge(
            asyncio.run(
                open_loop(HOST, target.port, request_for, rate=ACK_RATE, duration_s=ACK_S / SLICES)
            )
        )
    mine, bare = results[ours.name], results[base.name]
    return [
        Figure(
            PART,
            f"ack p{pct}, 2 web workers at {ACK_RATE:.0f} webhooks/s",
            _ms(mine.latencies_s, pct),
            "ms",
            baseline=_ms(bare.latencies_s, pct),
            baseline_name="bare Flask 204",
            budget=ACK_P99_BUDGET if pct == 99 else None,
            note=f"open loop; {mine.ok}/{mine.sent} 2xx; problems: {mine.problems() or 'none'}"
            if pct == 99
            else "",
        )
        for pct in (50, 99)
    ]


def _end_to_end(jira: FakeJira, ours: _Target, workers: Sequence[Launched]) -> list[Figure]:
    """From the webhook's write to the card's arrival, with two rq workers."""
    warm = list(range(1, E2E_WARMUP + 1))
    _paced(ours, warm, rate=5.0)
    missing = jira.wait_for_cards({item_key(n) for n in warm}, READY_TIMEOUT_S)
    if missing:
        tails = "\n".join(f"--- {w.name}\n{w.log_tail()}" for w in workers)
        raise ProcessFailed(f"no card for {sorted(missing)} after the warm-up:\n{tails}")
    numbers = list(range(E2E_FIRST_ITEM, E2E_FIRST_ITEM + int(E2E_RATE * E2E_S)))
    sent_at, acks = _paced(ours, numbers, rate=E2E_RATE)
    missing = jira.wait_for_cards(set(sent_at), E2E_DRAIN_S)
    latencies = []
    for key, sent in sent_at.items():
        card = jira.first_comment(key)
        latencies.append(card - sent if card is not None else math.inf)
    for worker in workers:
        worker.check_alive()
    note = (
        f"{E2E_RATE:.0f} webhooks/s for {E2E_S:.0f} s, a new failing epic each, {RQ_WORKERS} rq "
        "workers; baseline: the acknowledgement of the same requests"
    )
    if missing:
        note += f"; {len(missing)} cards never came within {E2E_DRAIN_S:.0f} s (counted as inf)"
    return [
        Figure(
            PART,
            f"end to end p{pct} at {E2E_RATE:.0f} webhooks/s, 2 rq workers",
            _ms(latencies, pct),
            "ms",
            baseline=_ms(acks.latencies_s, pct),
            baseline_name="ack of the same",
            budget=E2E_P95_BUDGET if pct == 95 else None,
            note=note if pct == 95 else "",
        )
        for pct in (50, 95)
    ]


def _paced(
    target: _Target, numbers: Sequence[int], *, rate: float
) -> tuple[dict[str, float], LoadResult]:
    sent_at: dict[str, float] = {}

    def request_for(index: int) -> bytes:
        return target.hooks.request(numbers[index])

    def on_send(index: int, moment: float) -> None:
        sent_at[item_key(numbers[index])] = moment

    result = asyncio.run(
        open_loop(
            HOST,
            target.port,
            request_for,
            rate=rate,
            duration_s=len(numbers) / rate,
            on_send=on_send,
        )
    )
    if result.ok != len(numbers):
        raise ProcessFailed(f"the service did not accept every webhook: {result.problems()}")
    return sent_at, result


def _memory(web: Launched, bare: Launched, workers: Sequence[Launched]) -> list[Figure]:
    """Resident memory of every web worker and rq worker after the load."""
    ours = [rss_bytes(pid) / 1e6 for pid in children_of(web.pid)]
    baseline = [rss_bytes(pid) / 1e6 for pid in children_of(bare.pid)]
    queue = [rss_bytes(worker.pid) / 1e6 for worker in workers]
    if not ours or not baseline:
        raise ProcessFailed(f"gunicorn workers not found: {ours}, baseline {baseline}")
    reference = max(baseline)
    return [
        Figure(
            PART,
            f"RSS {name}",
            value,
            "MB",
            baseline=reference,
            baseline_name="bare Flask worker",
            budget=RSS_BUDGET,
        )
        for name, value in [
            *((f"web worker {n}", v) for n, v in enumerate(ours, start=1)),
            *((f"rq worker {n}", v) for n, v in enumerate(queue, start=1)),
        ]
    ]


def _env(
    database_url: URL, redis_url: str, jira: FakeJira, secret: str, port: int, logs: Path
) -> dict[str, str]:
    env = _plain_env()
    env.update(
        LEANGUARD_HOST=HOST,
        LEANGUARD_PORT=str(port),
        LEANGUARD_BASE_URL=f"http://{HOST}:{port}",
        LEANGUARD_DATABASE_URL=database_url.render_as_string(hide_password=False),
        LEANGUARD_REDIS_URL=redis_url,
        LEANGUARD_SECRET_KEY=secrets.token_urlsafe(32),
        LEANGUARD_JIRA_URL=jira.url,
        LEANGUARD_JIRA_EMAIL="leanguard-bot@acme-product.example",
        LEANGUARD_JIRA_API_TOKEN=secrets.token_urlsafe(24),
        LEANGUARD_JIRA_WEBHOOK_SECRET=secret,
        LEANGUARD_INSTANCE_PATH=str(logs / "instance"),
    )
    return env


def _plain_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEANGUARD_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _database(admin: URL, *, create: bool) -> None:
    name = sql.Identifier(DATABASE)
    with psycopg.connect(_dsn(admin), autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        if create:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(name))


def _execute(url: URL, statement: str) -> None:
    with psycopg.connect(_dsn(url), autocommit=True) as connection:
        connection.execute(statement.encode())


def _ms(samples: Sequence[float], pct: float) -> float:
    return percentile(samples, pct) * 1000.0


if __name__ == "__main__":
    run()
