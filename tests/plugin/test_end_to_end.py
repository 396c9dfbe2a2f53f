"""The service's main loop end to end: a signed webhook in, the worker, the tracker out, the pages.

Every scenario runs in both set-ups the design names: ``embedded`` (a SQLite file and the
in-process queue, drained by the test) and ``distributed`` (a fresh PostgreSQL schema, Redis and
an rq ``SimpleWorker`` run in this process). The trackers are stateful fakes behind
``responses`` whose every request is checked against Jira's OpenAPI document or Linear's GraphQL
schema (``support.contracts``); webhook bodies are the real captures in the shared fixtures,
re-signed with this test's secrets, plus realistic payloads of our own in ``fixtures/e2e``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
import responses
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import SimpleWorker
from sqlalchemy import select, update
from support.contracts import tracker_mock
from werkzeug.test import TestResponse

from plugin import jobs
from plugin.app import QUEUE_EXTENSION, RUNTIME_EXTENSION, create_app
from plugin.processing import process_delivery
from plugin.queue import RQ_GRACE_S, InProcessQueue, RqQueue
from plugin.runtime import Runtime
from plugin.settings import Settings
from plugin.storage import (
    CardRow,
    Delivery,
    DeliveryState,
    EvaluationRow,
    WorkItemRow,
    find_work_item,
)
from plugin.storage.db import temporary_schema

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("LEANGUARD_SHARED_DIR") or ROOT.parent / "shared") / "fixtures"
E2E = Path(__file__).parent / "fixtures" / "e2e"

BASE_URL = "https://leanguard.example.com"
JIRA_SECRET = "jira-webhook-secret-e2e"
LINEAR_SECRET = "linear-webhook-secret-e2e"
JIRA_SITE = "https://helloworld-test.atlassian.net"
JIRA_EMAIL = "leanguard-bot@helloworld-test.example"
JIRA_TOKEN = "ATATT3xFfGF0-e2e-cloud-token"
JIRA_BOT = "712020:4f1c3a52-9a1e-4b7e-8a53-0c2d5f7e9b11"
DC_SITE = "http://localhost:2990/jira"
LINEAR_ORG = "7a661544-df08-4cd1-a1e3-5ec611898806"
DC_TOKEN = "NjM4OTk1-e2e-dc-personal-token"
LINEAR_API = "https://api.linear.app/graphql"
LINEAR_KEY = "lin_api_e2e0123456789abcdefghijklmnopqrstuvwxyzAB"
LINEAR_BOT = "0c6e9d7a-3b8e-4a55-9a5e-5f0f3d7c1e21"
WEB_45 = "b5f0c2e4-7d1a-4f3b-9c6e-2a8d4e1f0b73"
WEB_44 = "3443a709-f2b5-46f2-a136-a0445fd432be"
ZULIP_PROJECT = "e65b2421-bad1-4075-bfd4-24be439c83f9"
LABEL = "needs-outcomes"


# Payloads ------------------------------------------------------------------------------------


def details_path(tracker: str, key: str, site: str) -> str:
    """The details page of one site's item, as cards and pages link to it."""
    return f"/items/{tracker}/{key}?site={quote(site, safe='')}"


def shared_bytes(name: str) -> bytes:
    """Return a real capture from the shared fixtures, byte for byte."""
    return (SHARED / name).read_bytes()


def e2e_bytes(name: str) -> bytes:
    """Return one of this test's own payloads, byte for byte."""
    return (E2E / name).read_bytes()


def e2e_json(name: str) -> Any:
    """Load one of this test's own JSON files."""
    return json.loads(e2e_bytes(name))


def touched(issue: Mapping[str, Any], updated: str) -> dict[str, Any]:
    """Return a Jira issue saved again at ``updated`` with nothing else changed."""
    copy: dict[str, Any] = json.loads(json.dumps(issue))
    copy["fields"]["updated"] = updated
    return copy


def hub_signature(secret: str, body: bytes) -> str:
    """Sign a body the way a Jira admin webhook does."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def linear_signature(secret: str, body: bytes) -> str:
    """Sign a body the way Linear does (hex HMAC-SHA256, no prefix)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def now_ms() -> int:
    return int(time.time() * 1000)


# Fake trackers -------------------------------------------------------------------------------


def answer(status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> Any:
    """Build a ``responses`` callback answer with a JSON body (or none)."""
    content = "" if body is None else json.dumps(body)
    return status, {"Content-Type": "application/json", **(headers or {})}, content


@dataclass
class Fault:
    """Answer ``times`` requests whose method and path match with ``status`` (None: forever)."""

    method: str
    path: re.Pattern[str]
    status: int
    headers: dict[str, str]
    times: int | None


@dataclass
class FakeJira:
    """A Jira site behind ``responses``: issues, comments, the status property and labels."""

    rsps: responses.RequestsMock
    base_url: str
    api: str
    myself: dict[str, Any]
    fields: list[dict[str, Any]]
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    comments: dict[str, dict[str, Any]] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, set[str]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    authorizations: set[str] = field(default_factory=set)
    unexpected: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    card_posts: threading.Barrier | None = None
    _next_comment: int = 10500

    def __post_init__(self) -> None:
        pattern = re.compile(re.escape(self.base_url) + r"/rest/api/" + self.api + r"/.*")
        for method in ("GET", "POST", "PUT", "DELETE"):
            self.rsps.add_callback(method, pattern, callback=self._answer)

    def put_issue(self, issue: Mapping[str, Any]) -> None:
        """Make ``issue`` what GET /issue/{key or id} answers from now on."""
        self.issues[str(issue["key"])] = json.loads(json.dumps(issue))

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        *,
        times: int | None = 1,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with an error status."""
        self.faults.append(Fault(method, re.compile(path), status, dict(headers or {}), times))

    def hold_card_posts(self, timeout_s: float) -> None:
        """Hold the next comment POST until a second one arrives, or ``timeout_s`` passes."""
        self.card_posts = threading.Barrier(2, timeout=timeout_s)

    def calls(self, method: str | None = None, prefix: str = "") -> list[str]:
        """Paths (after ``/rest/api/N``) of the requests received, in order."""
        return [
            path
            for sent, path, _ in self.requests
            if (method is None or sent == method) and path.startswith(prefix)
        ]

    def writes(self) -> list[tuple[str, str]]:
        """Every request that would change something in Jira."""
        return [(method, path) for method, path, _ in self.requests if method != "GET"]

    def comment_bodies(self, key: str) -> list[Any]:
        """The bodies of the comments on an issue, oldest first."""
        return [c["body"] for c in self.comments.values() if c["issue"] == key]

    def _answer(self, request: requests.PreparedRequest) -> Any:
        url = urlsplit(request.url or "")
        path = url.path.removeprefix(urlsplit(self.base_url).path).removeprefix(
            f"/rest/api/{self.api}"
        )
        method = request.method or ""
        body = json.loads(request.body) if request.body else None
        self.requests.append((method, path, body))
        self.authorizations.add(request.headers.get("Authorization", ""))
        for fault in self.faults:
            if fault.method == method and fault.path.search(path) and fault.times != 0:
                if fault.times is not None:
                    fault.times -= 1
                return answer(fault.status, {"errorMessages": ["Try again later."]}, fault.headers)
        return self._route(method, path, parse_qs(url.query), body)

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Any:
        parts = path.strip("/").split("/")
        if method == "GET" and parts == ["myself"]:
            return answer(200, self.myself)
        if method == "GET" and parts == ["field"]:
            return answer(200, self.fields)
        if parts[0] != "issue" or len(parts) < 2:
            return self._unexpected(method, path)
        issue = self._issue(parts[1])
        if issue is None:
            return answer(404, {"errorMessages": ["Issue does not exist."], "errors": {}})
        key = str(issue["key"])
        rest = parts[2:]
        if method == "GET" and not rest:
            assert query.get("expand") == ["names"] and query.get("fields") == ["*all"], query
            return answer(200, issue)
        if method == "PUT" and not rest:
            for operation in body["update"]["labels"]:
                labels = self.labels.setdefault(key, set())
                labels.update([operation["add"]] if "add" in operation else [])
                labels.difference_update([operation["remove"]] if "remove" in operation else [])
            return answer(204)
        if method == "POST" and rest == ["comment"]:
            if self.card_posts is not None:
                # No second post within the time: the card is posted alone.
                with contextlib.suppress(threading.BrokenBarrierError):
                    self.card_posts.wait()
            comment_id = str(self._next_comment)
            self._next_comment += 1
            self.comments[comment_id] = {"issue": key, "body": body["body"]}
            return answer(201, {"id": comment_id, "self": f"{self.base_url}/c/{comment_id}"})
        if rest[:1] == ["comment"] and len(rest) == 2:
            comment = self.comments.get(rest[1])
            if comment is None or comment["issue"] != key:
                return answer(404, {"errorMessages": ["Comment does not exist."], "errors": {}})
            if method == "PUT":
                comment["body"] = body["body"]
                return answer(200, {"id": rest[1], "body": body["body"]})
            if method == "DELETE":
                del self.comments[rest[1]]
                return answer(204)
        if method == "PUT" and rest[:1] == ["properties"] and len(rest) == 2:
            created = key not in self.properties
            self.properties[key] = body
            return answer(201 if created else 200)
        return self._unexpected(method, path)

    def _issue(self, key_or_id: str) -> dict[str, Any] | None:
        if key_or_id in self.issues:
            return self.issues[key_or_id]
        return next((i for i in self.issues.values() if str(i["id"]) == key_or_id), None)

    def _unexpected(self, method: str, path: str) -> Any:
        self.unexpected.append(f"{method} {path}")
        return answer(400, {"errorMessages": [f"the fake Jira does not serve {method} {path}"]})


@dataclass
class FakeLinear:
    """Linear's GraphQL API behind ``responses``: issues, projects and comments."""

    rsps: responses.RequestsMock
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    comments: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rsps.add_callback("POST", LINEAR_API, callback=self._answer)

    def put_issue(self, answer_file: str) -> None:
        node = e2e_json(answer_file)["data"]["issue"]
        self.issues[node["id"]] = node

    def put_project(self, answer_file: str) -> None:
        node = e2e_json(answer_file)["data"]["project"]
        self.projects[node["id"]] = node

    def names(self) -> list[str]:
        """The operation names received, in order."""
        return [name for name, _ in self.operations]

    def variables(self, name: str) -> list[dict[str, Any]]:
        """The variables of every request of one operation."""
        return [variables for sent, variables in self.operations if sent == name]

    def _answer(self, request: requests.PreparedRequest) -> Any:
        payload = json.loads(request.body or b"{}")
        name, variables = payload.get("operationName"), payload.get("variables") or {}
        self.operations.append((name, variables))
        if request.headers.get("Authorization") != LINEAR_KEY:
            return answer(400, _linear_error("Authentication required", "AUTHENTICATION_ERROR"))
        if name == "Viewer":
            return answer(200, {"data": {"viewer": {"id": LINEAR_BOT}}})
        if name in ("Issue", "Project"):
            store = self.issues if name == "Issue" else self.projects
            alias = "identifier" if name == "Issue" else "slugId"
            wanted = variables["id"]
            node = store.get(wanted) or next(
                (n for n in store.values() if n.get(alias) == wanted), None
            )
            if node is None:
                return answer(200, _linear_error(f"Entity not found: {name}", "ENTITY_NOT_FOUND"))
            return answer(200, {"data": {name.lower(): node}})
        if name == "CommentCreate":
            comment_id = str(uuid.uuid4())
            self.comments[comment_id] = dict(variables["input"])
            created = {"success": True, "comment": {"id": comment_id}}
            return answer(200, {"data": {"commentCreate": created}})
        if name in ("CommentUpdate", "CommentDelete"):
            comment = self.comments.get(variables["id"])
            if comment is None:
                return answer(200, _linear_error("Entity not found: Comment", "ENTITY_NOT_FOUND"))
            if name == "CommentUpdate":
                comment["body"] = variables["input"]["body"]
            else:
                del self.comments[variables["id"]]
            field_name = name[0].lower() + name[1:]
            return answer(200, {"data": {field_name: {"success": True}}})
        self.unexpected.append(str(name))
        return answer(
            400, _linear_error(f"the fake Linear does not serve {name}", "BAD_USER_INPUT")
        )


def _linear_error(message: str, code: str) -> dict[str, Any]:
    extensions = {"code": code, "type": code.lower(), "userPresentableMessage": message}
    return {"errors": [{"message": message, "extensions": extensions}], "data": None}


# The service ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    """Where a service keeps its data and how its jobs run."""

    name: str
    database_url: str
    redis_url: str

    @property
    def distributed(self) -> bool:
        return bool(self.redis_url)


@dataclass
class Service:
    """One leanguard app under test, with the worker driven by the test."""

    app: Flask
    backend: Backend

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.extensions[RUNTIME_EXTENSION]
        return runtime

    @property
    def client(self) -> FlaskClient:
        return self.app.test_client()

    def post_jira(
        self,
        body: bytes,
        *,
        delivery_id: str | None = None,
        secret: str = JIRA_SECRET,
        signature: str | None = None,
    ) -> TestResponse:
        """Deliver a Jira admin webhook, signed as Jira signs it."""
        headers = {
            "Content-Type": "application/json; charset=UTF-8",
            "User-Agent": "Atlassian Webhook HTTP Client",
            "X-Atlassian-Webhook-Identifier": delivery_id or str(uuid.uuid4()),
            "X-Hub-Signature": signature or hub_signature(secret, body),
        }
        return self.client.post("/webhooks/jira", data=body, headers=headers)

    def post_linear(
        self,
        body: bytes,
        *,
        delivery_id: str | None = None,
        sent_at_ms: int | None = None,
        secret: str = LINEAR_SECRET,
    ) -> TestResponse:
        """Deliver a Linear webhook as Linear sends it now: fresh timestamp, signed."""
        payload = json.loads(body)
        payload["webhookTimestamp"] = now_ms() if sent_at_ms is None else sent_at_ms
        signed = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Linear-Webhook",
            "Linear-Delivery": delivery_id or str(uuid.uuid4()),
            "Linear-Event": str(payload.get("type")),
            "Linear-Signature": linear_signature(secret, signed),
        }
        return self.client.post("/webhooks/linear", data=signed, headers=headers)

    def work(self) -> None:
        """Run the worker until nothing is due: the in-process drain, or an rq burst."""
        queue = self.app.extensions[QUEUE_EXTENSION]
        if isinstance(queue, InProcessQueue):
            queue.drain()
        else:
            assert isinstance(queue, RqQueue)
            jobs.bind_runtime(self.runtime)
            queue.flush()
            queue.dispatch()
            # The worker installs its own SIGINT and SIGTERM handlers; give pytest its own back.
            handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                SimpleWorker([queue.queue], connection=queue.redis).work(burst=True)
            finally:
                for sig, handler in handlers.items():
                    signal.signal(sig, handler)
            assert queue.queue.failed_job_registry.count == 0, "an rq job raised"
        # A request that breaks a tracker's contract raises AssertionError inside the job,
        # which the worker records as a retryable crash; surface it as the failure it is.
        errors = [d.last_error for d in self.deliveries() if d.last_error]
        assert not [e for e in errors if e.startswith("AssertionError")], errors

    def retry_due_now(self) -> None:
        """Let the retry time of every retrying delivery pass, then run the worker."""
        past = datetime.now(UTC) - timedelta(seconds=RQ_GRACE_S + 60)
        with self.runtime.database.session() as session:
            session.execute(
                update(Delivery)
                .where(Delivery.state == DeliveryState.RETRYING)
                .values(next_attempt_at=past)
            )
        queue = self.app.extensions[QUEUE_EXTENSION]
        if isinstance(queue, RqQueue):
            # The finished job left Redis; the sweeper is what re-drives a due retry.
            queue.sweep()
        self.work()

    def deliveries(self) -> list[Delivery]:
        with self.runtime.database.session() as session:
            return list(session.scalars(select(Delivery).order_by(Delivery.id)))

    def states(self) -> list[str]:
        return [delivery.state for delivery in self.deliveries()]

    def work_item(self, tracker: str, key: str) -> WorkItemRow:
        with self.runtime.database.session() as session:
            row = find_work_item(session, tenant_id=None, tracker=tracker, key=key)
            assert row is not None, f"{tracker} item {key} was never stored"
            return row

    def evaluations(self, tracker: str, key: str) -> list[EvaluationRow]:
        row_id = self.work_item(tracker, key).id
        with self.runtime.database.session() as session:
            return list(
                session.scalars(
                    select(EvaluationRow)
                    .where(EvaluationRow.work_item_id == row_id)
                    .order_by(EvaluationRow.id)
                )
            )

    def card(self, tracker: str, key: str) -> CardRow | None:
        row_id = self.work_item(tracker, key).id
        with self.runtime.database.session() as session:
            return session.scalars(select(CardRow).where(CardRow.work_item_id == row_id)).first()

    def page(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)


MakeService = Callable[..., Service]


@pytest.fixture(
    params=[
        "embedded",
        pytest.param("distributed", marks=[pytest.mark.postgres, pytest.mark.redis]),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """An empty SQLite file, or an empty PostgreSQL schema plus a flushed Redis database."""
    if request.param == "embedded":
        # No database URL: the embedded default, a SQLite file under the instance folder.
        yield Backend("embedded", "", "")
        return
    postgres: str = request.getfixturevalue("postgres_server")
    redis_url: str = request.getfixturevalue("redis_server")
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    try:
        with temporary_schema(postgres, prefix="leanguard_test") as url:
            yield Backend("distributed", url, redis_url)
    finally:
        redis.flushdb()
        redis.close()


@pytest.fixture
def make_service(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MakeService]:
    """Build services on the backend; keyword arguments override the default settings."""
    monkeypatch.setattr(jobs, "_runtime", None)
    services: list[Service] = []

    def build(**overrides: Any) -> Service:
        values: dict[str, Any] = {
            "database_url": backend.database_url,
            "redis_url": backend.redis_url,
            "instance_path": str(tmp_path / "instance"),
            "base_url": BASE_URL,
            "secret_key": "e2e-secret-key",
            "jira_url": JIRA_SITE,
            "jira_email": JIRA_EMAIL,
            "jira_api_token": JIRA_TOKEN,
            "jira_webhook_secret": JIRA_SECRET,
            "linear_api_key": LINEAR_KEY,
            "linear_webhook_secret": LINEAR_SECRET,
            **overrides,
        }
        settings = Settings(**values)
        settings.validate()
        app = create_app(settings, start_worker=False)
        service = Service(app, backend)
        if backend.distributed:
            # PostgreSQL deployments migrate with `leanguard migrate`, not on start.
            service.runtime.database.upgrade()
        services.append(service)
        return service

    yield build
    for service in services:
        queue = service.app.extensions[QUEUE_EXTENSION]
        if isinstance(queue, RqQueue):
            queue.redis.close()
        service.runtime.database.dispose()


@pytest.fixture
def service(make_service: MakeService) -> Service:
    """A service with the default settings of these tests."""
    return make_service()


@pytest.fixture
def trackers() -> Iterator[responses.RequestsMock]:
    """Every HTTP call leaves through ``responses``, contract-checked; nothing reaches a network."""
    with tracker_mock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def jira(trackers: responses.RequestsMock) -> Iterator[FakeJira]:
    """A Jira Cloud site (REST v3)."""
    fake = FakeJira(
        trackers,
        JIRA_SITE,
        "3",
        myself=e2e_json("jira_api_myself.json"),
        fields=e2e_json("jira_api_fields.json"),
    )
    yield fake
    assert fake.unexpected == []


@pytest.fixture
def linear(trackers: responses.RequestsMock) -> Iterator[FakeLinear]:
    """Linear's GraphQL API."""
    fake = FakeLinear(trackers)
    yield fake
    assert fake.unexpected == []


def accepted(response: TestResponse) -> str:
    """Assert a 200 "accepted" answer and return its delivery id."""
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == "accepted", body
    return str(body["delivery_id"])


def adf_text(node: Any) -> str:
    """The visible text of an ADF document, for assertions."""
    if isinstance(node, dict):
        own = node.get("text", "") if node.get("type") == "text" else ""
        return own + "".join(adf_text(child) for child in node.get("content", []))
    return ""


# Jira Cloud ----------------------------------------------------------------------------------


def test_failing_jira_epic_gets_one_adf_card_a_status_property_and_a_details_page(
    service: Service, jira: FakeJira, trackers: responses.RequestsMock
) -> None:
    jira.put_issue(e2e_json("jira_api_KAN-40.problem_only.json"))

    delivery_id = accepted(
        service.post_jira(e2e_bytes("jira_webhook_epic_created.json"), delivery_id="a1-created")
    )

    assert delivery_id == "a1-created"
    assert jira.requests == [], "a webhook request never calls the tracker"
    service.work()

    assert service.states() == ["done"]
    assert jira.calls("GET", "/issue/") == ["/issue/KAN-40"]
    assert jira.calls("POST") == ["/issue/KAN-40/comment"]
    sent = [(c.request.method, urlsplit(c.request.url or "").path) for c in trackers.calls]
    assert ("GET", "/rest/api/3/issue/KAN-40") in sent
    assert ("POST", "/rest/api/3/issue/KAN-40/comment") in sent
    assert ("PUT", "/rest/api/3/issue/KAN-40/properties/leanguard") in sent
    [card] = jira.comment_bodies("KAN-40")
    assert card["type"] == "doc" and card["version"] == 1, "Cloud comments are ADF"
    shown = adf_text(card)
    assert "2 outcome checks failing" in shown
    assert "No hypothesis found." in shown and "No success metric found." in shown
    assert BASE_URL + details_path("jira", "KAN-40", JIRA_SITE) in json.dumps(card)
    status = dict(jira.properties["KAN-40"])
    evaluated_at = datetime.fromisoformat(status.pop("evaluatedAt"))
    assert abs((datetime.now(UTC) - evaluated_at).total_seconds()) < 60
    assert status == {
        "status": "fail",
        "violations": 2,
        "failing": ["hypothesis", "success-metric"],
        "detailsUrl": BASE_URL + details_path("jira", "KAN-40", JIRA_SITE),
    }
    assert jira.calls("PUT") == ["/issue/KAN-40/properties/leanguard"]

    details = service.page("/items/jira/KAN-40")
    assert "KAN-40: Self-serve plan upgrades" in details
    assert "No success metric found." in details
    assert "Success metric" in details and 'aria-label="Result tree"' in details
    home = service.page("/")
    assert f'href="{details_path("jira", "KAN-40", JIRA_SITE)}"' in home
    assert "No hypothesis found." in home


def test_jira_comment_webhook_is_stored_and_answered_204_without_work(
    service: Service, jira: FakeJira
) -> None:
    response = service.post_jira(shared_bytes("jira/cloud_comment_created.json"))
    service.work()

    assert response.status_code == 204
    assert [(d.event_type, d.state) for d in service.deliveries()] == [
        ("comment_created", "ignored")
    ]
    assert jira.requests == []


def test_duplicate_delivery_is_answered_duplicate_and_worked_once(
    service: Service, jira: FakeJira
) -> None:
    jira.put_issue(e2e_json("jira_api_KAN-40.problem_only.json"))
    body = e2e_bytes("jira_webhook_epic_created.json")

    accepted(service.post_jira(body, delivery_id="dup-1"))
    before_work = service.post_jira(body, delivery_id="dup-1")
    service.work()
    after_work = service.post_jira(body, delivery_id="dup-1")
    service.work()

    for repeat in (before_work, after_work):
        assert repeat.status_code == 200
        assert repeat.get_json() == {"status": "duplicate", "delivery_id": "dup-1"}
    assert [(d.delivery_id, d.state, d.attempts) for d in service.deliveries()] == [
        ("dup-1", "done", 1)
    ]
    assert jira.calls("GET", "/issue/") == ["/issue/KAN-40"]
    assert len(jira.comment_bodies("KAN-40")) == 1
    assert jira.calls("POST") == ["/issue/KAN-40/comment"]


def test_burst_of_updates_keeps_one_card_edited_only_when_its_content_changes(
    service: Service, jira: FakeJira
) -> None:
    problem_only = e2e_json("jira_api_KAN-40.problem_only.json")
    body = e2e_bytes("jira_webhook_epic_updated_description.json")
    jira.put_issue(problem_only)

    # Five edits land before the worker gets to them: one fetch sees them all.
    for n in range(5):
        accepted(service.post_jira(body, delivery_id=f"burst-{n}"))
    service.work()
    assert service.states() == ["done"] * 5
    assert jira.calls("GET", "/issue/") == ["/issue/KAN-40"]
    assert jira.writes() == [
        ("POST", "/issue/KAN-40/comment"),
        ("PUT", "/issue/KAN-40/properties/leanguard"),
    ]

    # Saved again with nothing that changes the card: fetched, and nothing written.
    jira.put_issue(touched(problem_only, "2026-11-20T17:12:00.000+0000"))
    accepted(service.post_jira(body, delivery_id="same-content"))
    service.work()
    assert len(jira.calls("GET", "/issue/")) == 2
    assert len(jira.writes()) == 2

    # A hypothesis arrives, the metric is still missing: the same comment is edited once.
    missing_metric = e2e_json("jira_api_KAN-40.missing_metric.json")
    jira.put_issue(missing_metric)
    accepted(service.post_jira(body, delivery_id="hypothesis-added"))
    service.work()
    comment_path = "/issue/KAN-40/comment/10500"
    assert jira.writes()[2:] == [
        ("PUT", comment_path),
        ("PUT", "/issue/KAN-40/properties/leanguard"),
    ]
    [card] = jira.comment_bodies("KAN-40")
    assert "1 outcome check failing" in adf_text(card)
    assert "No hypothesis found." not in adf_text(card)

    jira.put_issue(touched(missing_metric, "2026-11-21T12:00:00.000+0000"))
    accepted(service.post_jira(body, delivery_id="same-again"))
    service.work()

    assert len(jira.writes()) == 4
    assert jira.calls("POST") == ["/issue/KAN-40/comment"], "never a second card"
    assert service.states() == ["done"] * 8


@pytest.mark.parametrize("resolved_card", ["edit", "delete"])
def test_fixed_item_resolves_its_card_and_updates_the_property(
    make_service: MakeService, jira: FakeJira, resolved_card: str
) -> None:
    service = make_service(resolved_card=resolved_card, card_label=LABEL)
    jira.put_issue(e2e_json("jira_api_KAN-40.problem_only.json"))
    accepted(service.post_jira(e2e_bytes("jira_webhook_epic_created.json")))
    service.work()
    assert len(jira.comment_bodies("KAN-40")) == 1
    assert jira.labels["KAN-40"] == {LABEL}
    assert jira.properties["KAN-40"]["status"] == "fail"

    jira.put_issue(e2e_json("jira_api_KAN-40.complete.json"))
    accepted(service.post_jira(e2e_bytes("jira_webhook_epic_updated_description.json")))
    service.work()

    assert service.states() == ["done", "done"]
    resolve_write = jira.writes()[3]
    if resolved_card == "edit":
        assert resolve_write == ("PUT", "/issue/KAN-40/comment/10500")
        [card] = jira.comment_bodies("KAN-40")
        assert "all outcome checks pass" in adf_text(card)
        assert card["content"][0]["attrs"]["panelType"] == "success"
    else:
        assert resolve_write == ("DELETE", "/issue/KAN-40/comment/10500")
        assert jira.comment_bodies("KAN-40") == []
    assert jira.labels["KAN-40"] == set()
    assert jira.properties["KAN-40"]["status"] == "pass"
    assert jira.properties["KAN-40"]["violations"] == 0
    card_row = service.card("jira", "KAN-40")
    assert card_row is not None
    assert card_row.state == ("resolved" if resolved_card == "edit" else "deleted")
    assert "All 3 rules that apply pass." in service.page("/items/jira/KAN-40")

    # A passing item whose card is closed stays quiet.
    writes = len(jira.writes())
    accepted(service.post_jira(e2e_bytes("jira_webhook_epic_updated_description.json")))
    service.work()
    assert len(jira.writes()) == writes
    assert jira.calls("POST", "/issue/KAN-40/comment") == ["/issue/KAN-40/comment"]


def test_item_that_never_failed_gets_no_comment_property_or_label(
    make_service: MakeService, jira: FakeJira
) -> None:
    service = make_service(card_label=LABEL)
    # The real capture: a Task is created. Tasks are out of the preset's scope.
    jira.put_issue(e2e_json("jira_api_KAN-22.json"))
    accepted(service.post_jira(shared_bytes("jira/cloud_jira_issue_created_with_changelog.json")))
    # An epic that names its problem, its bet and its number from the start.
    jira.put_issue(e2e_json("jira_api_KAN-40.complete.json"))
    accepted(service.post_jira(e2e_bytes("jira_webhook_epic_created.json")))
    service.work()

    assert service.states() == ["done", "done"]
    assert jira.calls("GET", "/issue/") == ["/issue/KAN-22", "/issue/KAN-40"]
    assert jira.writes() == []
    assert jira.comments == {} and jira.properties == {} and jira.labels == {}
    assert service.card("jira", "KAN-22") is None and service.card("jira", "KAN-40") is None
    assert [e.status for e in service.evaluations("jira", "KAN-22")] == ["skipped"]
    assert [e.status for e in service.evaluations("jira", "KAN-40")] == ["pass"]
    assert "No rule applies to this task." in service.page("/items/jira/KAN-22")


def test_dry_run_rules_store_the_evaluation_but_write_nothing(
    make_service: MakeService, jira: FakeJira
) -> None:
    service = make_service(rules=str(E2E / "rules_dry_run.yaml"), card_label=LABEL)
    assert service.runtime.rules_error == ""
    jira.put_issue(e2e_json("jira_api_KAN-40.problem_only.json"))
    accepted(service.post_jira(e2e_bytes("jira_webhook_epic_created.json")))
    service.work()

    assert service.states() == ["done"]
    assert jira.calls("GET", "/issue/") == ["/issue/KAN-40"]
    assert jira.writes() == []
    [evaluation] = service.evaluations("jira", "KAN-40")
    assert evaluation.ruleset_name == "lean-trial"
    assert evaluation.violations == 0
    details = service.page("/items/jira/KAN-40")
    assert "lean-trial" in details
    assert "No success metric found." in details
    assert "dry run: not shown on the ticket" in details


def test_own_label_change_is_ignored_but_own_description_change_is_checked(
    service: Service, jira: FakeJira
) -> None:
    jira.put_issue(e2e_json("jira_api_KAN-40.missing_metric.json"))
    labels_by_bot = e2e_json("jira_webhook_epic_labels_by_bot.json")
    assert labels_by_bot["user"]["accountId"] == JIRA_BOT == jira.myself["accountId"]
    assert [i["fieldId"] for i in labels_by_bot["changelog"]["items"]] == ["labels"]

    accepted(service.post_jira(e2e_bytes("jira_webhook_epic_labels_by_bot.json")))
    service.work()
    assert service.states() == ["done"]
    assert jira.calls() == ["/myself"], "only who the bot is was asked; the issue was not"

    accepted(service.post_jira(e2e_bytes("jira_webhook_epic_description_by_bot.json")))
    service.work()
    assert service.states() == ["done", "done"]
    assert jira.calls("GET", "/issue/") == ["/issue/KAN-40"]
    assert jira.calls("POST") == ["/issue/KAN-40/comment"]
    assert jira.calls("GET", "/myself") == ["/myself"], "the identity is asked once"


def test_older_snapshot_fetched_after_a_newer_one_is_not_applied(
    service: Service, jira: FakeJira
) -> None:
    body = e2e_bytes("jira_webhook_epic_updated_description.json")
    jira.put_issue(e2e_json("jira_api_KAN-40.missing_metric.json"))  # updated 2026-11-21 10:02
    accepted(service.post_jira(body))
    service.work()
    writes = jira.writes()

    # A lagging replica answers with the state of the day before.
    jira.put_issue(e2e_json("jira_api_KAN-40.problem_only.json"))  # updated 2026-11-20 16:40
    accepted(service.post_jira(body))
    service.work()

    assert service.states() == ["done", "done"]
    assert jira.calls("GET", "/issue/") == ["/issue/KAN-40", "/issue/KAN-40"]
    assert jira.writes() == writes, "the stale snapshot changed nothing on the ticket"
    [evaluation] = service.evaluations("jira", "KAN-40")
    assert evaluation.failing_rules == ["success-metric"]
    row = service.work_item("jira", "KAN-40")
    assert row.source_updated_at == datetime(2026, 11, 21, 10, 2, 47, 90000, tzinfo=UTC)
    details = service.page("/items/jira/KAN-40")
    assert "No success metric found." in details and "No hypothesis found." not in details


def test_delivery_received_before_the_items_last_fetch_is_skipped_without_a_fetch(
    service: Service, jira: FakeJira
) -> None:
    jira.put_issue(e2e_json("jira_api_KAN-40.problem_only.json"))
    body = e2e_bytes("jira_webhook_epic_updated_description.json")
    accepted(service.post_jira(body, delivery_id="earlier"))
    accepted(service.post_jira(body, delivery_id="later"))
    earlier, later = service.deliveries()
    assert (earlier.delivery_id, later.delivery_id) == ("earlier", "later")

    # The later delivery happens to be worked first; its fetch already saw the earlier change.
    assert process_delivery(service.runtime, later.id) == "done"
    service.work()

    assert {d.delivery_id: d.state for d in service.deliveries()} == {
        "earlier": "done",
        "later": "done",
    }
    assert jira.calls("GET", "/issue/") == ["/issue/KAN-40"]
    assert len(service.evaluations("jira", "KAN-40")) == 1
    assert jira.calls("POST") == ["/issue/KAN-40/comment"]


def test_issue_link_rechecks_both_ends_by_id(service: Service, jira: FakeJira) -> None:
    jira.put_issue(e2e_json("jira_api_KAN-41.json"))  # id 11442, an epic
    jira.put_issue(e2e_json("jira_api_KAN-42.json"))  # id 11961, a story

    accepted(service.post_jira(shared_bytes("jira/issuelink_created.json")))
    service.work()

    assert service.states() == ["done"]
    assert jira.calls("GET", "/issue/") == ["/issue/11442", "/issue/11961"]
    assert jira.calls("POST") == ["/issue/KAN-41/comment"]
    assert "No customer problem found." in adf_text(jira.comment_bodies("KAN-41")[0])
    assert service.work_item("jira", "KAN-41").item_id == "11442"
    assert [e.status for e in service.evaluations("jira", "KAN-42")] == ["skipped"]


def test_deleted_issue_is_marked_deleted_without_a_fetch(service: Service, jira: FakeJira) -> None:
    jira.put_issue(e2e_json("jira_api_KAN-40.problem_only.json"))
    accepted(service.post_jira(e2e_bytes("jira_webhook_epic_created.json")))
    service.work()
    assert f'href="{details_path("jira", "KAN-40", JIRA_SITE)}"' in service.page("/")
    writes = jira.writes()

    accepted(service.post_jira(e2e_bytes("jira_webhook_epic_deleted.json")))
    service.work()

    assert service.states() == ["done", "done"]
    assert jira.calls("GET", "/issue/") == ["/issue/KAN-40"], "a deleted issue is not fetched"
    assert jira.writes() == writes
    assert service.work_item("jira", "KAN-40").deleted is True
    assert "deleted in the tracker" in service.page("/items/jira/KAN-40")
    assert f'href="{details_path("jira", "KAN-40", JIRA_SITE)}"' not in service.page("/")


def test_issue_deleted_by_the_services_own_account_is_still_marked_deleted(
    service: Service, jira: FakeJira
) -> None:
    # With an API token the bot is often a person's account; what that person deletes is gone.
    jira.put_issue(e2e_json("jira_api_KAN-40.problem_only.json"))
    accepted(service.post_jira(e2e_bytes("jira_webhook_epic_created.json")))
    service.work()

    accepted(service.post_jira(e2e_bytes("jira_webhook_epic_deleted_by_bot.json")))
    service.work()

    assert service.states() == ["done", "done"]
    assert service.work_item("jira", "KAN-40").deleted is True
    assert jira.calls("GET", "/issue/") == ["/issue/KAN-40"]


def test_link_and_update_of_a_new_epic_worked_at_once_post_one_card(
    service: Service, jira: FakeJira
) -> None:
    # Linking two issues sends issuelink_created (naming both ends by id) and issue_updated
    # (naming the epic by key) together; two workers may take them at the same moment.
    jira.put_issue(e2e_json("jira_api_KAN-41.json"))
    jira.put_issue(e2e_json("jira_api_KAN-42.json"))
    accepted(service.post_jira(shared_bytes("jira/issuelink_created.json")))
    accepted(service.post_jira(e2e_bytes("jira_webhook_KAN-41_link_added.json")))
    jira.hold_card_posts(timeout_s=1.5)

    with ThreadPoolExecutor(max_workers=2) as workers:
        states = list(
            workers.map(lambda d: process_delivery(service.runtime, d.id), service.deliveries())
        )

    assert states == ["done", "done"]
    assert len(jira.comment_bodies("KAN-41")) == 1
    assert jira.calls("POST") == ["/issue/KAN-41/comment"]
    card = service.card("jira", "KAN-41")
    assert card is not None and card.comment_id == "10500"


def test_rate_limited_fetch_is_retried_after_retry_after(service: Service, jira: FakeJira) -> None:
    jira.put_issue(e2e_json("jira_api_KAN-40.problem_only.json"))
    jira.fail("GET", r"^/issue/KAN-40$", 429, headers={"Retry-After": "120"})
    accepted(service.post_jira(e2e_bytes("jira_webhook_epic_created.json")))
    service.work()

    [delivery] = service.deliveries()
    assert (delivery.state, delivery.attempts) == ("retrying", 1)
    assert delivery.last_error is not None and "429" in delivery.last_error
    assert delivery.next_attempt_at is not None
    wait = (delivery.next_attempt_at - datetime.now(UTC)).total_seconds()
    assert 110 < wait <= 120, "the retry waits as long as Jira asked"
    assert jira.comments == {}

    service.retry_due_now()

    [delivery] = service.deliveries()
    assert (delivery.state, delivery.attempts) == ("done", 2)
    assert jira.calls("GET", "/issue/") == ["/issue/KAN-40", "/issue/KAN-40"]
    assert len(jira.comment_bodies("KAN-40")) == 1


def test_tracker_outage_retries_with_backoff_then_dead_letters(
    make_service: MakeService, jira: FakeJira
) -> None:
    service = make_service(max_attempts=3)
    jira.put_issue(e2e_json("jira_api_KAN-40.problem_only.json"))
    jira.fail("GET", r"^/issue/", 503, times=None)
    accepted(service.post_jira(e2e_bytes("jira_webhook_epic_created.json")))

    waits = []
    service.work()
    for _ in range(2):
        [delivery] = service.deliveries()
        assert delivery.state == "retrying" and delivery.next_attempt_at is not None
        waits.append(round((delivery.next_attempt_at - datetime.now(UTC)).total_seconds()))
        service.retry_due_now()

    [delivery] = service.deliveries()
    assert (delivery.state, delivery.attempts, delivery.next_attempt_at) == ("dead", 3, None)
    assert delivery.last_error is not None and "503" in delivery.last_error
    assert 29 <= waits[0] <= 30 and 59 <= waits[1] <= 60, f"backoff doubles: {waits}"
    assert len(jira.calls("GET", "/issue/")) == 3
    assert jira.writes() == []
    metrics = service.client.get("/metrics").get_data(as_text=True)
    assert 'leanguard_deliveries{state="dead"} 1' in metrics
    assert 'leanguard_deliveries{state="retrying"} 0' in metrics


def test_failed_card_write_is_retried_until_the_card_is_posted(
    service: Service, jira: FakeJira
) -> None:
    jira.put_issue(e2e_json("jira_api_KAN-40.problem_only.json"))
    jira.fail("POST", r"/comment$", 503)
    accepted(service.post_jira(e2e_bytes("jira_webhook_epic_created.json")))
    service.work()
    assert service.states() == ["retrying"]
    assert jira.comments == {}

    service.retry_due_now()

    assert service.states() == ["done"]
    assert len(jira.comment_bodies("KAN-40")) == 1
    assert jira.properties["KAN-40"]["status"] == "fail"


# Jira Data Center ----------------------------------------------------------------------------


def test_data_center_uses_a_personal_access_token_api_v2_and_wiki_markup(
    make_service: MakeService, trackers: responses.RequestsMock
) -> None:
    service = make_service(jira_url=DC_SITE, jira_email="", jira_api_token=DC_TOKEN)
    dc = FakeJira(
        trackers,
        DC_SITE,
        "2",
        myself=e2e_json("jira_dc_api_myself.json"),
        fields=e2e_json("jira_dc_api_fields.json"),
    )
    dc.put_issue(e2e_json("jira_dc_api_TEST-11.json"))

    accepted(service.post_jira(shared_bytes("jira/server_jira_issue_updated_status.json")))
    service.work()

    assert service.states() == ["done"]
    assert dc.unexpected == []
    assert dc.authorizations == {f"Bearer {DC_TOKEN}"}
    assert dc.calls("GET", "/issue/") == ["/issue/TEST-11"]
    assert dc.calls("POST") == ["/issue/TEST-11/comment"]
    [card] = dc.comment_bodies("TEST-11")
    assert isinstance(card, str), "Data Center comments are wiki markup"
    assert card.startswith("*leanguard: 2 outcome checks failing (2 errors)*")
    assert "* (x) *No success metric found.*" in card
    assert f"[See details|{BASE_URL}{details_path('jira', 'TEST-11', DC_SITE)}]" in card
    assert dc.properties["TEST-11"]["failing"] == ["success-metric", "customer-problem"]
    assert "No customer problem found." in service.page("/items/jira/TEST-11")


# Linear --------------------------------------------------------------------------------------


def test_linear_epic_issue_create_fetches_it_and_posts_one_markdown_card(
    service: Service, linear: FakeLinear
) -> None:
    linear.put_issue("linear_api_issue_WEB-45.json")

    accepted(service.post_linear(e2e_bytes("linear_webhook_issue_create_epic.json")))
    assert linear.operations == []
    service.work()

    assert service.states() == ["done"]
    assert linear.names() == ["Issue", "CommentCreate"]
    assert linear.variables("Issue") == [{"id": WEB_45}]
    [created] = linear.variables("CommentCreate")
    assert created["input"]["issueId"] == WEB_45
    body = created["input"]["body"]
    assert body.startswith("**leanguard: 1 outcome check failing (1 error)**")
    assert "No customer problem found." in body
    assert f"[See details]({BASE_URL}{details_path('linear', 'WEB-45', LINEAR_ORG)})" in body
    assert "No customer problem found." in service.page("/items/linear/WEB-45")


def test_linear_issue_that_is_not_an_epic_gets_no_card(
    service: Service, linear: FakeLinear
) -> None:
    linear.put_issue("linear_api_issue_WEB-44.json")

    accepted(service.post_linear(shared_bytes("linear/01_issue_create_with_labels.json")))
    service.work()
    accepted(service.post_linear(shared_bytes("linear/02_issue_update_updatedFrom.json")))
    service.work()

    assert service.states() == ["done", "done"]
    assert linear.names() == ["Issue", "Issue"]
    assert linear.variables("Issue") == [{"id": WEB_44}, {"id": WEB_44}]
    assert linear.comments == {}
    assert [e.status for e in service.evaluations("linear", "WEB-44")] == ["skipped", "skipped"]
    assert "No rule applies to this issue." in service.page("/items/linear/WEB-44")


def test_linear_project_create_fetches_the_project_and_comments_on_it(
    service: Service, linear: FakeLinear
) -> None:
    linear.put_project("linear_api_project_zulip.json")

    accepted(service.post_linear(shared_bytes("linear/05_project_create.json")))
    service.work()

    assert service.states() == ["done"]
    assert linear.names() == ["Project", "CommentCreate"]
    assert linear.variables("Project") == [{"id": ZULIP_PROJECT}]
    [created] = linear.variables("CommentCreate")
    assert created["input"]["projectId"] == ZULIP_PROJECT
    assert "issueId" not in created["input"]
    assert "3 outcome checks failing" in created["input"]["body"]
    details = service.page("/items/linear/532c1333013b")
    assert "Zulip-Project" in details and "No hypothesis found." in details


def test_linear_comment_webhook_is_ignored(service: Service, linear: FakeLinear) -> None:
    response = service.post_linear(shared_bytes("linear/07_comment_create_issue.json"))
    service.work()

    assert response.status_code == 200
    assert response.get_json()["status"] == "ignored"
    assert service.states() == ["ignored"]
    assert linear.operations == []


def test_linear_customer_need_rechecks_the_linked_issue(
    service: Service, linear: FakeLinear
) -> None:
    linear.put_issue("linear_api_issue_WEB-45.json")
    accepted(service.post_linear(e2e_bytes("linear_webhook_issue_create_epic.json")))
    service.work()
    [comment_id] = linear.comments

    # A customer request is linked to the epic: that is its customer problem.
    linear.put_issue("linear_api_issue_WEB-45.with_need.json")
    accepted(service.post_linear(e2e_bytes("linear_webhook_customer_need_create.json")))
    service.work()

    assert service.states() == ["done", "done"]
    assert linear.names() == ["Issue", "CommentCreate", "Issue", "CommentUpdate"]
    assert linear.variables("Issue")[1] == {"id": WEB_45}
    [updated] = linear.variables("CommentUpdate")
    assert updated["id"] == comment_id
    assert "all outcome checks pass" in updated["input"]["body"]
    assert [e.status for e in service.evaluations("linear", "WEB-45")] == ["fail", "pass"]


# The webhook edge through the whole app ------------------------------------------------------


def test_refused_webhooks_get_their_4xx_as_json_and_store_nothing(
    make_service: MakeService, jira: FakeJira, linear: FakeLinear
) -> None:
    service = make_service()
    jira_body = e2e_bytes("jira_webhook_epic_created.json")
    linear_body = e2e_bytes("linear_webhook_issue_create_epic.json")
    not_json = b"<xml>not json</xml>"
    no_event = json.dumps({"timestamp": 1795192803512, "issue": {"key": "KAN-40"}}).encode()
    no_data = {"type": "Issue", "action": "create", "organizationId": "org"}
    huge = b'{"webhookEvent": "jira:issue_updated", "pad": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    client = service.client

    answers = {
        "jira bad signature": service.post_jira(jira_body, secret="not-the-secret"),
        "linear bad signature": service.post_linear(linear_body, secret="not-the-secret"),
        "linear stale timestamp": service.post_linear(linear_body, sent_at_ms=now_ms() - 120_000),
        "jira not JSON": service.post_jira(not_json),
        "linear not JSON": client.post(
            "/webhooks/linear",
            data=not_json,
            headers={"Linear-Signature": linear_signature(LINEAR_SECRET, not_json)},
        ),
        "jira wrong shape": service.post_jira(no_event),
        "linear wrong shape": service.post_linear(json.dumps(no_data).encode()),
        "jira too large": service.post_jira(huge, signature="sha256=" + "0" * 64),
        "GET jira": client.get("/webhooks/jira"),
        "GET linear": client.get("/webhooks/linear"),
    }
    unconfigured = make_service(jira_webhook_secret="", linear_webhook_secret="")
    answers["jira without a secret"] = unconfigured.post_jira(jira_body)
    answers["linear without a secret"] = unconfigured.post_linear(linear_body)

    expected = {
        "jira bad signature": (401, "bad_signature"),
        "linear bad signature": (401, "bad_signature"),
        "linear stale timestamp": (401, "stale_timestamp"),
        "jira not JSON": (400, "bad_payload"),
        "linear not JSON": (400, "bad_payload"),
        "jira wrong shape": (400, "bad_payload"),
        "linear wrong shape": (400, "bad_payload"),
        "jira too large": (413, "payload_too_large"),
        "GET jira": (405, "method_not_allowed"),
        "GET linear": (405, "method_not_allowed"),
        "jira without a secret": (404, "not_configured"),
        "linear without a secret": (404, "not_configured"),
    }
    got = {}
    for case, response in answers.items():
        body = response.get_json(silent=True) or {}
        assert isinstance(body.get("message"), str) and body["message"], (case, body)
        got[case] = (response.status_code, body.get("code"))
    assert got == expected
    assert "POST" in answers["GET jira"].headers["Allow"].split(", ")

    service.work()
    assert service.deliveries() == []
    assert jira.requests == [] and linear.operations == []
