"""Scale-out: two web processes and two rq workers on one PostgreSQL and Redis, under load.

Two ``leanguard serve`` processes (gunicorn) and two ``leanguard worker`` processes share a fresh
PostgreSQL schema and a Redis database. A Jira Data Center site runs in this process on a real
socket, answering with jitter. The test changes epics on that site and sends the webhooks
Jira would send, thousands of them across both web processes: many items, exact duplicates
(the same delivery sent again later, and sent to both web processes at once) and a burst of
updates on one item. Then every acknowledged delivery must be worked to a final state, every
failing item must have exactly one card, and every card must show its item's final content.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest
import requests
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine
from support.jira_server import HEADLINES, JiraServer, hub_signature, webhook_body
from support.processes import (
    Launched,
    free_port,
    leanguard_env,
    postgres_schema,
    run_migrate,
    start_web,
    start_worker,
    wait_until,
)

from plugin.metrics import parse, total
from plugin.storage import Delivery

pytestmark = [pytest.mark.production, pytest.mark.postgres, pytest.mark.redis]

SECRET = "scale-out-webhook-secret-3f9a1c"
ITEMS = 240
CHANGES = 2_400
"""Content changes, each followed by its webhook."""
DUPLICATES = 240
"""Webhooks sent a second time, byte for byte, under the same delivery id."""
TWINS = 120
"""Webhooks sent to both web processes at the same moment."""
BURST_KEY = "TEST-1"
BURST = 300
"""Changes to one item sent at once, half to each web process."""
SENDERS = 16
FINAL_STATES = {"done", "ignored"}


@dataclass(frozen=True)
class Send:
    """One webhook: an optional content change first, then the signed delivery."""

    key: str
    version: str | None
    """The description to put on the site before sending (None: a duplicate)."""
    delivery_id: str
    web: int
    twin: bool = False
    """Send it to both web processes at once."""


class Stored(NamedTuple):
    """A stored delivery, as far as the assertions need it."""

    delivery_id: str
    state: str
    last_error: str | None


def plan(rng: random.Random) -> list[Send]:
    """The load: changes across many items, a burst on one, twins, and later duplicates."""
    keys = [f"TEST-{n}" for n in range(2, ITEMS + 1)]
    versions = list(HEADLINES)
    twins = set(rng.sample(range(CHANGES), TWINS))
    sends = [
        Send(rng.choice(keys), rng.choice(versions), f"scale-{n}", n % 2, n in twins)
        for n in range(CHANGES)
    ]
    burst = [Send(BURST_KEY, rng.choice(versions), f"burst-{n}", n % 2) for n in range(BURST)]
    # The burst ends failing, so its item must end with exactly one card however the worker
    # coalesced the changes in between (an item only ever seen complete rightly gets none).
    failing = [version for version in versions if version != "complete"]
    burst[-1] = Send(BURST_KEY, rng.choice(failing), f"burst-{BURST - 1}", (BURST - 1) % 2)
    middle = len(sends) // 2
    sends[middle:middle] = burst
    again = rng.sample(sends, DUPLICATES)
    return sends + [Send(s.key, None, s.delivery_id, 1 - s.web) for s in again]


def test_every_delivery_is_worked_once_and_every_card_shows_the_final_content(
    postgres_server: str, redis_url: str, site: JiraServer, tmp_path: Path
) -> None:
    rng = random.Random(20261122)
    for n in range(1, ITEMS + 1):
        site.put_issue(f"TEST-{n}", "complete")
    with postgres_schema(postgres_server) as database_url:
        env = leanguard_env(
            database_url=database_url,
            redis_url=redis_url,
            base_url="https://leanguard.example.com",
            secret_key="scale-out-secret-key",
            jira_url=site.url,
            jira_email="leanguard-bot@example.com",
            jira_api_token="scale-out-api-token",
            jira_webhook_secret=SECRET,
            instance_path=str(tmp_path / "instance"),
            sweep_interval_s="2",
        )
        run_migrate(env)
        started: list[Launched] = []
        try:
            ports = [free_port(), free_port()]
            for n, port in enumerate(ports, start=1):
                started.append(start_web(f"web-{n}", env, port, tmp_path))
            workers = [start_worker(f"worker-{n}", env, tmp_path) for n in (1, 2)]
            started += workers

            answers = send_all(site, plan(rng), ports)

            engine = create_engine(database_url)
            try:
                wait_until(
                    lambda: settled(engine, answers),
                    timeout_s=180,
                    what="every acknowledged delivery to reach a final state",
                )
                stored = {d.delivery_id: d for d in deliveries(engine)}
            finally:
                engine.dispose()

            def scrape() -> list[dict[str, float]]:
                return [
                    parse(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
                    for port in ports
                ]

            # A worker adds its job's tracker calls to the shared sums just after the job
            # ends, a moment after the delivery is marked done.
            wait_until(
                lambda: (
                    total(scrape()[0], "leanguard_tracker_calls_total") >= site.total_requests()
                ),
                timeout_s=30,
                what="the workers' tracker calls to reach the shared counters",
            )
            scraped = scrape()
            assert all(process.alive() for process in started), "a process died under load"
            worker_logs = [worker.output() for worker in workers]
        finally:
            for process in reversed(started):
                process.stop()

    # Every acknowledged delivery is stored once and worked to the end, without an error.
    acknowledged = {delivery_id for delivery_id, statuses in answers.items() if statuses == {200}}
    assert acknowledged == set(answers), Counter(frozenset(s) for s in answers.values())
    assert set(stored) == acknowledged
    states = Counter(d.state for d in stored.values())
    assert set(states) <= FINAL_STATES, states
    assert [d.delivery_id for d in stored.values() if d.last_error] == []

    # One card per item that ever failed, showing the item's final content.
    assert site.violations == []
    assert max(site.posts.values()) == 1, site.posts.most_common(3)
    for key, final in site.versions.items():
        cards = site.cards(key)
        assert len(cards) <= 1, (key, [c.id for c in cards])
        if final != "complete":
            assert site.posts[key] == 1, f"{key} ends failing ({final}) but has no card"
        if cards:
            assert site.last_card[key].startswith(f"*{HEADLINES[final]}"), key
            status = site.properties[key]["status"]
            assert status == ("pass" if final == "complete" else "fail"), key
    assert site.posts[BURST_KEY] == 1

    # Both web processes report the same figures; the workers' tracker calls all arrived.
    first, second = scraped
    for name in ("leanguard_deliveries", "leanguard_job_latency_seconds_count"):
        assert total(first, name) == total(second, name)
    assert total(first, "leanguard_deliveries", state="done") == states["done"]
    assert total(first, "leanguard_job_latency_seconds_count", tracker="jira") == states["done"]
    assert total(first, "leanguard_tracker_calls_total") == site.total_requests()
    assert total(second, "leanguard_tracker_calls_total") == site.total_requests()

    # Every line the tracker client logged while working names the delivery and its tenant.
    requests_logged = [
        entry
        for log in worker_logs
        for entry in json_lines(log)
        if entry.get("logger") == "plugin.trackers.jira"
    ]
    assert requests_logged
    assert all("delivery_id" in e and "tenant" in e for e in requests_logged)
    assert all("item" in e for e in requests_logged if "/issue/" in str(e["event"]))


def send_all(site: JiraServer, sends: list[Send], ports: list[int]) -> dict[str, set[int]]:
    """Send every webhook from a pool of senders; return the answers per delivery id."""
    local = threading.local()
    bodies: dict[str, bytes] = {}
    lock = threading.Lock()
    answers: dict[str, set[int]] = {}

    def post(web: int, delivery_id: str, body: bytes) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        response = session.post(
            f"http://127.0.0.1:{ports[web]}/webhooks/jira",
            data=body,
            headers={
                "Content-Type": "application/json; charset=UTF-8",
                "User-Agent": "Atlassian Webhook HTTP Client",
                "X-Atlassian-Webhook-Identifier": delivery_id,
                "X-Hub-Signature": hub_signature(SECRET, body),
            },
            timeout=30,
        )
        with lock:
            answers.setdefault(delivery_id, set()).add(response.status_code)

    def deliver(send: Send) -> None:
        if send.version is None:
            with lock:
                body = bodies[send.delivery_id]
            post(send.web, send.delivery_id, body)
            return
        site.put_issue(send.key, send.version)
        body = webhook_body(site, send.key)
        with lock:
            bodies[send.delivery_id] = body
        if not send.twin:
            post(send.web, send.delivery_id, body)
            return
        # Both web processes get it at once: one stores it, the other answers "duplicate".
        other = threading.Thread(target=post, args=(1 - send.web, send.delivery_id, body))
        other.start()
        post(send.web, send.delivery_id, body)
        other.join()

    # A duplicate waits for its original's body: send in order, many at a time.
    with ThreadPoolExecutor(SENDERS) as pool:
        originals = {s.delivery_id: pool.submit(deliver, s) for s in sends if s.version}
        duplicates = []
        for send in sends:
            if send.version is None:
                originals[send.delivery_id].result()
                duplicates.append(pool.submit(deliver, send))
        for future in [*originals.values(), *duplicates]:
            future.result()
    return answers


def settled(engine: Engine, answers: dict[str, set[int]]) -> bool:
    """Tell whether every acknowledged delivery is stored and all are in a final state."""
    rows = deliveries(engine)
    acknowledged = {delivery_id for delivery_id, statuses in answers.items() if 200 in statuses}
    stored = {d.delivery_id for d in rows}
    return acknowledged <= stored and all(d.state in FINAL_STATES for d in rows)


def deliveries(engine: Engine) -> list[Stored]:
    with engine.connect() as connection:
        rows = connection.execute(select(Delivery.delivery_id, Delivery.state, Delivery.last_error))
        return [Stored(row.delivery_id, row.state, row.last_error) for row in rows]


def json_lines(text: str) -> Iterator[dict[str, object]]:
    """The JSON log lines of a process's output (gunicorn and rq print some plain ones)."""
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                yield entry
