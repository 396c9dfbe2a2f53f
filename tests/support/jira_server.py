"""A Jira Data Center site over real HTTP on 127.0.0.1, for tests that run leanguard in processes.

``responses`` only fakes calls made in the test's own process; web processes and rq workers
started by a test need a site on a socket. This one serves what the worker reads (``/myself``,
``/field``, ``GET /issue/{key}``, the comment list) and accepts what it writes (comments, the
status property, labels), keeps every issue's comments, and counts card POSTs per issue. Every
request is checked against Jira's contract (``support.contracts``); a request that breaks it is
answered 400 and recorded in :attr:`JiraServer.violations`.

Faults are scripted per request: an error status with headers, a reset connection, a reply
slower than the client waits, or a hold until the test lets go; ``after_write`` applies the
fault after the write took effect, the way a real Jira can store a comment and then fail to
answer.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from support.contracts import assert_jira_request_valid

E2E = Path(__file__).resolve().parents[1] / "plugin" / "fixtures" / "e2e"
BOT_KEY = "JIRAUSER10100"
PROJECT = "TEST"

PROBLEM = (
    "h2. Problem statement\nAdmins of large accounts cannot export their data without opening "
    "a support ticket, which costs them two days each quarter."
)
HYPOTHESIS = (
    "h2. Hypothesis\nWe believe that a self-serve nightly export will result in fewer support "
    "tickets about data dumps; we will know when export tickets drop by half."
)
METRIC = "h2. Success metric\nExport tickets per month fall from 40 to 10 by 2026-09-30."

VERSIONS: dict[str, str] = {
    "problem-only": PROBLEM,
    "no-metric": f"{PROBLEM}\n\n{HYPOTHESIS}",
    "complete": f"{PROBLEM}\n\n{HYPOTHESIS}\n\n{METRIC}",
}
"""Descriptions an epic can have, by name."""
HEADLINES: dict[str, str] = {
    "problem-only": "leanguard: 2 outcome checks failing (2 errors)",
    "no-metric": "leanguard: 1 outcome check failing (1 error)",
    "complete": "leanguard: all outcome checks pass",
}
"""The first line of the card each version must end up showing."""

_ROUTE = re.compile(
    r"^/rest/api/2/(?:(?P<root>myself|field)"
    r"|issue/(?P<key>[A-Z][A-Z0-9_]*-[0-9]+)"
    r"(?:/(?P<sub>comment|properties)(?:/(?P<name>[A-Za-z0-9_.-]+))?)?)$"
)
_T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


@dataclass
class Fault:
    """How to answer the next ``times`` requests whose method and path match."""

    method: str
    path: re.Pattern[str]
    status: int = 0
    """An error status to answer with (0: answer normally, after the action)."""
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False
    """Drop the connection with a TCP reset instead of answering."""
    delay_s: float = 0.0
    """Wait this long before answering (longer than the client waits: a timeout)."""
    hold: threading.Event | None = None
    """Wait until the test sets this event before answering."""
    after_write: bool = False
    """Apply the write first (the comment exists), then fail."""
    times: int = 1
    arrived: threading.Event = field(default_factory=threading.Event)
    """Set when a request met this fault."""


@dataclass
class Comment:
    """A comment on an issue."""

    id: str
    issue: str
    author: str
    body: str
    created: str


class JiraServer:
    """A threaded HTTP server that plays a Jira Data Center site (REST API v2)."""

    def __init__(self, *, jitter_s: tuple[float, float] = (0.0, 0.0), seed: int = 7) -> None:
        self.jitter_s = jitter_s
        self._random = random.Random(seed)
        self._template = json.loads((E2E / "jira_dc_api_TEST-11.json").read_text())
        self._fields = (E2E / "jira_dc_api_fields.json").read_bytes()
        myself = json.loads((E2E / "jira_dc_api_myself.json").read_text())
        self.bot_key = str(myself.get("key") or BOT_KEY)
        self._myself = json.dumps(myself).encode()
        self._lock = threading.Lock()
        self._updates = itertools.count(1)
        self._comment_ids = itertools.count(40_001)
        self.issues: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, str] = {}
        self.comments: dict[str, Comment] = {}
        self.posts: Counter[str] = Counter()
        """Card POSTs per issue key."""
        self.last_card: dict[str, str] = {}
        """The body of the last comment POST or PUT per issue key."""
        self.properties: dict[str, Any] = {}
        self.requests: Counter[tuple[str, str]] = Counter()
        """Requests by (method, route)."""
        self.violations: list[str] = []
        self.faults: list[Fault] = []
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The site's base URL."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> JiraServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="jira-server", kwargs={"poll_interval": 0.1}
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Let held requests go, stop serving and close the socket."""
        for fault in self.faults:
            if fault.hold is not None:
                fault.hold.set()
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(5)
        self._server.server_close()

    def put_issue(self, key: str, version: str) -> None:
        """Make ``key`` an epic with description ``version``, saved now (``updated`` grows)."""
        number = int(key.rpartition("-")[2])
        with self._lock:
            issue = json.loads(json.dumps(self._template))
            stamp = _T0 + timedelta(milliseconds=next(self._updates))
            issue["id"] = str(100_000 + number)
            issue["key"] = key
            issue["self"] = f"{self.url}/rest/api/2/issue/{issue['id']}"
            issue["fields"]["summary"] = f"Self-serve export {number}"
            issue["fields"]["description"] = VERSIONS[version]
            issue["fields"]["updated"] = stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
            self.issues[key] = issue
            self.versions[key] = version

    def fail(self, method: str, path: str, **options: Any) -> Fault:
        """Script a fault for requests matching ``method`` and the ``path`` pattern."""
        fault = Fault(method, re.compile(path), **options)
        with self._lock:
            self.faults.append(fault)
        return fault

    def cards(self, key: str) -> list[Comment]:
        """The bot's comments on an issue, oldest first."""
        with self._lock:
            return [
                c for c in self.comments.values() if c.issue == key and c.author == self.bot_key
            ]

    def total_requests(self) -> int:
        """How many requests the site answered (or dropped)."""
        with self._lock:
            return sum(self.requests.values())

    # Serving.

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Answer one request (called by the handler threads)."""
        url = urlsplit(target)
        match = _ROUTE.match(url.path)
        route = _route_name(method, match)
        with self._lock:
            self.requests[(method, route)] += 1
            fault = self._fault(method, url.path)
        problem = self._contract_problem(method, target, headers, body)
        if problem:
            with self._lock:
                self.violations.append(problem)
            return Reply(400, _errors(problem))
        if self.jitter_s[1] > 0:
            time.sleep(self._random.uniform(*self.jitter_s))
        if fault is not None and not fault.after_write:
            return self._faulted(fault, None)
        reply = self._answer(method, match, parse_qs(url.query), body)
        return self._faulted(fault, reply) if fault is not None else reply

    def _fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.method == method and fault.path.search(path):
                fault.times -= 1
                return fault
        return None

    def _faulted(self, fault: Fault, written: Reply | None) -> Reply:
        fault.arrived.set()
        if fault.hold is not None:
            fault.hold.wait(60)
        if fault.delay_s:
            time.sleep(fault.delay_s)
        if fault.reset:
            return Reply(0, b"", reset=True)
        if fault.status:
            return Reply(fault.status, _errors("Try again later."), dict(fault.headers))
        return written or Reply(500, _errors("fault without an answer"))

    def _contract_problem(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> str:
        prepared = requests.Request(
            method, self.url + target, headers=dict(headers), data=body or None
        ).prepare()
        try:
            assert_jira_request_valid(prepared)
        except AssertionError as exc:
            return f"{method} {target}: {exc}"
        return ""

    def _answer(
        self, method: str, match: re.Match[str] | None, query: dict[str, list[str]], raw: bytes
    ) -> Reply:
        if match is None:
            return Reply(404, _errors("No such resource."))
        root, key, sub, name = match.group("root", "key", "sub", "name")
        if method == "GET" and root == "myself":
            return Reply(200, self._myself)
        if method == "GET" and root == "field":
            return Reply(200, self._fields)
        body = json.loads(raw) if raw else None
        with self._lock:
            issue = self.issues.get(key or "")
            if issue is None:
                return Reply(404, _errors("Issue does not exist or you do not have permission."))
            if method == "GET" and sub is None:
                return Reply(200, json.dumps(issue).encode())
            if method == "PUT" and sub is None:
                return Reply(204, b"")
            if sub == "comment" and name is None:
                if method == "POST":
                    return self._post_comment(str(key), body)
                if method == "GET":
                    return self._list_comments(str(key), query)
            if sub == "comment" and name is not None:
                return self._change_comment(method, str(key), name, body)
            if method == "PUT" and sub == "properties":
                created = key not in self.properties
                self.properties[str(key)] = body
                return Reply(201 if created else 200, b"")
        return Reply(405, _errors(f"{method} is not allowed here."))

    def _post_comment(self, key: str, body: Any) -> Reply:
        comment_id = str(next(self._comment_ids))
        self.comments[comment_id] = Comment(
            comment_id, key, self.bot_key, str(body["body"]), _now_text()
        )
        self.posts[key] += 1
        self.last_card[key] = str(body["body"])
        return Reply(201, json.dumps(self._comment_json(self.comments[comment_id])).encode())

    def _list_comments(self, key: str, query: dict[str, list[str]]) -> Reply:
        start = int((query.get("startAt") or ["0"])[0])
        size = int((query.get("maxResults") or ["50"])[0])
        mine = [c for c in self.comments.values() if c.issue == key]
        page = mine[start : start + size]
        answer = {
            "startAt": start,
            "maxResults": size,
            "total": len(mine),
            "comments": [self._comment_json(c) for c in page],
        }
        return Reply(200, json.dumps(answer).encode())

    def _change_comment(self, method: str, key: str, comment_id: str, body: Any) -> Reply:
        comment = self.comments.get(comment_id)
        if comment is None or comment.issue != key:
            return Reply(404, _errors(f"Can not find a comment for the id: {comment_id}."))
        if method == "PUT":
            comment.body = str(body["body"])
            self.last_card[key] = comment.body
            return Reply(200, json.dumps(self._comment_json(comment)).encode())
        if method == "DELETE":
            del self.comments[comment_id]
            return Reply(204, b"")
        return Reply(405, _errors(f"{method} is not allowed here."))

    def _comment_json(self, comment: Comment) -> dict[str, Any]:
        author = {"key": comment.author, "name": "leanguard", "displayName": "leanguard"}
        return {
            "self": f"{self.url}/rest/api/2/issue/{comment.issue}/comment/{comment.id}",
            "id": comment.id,
            "author": author,
            "updateAuthor": author,
            "body": comment.body,
            "created": comment.created,
            "updated": comment.created,
        }


class _QuietServer(ThreadingHTTPServer):
    """A server that does not print the broken pipes of clients that gave up waiting."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore a client that went away; the tests look at what the site recorded."""


@dataclass
class Reply:
    """What the handler sends back."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False


def _route_name(method: str, match: re.Match[str] | None) -> str:
    if match is None:
        return "unknown"
    root, sub, name = match.group("root", "sub", "name")
    if root:
        return str(root)
    if sub is None:
        return "issue"
    return f"issue/{sub}" + ("/{id}" if name and sub == "comment" else "")


def _errors(message: str) -> bytes:
    return json.dumps({"errorMessages": [message], "errors": {}}).encode()


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def _handler_for(site: JiraServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "FakeJiraDC/1.0"
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_PUT(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            reply = site.handle(self.command, self.path, dict(self.headers.items()), body)
            if reply.reset:
                # SO_LINGER with a zero timeout turns close() into a TCP reset.
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                return
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.body:
                self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet; the site counts requests itself."""

    return Handler


SHARED = Path(
    os.environ.get("LEANGUARD_SHARED_DIR") or Path(__file__).resolve().parents[3] / "shared"
)
_WEBHOOK = json.loads(
    (SHARED / "fixtures/jira/server_jira_issue_updated_status.json").read_text(encoding="utf-8")
)


def webhook_body(site: JiraServer, key: str) -> bytes:
    """A Data Center ``jira:issue_updated`` webhook (a real capture) about issue ``key``."""
    payload = json.loads(json.dumps(_WEBHOOK))
    issue = site.issues[key]
    payload["timestamp"] = int(time.time() * 1000)
    payload["issue"]["id"] = issue["id"]
    payload["issue"]["key"] = key
    payload["issue"]["self"] = issue["self"]
    payload["issue"]["fields"]["description"] = issue["fields"]["description"]
    return json.dumps(payload).encode()


def hub_signature(secret: str, body: bytes) -> str:
    """Sign a body the way a Jira admin webhook does."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
