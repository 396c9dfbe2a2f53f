"""Faults: a failing tracker, Redis stopped, a worker killed mid-job, PostgreSQL restarted, and a
broken rules file. Each must delay work at most: nothing acknowledged is lost, no item gets a
second card, and the service recovers without a restart.

The tracker is a Jira Data Center site on a real socket (``support.jira_server``), so timeouts
and reset connections are real ones. Redis and PostgreSQL are stopped only when they are the
test's own (``support.processes``); the shared servers stay up.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update
from support.jira_server import HEADLINES, SHARED, JiraServer, hub_signature, webhook_body
from support.processes import (
    PrivatePostgres,
    PrivateRedis,
    leanguard_env,
    postgres_schema,
    start_worker,
    wait_until,
)
from werkzeug.test import TestResponse

from plugin import runtime as runtime_module
from plugin.app import QUEUE_EXTENSION, RUNTIME_EXTENSION, create_app
from plugin.metrics import parse, total
from plugin.processing import backoff
from plugin.queue import InProcessQueue
from plugin.runtime import Runtime
from plugin.settings import Settings
from plugin.storage import Database, Delivery, DeliveryState
from plugin.trackers.jira import JiraClient

pytestmark = pytest.mark.production

SECRET = "faults-webhook-secret-91c2"
LINEAR_SECRET = "faults-linear-secret-5d0e"
EMAIL = "leanguard-bot@example.com"
TOKEN = "faults-api-token-7b1f"
CLIENT_TIMEOUT_S = 2.5
"""The tracker client's timeout here; the site's slow answers take longer. Well above an ordinary
answer even on a loaded machine, so only the faults the tests set up time out."""
GOOD_RULES = """\
version: 1
name: acme
extends: lean
description: The success metric is agreed with finance later, so it is off for now.
rules:
  - id: success-metric
    mode: "off"
"""
BROKEN_RULES = """\
version: 1
name: acme
extends: lean
rules:
  - id: success-metric
    mode: sideways
"""


# The embedded service, driven by the test -------------------------------------------------


def make_app(site: JiraServer, tmp_path: Path, *, worker: bool = False, **overrides: Any) -> Flask:
    """A service on SQLite (or ``database_url``); the test drains its queue unless ``worker``."""
    values: dict[str, Any] = {
        "instance_path": str(tmp_path / "instance"),
        "base_url": "https://leanguard.example.com",
        "secret_key": "faults-secret-key",
        "jira_url": site.url,
        "jira_email": EMAIL,
        "jira_api_token": TOKEN,
        "jira_webhook_secret": SECRET,
        "linear_webhook_secret": LINEAR_SECRET,
        **overrides,
    }
    settings = Settings(**values)
    if settings.database_url:
        # As `leanguard migrate` does before a PostgreSQL deployment starts.
        migrated = Database(settings.database_url)
        migrated.upgrade()
        migrated.dispose()
    app = create_app(settings, start_worker=worker)
    # The same client the service builds, with a short timeout so slow answers time out fast.
    client = JiraClient(site.url, email=EMAIL, api_token=TOKEN, timeout=CLIENT_TIMEOUT_S)
    runtime_of(app).client_factory = lambda tenant: client
    return app


def runtime_of(app: Flask) -> Runtime:
    runtime: Runtime = app.extensions[RUNTIME_EXTENSION]
    return runtime


def send(app: Flask, site: JiraServer, key: str, delivery_id: str) -> TestResponse:
    """Deliver the webhook Jira sends after ``key`` changed."""
    body = webhook_body(site, key)
    return app.test_client().post(
        "/webhooks/jira",
        data=body,
        headers={
            "Content-Type": "application/json; charset=UTF-8",
            "X-Atlassian-Webhook-Identifier": delivery_id,
            "X-Hub-Signature": hub_signature(SECRET, body),
        },
    )


def send_linear(app: Flask, delivery_id: str) -> TestResponse:
    """Deliver a real Linear issue webhook, signed and stamped now."""
    payload = json.loads((SHARED / "fixtures/linear/01_issue_create_with_labels.json").read_text())
    payload["webhookTimestamp"] = int(time.time() * 1000)
    body = json.dumps(payload).encode()
    return app.test_client().post(
        "/webhooks/linear",
        data=body,
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Linear-Delivery": delivery_id,
            "Linear-Event": "Issue",
            "Linear-Signature": hmac.new(LINEAR_SECRET.encode(), body, "sha256").hexdigest(),
        },
    )


def drain(app: Flask) -> None:
    queue = app.extensions[QUEUE_EXTENSION]
    assert isinstance(queue, InProcessQueue)
    queue.drain()


def retry_now(app: Flask) -> None:
    """Let every retry fall due now, then drain: the backoff has passed."""
    with runtime_of(app).database.session() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.state == DeliveryState.RETRYING)
            .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    drain(app)


def deliveries(app: Flask) -> list[Delivery]:
    with runtime_of(app).database.session() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def states(app: Flask) -> list[str]:
    return [d.state for d in deliveries(app)]


def scrape(app: Flask) -> dict[str, float]:
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    return parse(response.get_data(as_text=True))


def assert_one_card_showing(site: JiraServer, key: str, version: str) -> None:
    cards = site.cards(key)
    assert site.posts[key] == 1 and len(cards) == 1, (site.posts[key], cards)
    assert cards[0].body.startswith(f"*{HEADLINES[version]}"), cards[0].body[:120]


# A failing tracker ----------------------------------------------------------------------------

FAULTS = {
    # The tracker refused the post: nothing to look for, the retry simply posts.
    "503 with Retry-After on the post": (
        "POST",
        r"/comment$",
        {"status": 503, "headers": {"Retry-After": "120"}},
        False,
    ),
    "429 with Retry-After on the fetch": (
        "GET",
        r"/issue/TEST-1$",
        {"status": 429, "headers": {"Retry-After": "90"}},
        False,
    ),
    "500 on the fetch": ("GET", r"/issue/TEST-1$", {"status": 500}, False),
    # The comment was stored and the answer lost: the retry must adopt it, not post again.
    "500 after the comment was stored": (
        "POST",
        r"/comment$",
        {"status": 500, "after_write": True},
        True,
    ),
    "timeout after the comment was stored": (
        "POST",
        r"/comment$",
        {"delay_s": CLIENT_TIMEOUT_S + 1.5, "after_write": True},
        True,
    ),
    "reset after the comment was stored": (
        "POST",
        r"/comment$",
        {"reset": True, "after_write": True},
        True,
    ),
    "reset on the status property after the post": (
        "PUT",
        r"/properties/",
        {"reset": True},
        True,
    ),
    "timeout on the fetch": ("GET", r"/issue/TEST-1$", {"delay_s": CLIENT_TIMEOUT_S + 1.5}, False),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failing_tracker_delays_the_card_and_never_doubles_it(
    fault: str, site: JiraServer, tmp_path: Path
) -> None:
    method, path, options, adopts = FAULTS[fault]
    app = make_app(site, tmp_path)
    site.put_issue("TEST-1", "problem-only")
    site.fail(method, path, **options)
    before = scrape(app)

    assert send(app, site, "TEST-1", "fault-1").status_code == 200
    drain(app)

    [delivery] = deliveries(app)
    assert delivery.state == DeliveryState.RETRYING, delivery.last_error
    retry_after = float(options.get("headers", {}).get("Retry-After", 0)) or None
    waited = (delivery.next_attempt_at - delivery.updated_at).total_seconds()
    assert waited == backoff(1, retry_after)

    # The item changed meanwhile; the retry must show the change, on the one card.
    site.put_issue("TEST-1", "no-metric")
    retry_now(app)

    assert states(app) == ["done"]
    assert_one_card_showing(site, "TEST-1", "no-metric")
    looked = site.requests[("GET", "issue/comment")]
    assert looked == (1 if adopts else 0), "comments are listed only when a post may have landed"
    assert site.violations == []
    after = scrape(app)
    waits = total(after, "leanguard_rate_limit_waits_total", tracker="jira") - total(
        before, "leanguard_rate_limit_waits_total", tracker="jira"
    )
    assert waits == (1 if options.get("status") == 429 else 0)
    if waits:
        waited_s = total(after, "leanguard_rate_limit_wait_seconds_total") - total(
            before, "leanguard_rate_limit_wait_seconds_total"
        )
        assert waited_s == 90.0


def test_a_refused_post_leaves_no_mark_and_a_lost_answer_is_adopted_later(
    site: JiraServer, tmp_path: Path
) -> None:
    # A comment stored by an attempt that never learnt its id is found by the next delivery
    # of the item too, not only by the retry of the same delivery.
    app = make_app(site, tmp_path, max_attempts=1)
    site.put_issue("TEST-1", "problem-only")
    site.fail("POST", r"/comment$", reset=True, after_write=True)

    assert send(app, site, "TEST-1", "lost-answer").status_code == 200
    drain(app)
    assert states(app) == ["dead"], "one attempt only: the delivery is dead-lettered"
    site.put_issue("TEST-1", "no-metric")
    assert send(app, site, "TEST-1", "next-change").status_code == 200
    drain(app)

    assert states(app) == ["dead", "done"]
    assert_one_card_showing(site, "TEST-1", "no-metric")
    assert total(scrape(app), "leanguard_deliveries_by_tracker", tracker="jira", state="dead") == 1


# A broken rules file ---------------------------------------------------------------------------


@pytest.fixture
def rules_checked_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Look at the rules file on every request and job (normally at most every 2 s)."""
    monkeypatch.setattr(runtime_module, "RULES_CHECK_INTERVAL_S", 0.0)


def edit(path: Path, text: str) -> None:
    """Rewrite a file so that its modification time surely changes."""
    previous = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    stamp = max(time.time_ns(), previous + 1_000_000)
    os.utime(path, ns=(stamp, stamp))


@pytest.fixture
def stop_workers() -> Iterator[list[Flask]]:
    """Apps whose worker thread runs; their threads are stopped after the test."""
    apps: list[Flask] = []
    yield apps
    for app in apps:
        queue = app.extensions[QUEUE_EXTENSION]
        assert isinstance(queue, InProcessQueue)
        queue.stop()


def worked(app: Flask, count: int) -> None:
    """Wait for the app's own worker thread to finish ``count`` deliveries."""
    wait_until(lambda: all_done(app, count), timeout_s=30, what=f"{count} deliveries worked")


@pytest.mark.usefixtures("rules_checked_at_once")
def test_a_broken_rules_change_is_reported_and_the_last_good_rules_keep_running(
    site: JiraServer, tmp_path: Path, stop_workers: list[Flask]
) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    rules = folder / "acme.yaml"
    edit(rules, GOOD_RULES)
    app = make_app(site, tmp_path, worker=True, rules=str(folder))
    stop_workers.append(app)
    client = app.test_client()
    site.put_issue("TEST-1", "problem-only")
    site.put_issue("TEST-2", "problem-only")

    send(app, site, "TEST-1", "good-rules")
    worked(app, 1)
    # The metric is switched off: only the hypothesis is missing.
    assert site.last_card["TEST-1"].startswith("*leanguard: 1 outcome check failing")

    edit(rules, BROKEN_RULES)
    home = client.get("/").get_data(as_text=True)
    ready = client.get("/readyz")
    assert "The rules file has problems; the last good rules keep running." in home
    assert "mode" in home and "acme.yaml" in home
    assert ready.status_code == 200, "a broken rules file does not take the service out"
    assert ready.get_json()["checks"]["rules"] is False
    assert "acme.yaml" in ready.get_json()["rules_error"]
    assert total(scrape(app), "leanguard_rules_valid") == 0

    send(app, site, "TEST-2", "broken-rules")
    worked(app, 2)
    assert site.last_card["TEST-2"].startswith("*leanguard: 1 outcome check failing")

    edit(rules, GOOD_RULES.replace("later", "next quarter"))
    assert client.get("/readyz").get_json()["checks"]["rules"] is True
    assert total(scrape(app), "leanguard_rules_valid") == 1
    assert "The rules file has problems" not in client.get("/").get_data(as_text=True)


def test_a_broken_rules_file_at_start_is_reported_and_the_preset_runs(
    site: JiraServer, tmp_path: Path, stop_workers: list[Flask]
) -> None:
    rules = tmp_path / "acme.yaml"
    edit(rules, BROKEN_RULES)
    app = make_app(site, tmp_path, worker=True, rules=str(rules))
    stop_workers.append(app)
    site.put_issue("TEST-1", "problem-only")

    ready = app.test_client().get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["checks"]["rules"] is False
    assert "acme.yaml" in app.test_client().get("/").get_data(as_text=True)
    send(app, site, "TEST-1", "preset")
    worked(app, 1)
    # Nothing good was ever loaded, so the built-in preset runs: both fields are missing.
    assert site.last_card["TEST-1"].startswith(f"*{HEADLINES['problem-only']}")


# Redis stopped, a worker killed -----------------------------------------------------------------


@pytest.fixture
def schema_url(postgres_server: str) -> Iterator[str]:
    with postgres_schema(postgres_server) as url:
        yield url


def worker_env(
    site: JiraServer, database_url: str, redis_url: str, tmp_path: Path
) -> dict[str, str]:
    """Settings of a ``leanguard worker`` with a short lease and a quick sweeper."""
    return leanguard_env(
        database_url=database_url,
        redis_url=redis_url,
        base_url="https://leanguard.example.com",
        secret_key="faults-secret-key",
        jira_url=site.url,
        jira_email=EMAIL,
        jira_api_token=TOKEN,
        jira_webhook_secret=SECRET,
        instance_path=str(tmp_path / "instance"),
        job_timeout_s="4",
        lease_s="6",
        sweep_interval_s="1",
    )


def all_done(app: Flask, count: int) -> bool:
    found = states(app)
    return len(found) == count and set(found) == {"done"}


@pytest.mark.postgres
@pytest.mark.redis
def test_webhooks_are_stored_while_redis_is_down_and_worked_when_it_returns(
    site: JiraServer, schema_url: str, tmp_path: Path
) -> None:
    redis = PrivateRedis(tmp_path)
    redis.start()
    app = make_app(site, tmp_path, database_url=schema_url, redis_url=redis.url)
    worker = start_worker("worker", worker_env(site, schema_url, redis.url, tmp_path), tmp_path)
    try:
        for n in (1, 2, 3, 4):
            site.put_issue(f"TEST-{n}", "problem-only")
        assert send(app, site, "TEST-1", "before").status_code == 200
        wait_until(lambda: all_done(app, 1), timeout_s=60, what="the first delivery")

        redis.stop()
        answers = [send(app, site, f"TEST-{n}", f"outage-{n}") for n in (2, 3, 4)]
        ready = app.test_client().get("/readyz")
        figures = scrape(app)

        # Acknowledged and stored: the inbox commits before it enqueues.
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert [a.get_json()["status"] for a in answers] == ["accepted"] * 3
        assert states(app) == ["done", "received", "received", "received"]
        assert ready.status_code == 503
        assert ready.get_json()["checks"] == {"database": True, "queue": False, "rules": True}
        assert total(figures, "leanguard_deliveries", state="received") == 3
        assert total(figures, "leanguard_shared_counters_up") == 0

        redis.start()  # empty: whatever Redis held is gone
        wait_until(lambda: all_done(app, 4), timeout_s=90, what="the sweeper to re-drive")
        assert app.test_client().get("/readyz").status_code == 200
        for n in (1, 2, 3, 4):
            assert_one_card_showing(site, f"TEST-{n}", "problem-only")
        assert worker.alive(), worker.output()[-3000:]
    finally:
        worker.stop()
        redis.stop()


@pytest.mark.postgres
@pytest.mark.redis
def test_a_worker_killed_after_posting_loses_its_lease_and_another_adopts_the_card(
    site: JiraServer, schema_url: str, redis_url: str, tmp_path: Path
) -> None:
    app = make_app(site, tmp_path, database_url=schema_url, redis_url=redis_url)
    env = worker_env(site, schema_url, redis_url, tmp_path)
    site.put_issue("TEST-1", "problem-only")
    # Jira stores the comment, then the answer never comes: the worker is killed meanwhile.
    held = site.fail("POST", r"/comment$", after_write=True, hold=threading.Event())
    first = start_worker("worker-1", env, tmp_path)
    second = None
    try:
        assert send(app, site, "TEST-1", "killed").status_code == 200
        wait_until(held.arrived.is_set, timeout_s=60, what="the first worker's card post")
        second = start_worker("worker-2", env, tmp_path)
        first.kill()
        assert held.hold is not None
        held.hold.set()

        wait_until(lambda: all_done(app, 1), timeout_s=90, what="the second worker")
        [delivery] = deliveries(app)
        assert delivery.attempts == 2, "the lease ran out and the delivery was claimed again"
        assert_one_card_showing(site, "TEST-1", "problem-only")
        assert site.requests[("GET", "issue/comment")] == 1, "the card was looked for, once"
        assert site.requests[("PUT", "issue/comment/{id}")] == 1, "and adopted by an edit"
        assert site.properties["TEST-1"]["status"] == "fail"
    finally:
        first.stop()
        if second is not None:
            second.stop()


# PostgreSQL restarted ---------------------------------------------------------------------------


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.remove()


def test_a_postgres_restart_answers_503_meanwhile_and_recovers_without_a_restart(
    site: JiraServer,
    private_postgres: PrivatePostgres,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app(site, tmp_path, database_url=private_postgres.url)
    client = app.test_client()
    for n in (1, 2, 3):
        site.put_issue(f"TEST-{n}", "problem-only")
    assert send(app, site, "TEST-1", "before").status_code == 200
    drain(app)
    assert send(app, site, "TEST-2", "acknowledged").status_code == 200

    private_postgres.stop()
    with caplog.at_level(logging.WARNING):
        during = {
            "jira webhook": send(app, site, "TEST-3", "during"),
            "linear webhook": send_linear(app, "linear-during"),
            "readyz": client.get("/readyz"),
            "metrics": client.get("/metrics"),
            "home": client.get("/"),
            "item page": client.get("/items/jira/TEST-1"),
        }
    private_postgres.start()

    for what, response in during.items():
        assert response.status_code == 503, (what, response.status_code)
    for what in ("jira webhook", "linear webhook", "metrics", "home", "item page"):
        assert int(during[what].headers["Retry-After"]) > 0, what
    assert during["jira webhook"].get_json()["code"] == "unavailable"
    assert "http.unexpected-error" not in caplog.text, "an outage is not a bug: no 500"

    # The sender retries; the same process serves it once the database is back.
    assert send(app, site, "TEST-3", "during").status_code == 200
    drain(app)
    assert [(d.delivery_id, d.state) for d in deliveries(app)] == [
        ("before", "done"),
        ("acknowledged", "done"),
        ("during", "done"),
    ]
    for n in (1, 2, 3):
        assert_one_card_showing(site, f"TEST-{n}", "problem-only")
    assert client.get("/readyz").get_json()["checks"]["database"] is True
