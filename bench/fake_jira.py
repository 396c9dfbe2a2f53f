"""A local stand-in for Jira's REST API that answers at once and records when cards arrive.

It serves what the worker reads (``/myself``, ``/field``, ``/issue/{key}``) from the fixtures
and accepts what it writes (comments, the status property, labels). Every comment POST or PUT
is stamped with ``time.monotonic()`` on arrival, per issue key, so a benchmark in the same
process can measure from webhook to card.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.payloads import for_item, key_number, load, wire_text

_API = r"/rest/api/(?P<v>[23])"
_KEY = r"(?P<key>[A-Z][A-Z0-9_]*-[0-9]+)"
_ROUTES: tuple[tuple[str, str, re.Pattern[str]], ...] = tuple(
    (method, name, re.compile(_API + pattern + "$"))
    for method, name, pattern in (
        ("GET", "myself", "/myself"),
        ("GET", "field", "/field"),
        ("GET", "issue", f"/issue/{_KEY}"),
        ("PUT", "labels", f"/issue/{_KEY}"),
        ("POST", "comment-create", f"/issue/{_KEY}/comment"),
        ("PUT", "comment-edit", f"/issue/{_KEY}/comment/(?P<comment>[0-9]+)"),
        ("DELETE", "comment-delete", f"/issue/{_KEY}/comment/(?P<comment>[0-9]+)"),
        ("PUT", "property", f"/issue/{_KEY}/properties/(?P<prop>[A-Za-z0-9_.-]+)"),
    )
)


class FakeJira:
    """A threaded HTTP server on 127.0.0.1 that plays a Jira Data Center (v2) or Cloud (v3) site."""

    def __init__(self) -> None:
        self.issues = {
            "2": wire_text("jira_epic_failing_v2.json"),
            "3": wire_text("jira_epic_v3.json"),
        }
        self.fields = json.dumps(load("jira_fields.json")).encode("utf-8")
        self.myself = json.dumps(load("jira_myself.json")).encode("utf-8")
        self.requests: Counter[str] = Counter()
        self.comment_times: dict[str, list[float]] = {}
        self.fetch_times: dict[str, list[float]] = {}
        self._comment_ids = itertools.count(50_001)
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The site's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-jira", kwargs={"poll_interval": 0.1}
        )
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()

    def first_comment(self, key: str) -> float | None:
        """Return when the first card arrived for ``key``, if it has."""
        with self._lock:
            times = self.comment_times.get(key)
            return times[0] if times else None

    def first_fetch(self, key: str) -> float | None:
        """Return when the worker first read ``key``, if it has."""
        with self._lock:
            times = self.fetch_times.get(key)
            return times[0] if times else None

    def wait_for_cards(self, keys: set[str], timeout_s: float) -> set[str]:
        """Wait until every key has a card or the time is up; return the keys still without."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while True:
                missing = {key for key in keys if key not in self.comment_times}
                remaining = deadline - time.monotonic()
                if not missing or remaining <= 0:
                    return missing
                self._arrived.wait(min(remaining, 0.5))

    def record(self, route: str, key: str | None, arrived: float) -> None:
        """Count a request; stamp card writes and issue reads by key."""
        with self._arrived:
            self.requests[route] += 1
            if key is None:
                return
            if route in ("comment-create", "comment-edit"):
                self.comment_times.setdefault(key, []).append(arrived)
                self._arrived.notify_all()
            elif route == "issue":
                self.fetch_times.setdefault(key, []).append(arrived)

    def answer(self, method: str, path: str) -> tuple[str, str | None, int, bytes]:
        """Route one request: return the route name, the issue key, the status and the body."""
        for route_method, name, pattern in _ROUTES:
            match = pattern.match(path)
            if route_method != method or match is None:
                continue
            parts = match.groupdict()
            key = parts.get("key")
            return (name, key, *self._respond(name, parts))
        return "unknown", None, 404, _errors(f"No route for {method} {path}")

    def _respond(self, name: str, parts: dict[str, Any]) -> tuple[int, bytes]:
        version, key = parts["v"], parts.get("key")
        if name == "myself":
            return 200, self.myself
        if name == "field":
            return 200, self.fields
        number = key_number(key) if key else None
        if key is not None and number is None:
            return 404, _errors("Issue does not exist or you do not have permission to see it.")
        if name == "issue" and number is not None:
            return 200, for_item(self.issues[version], number).encode("utf-8")
        if name == "comment-create":
            comment_id = str(next(self._comment_ids))
            return 201, json.dumps({"id": comment_id, "self": f"/comment/{comment_id}"}).encode()
        if name == "comment-edit":
            comment_id = str(parts["comment"])
            return 200, json.dumps({"id": comment_id, "self": f"/comment/{comment_id}"}).encode()
        if name == "property":
            return 201, b""
        return 204, b""


def _errors(message: str) -> bytes:
    return json.dumps({"errorMessages": [message], "errors": {}}).encode("utf-8")


def _handler_for(jira: FakeJira) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "FakeJira/1.0"
        # Headers and body leave in two writes; with Nagle's algorithm on, the body would wait
        # for the client's delayed ACK (40 ms on Linux), a stall no real Jira has.
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
            arrived = time.monotonic()
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            path = self.path.split("?", 1)[0]
            route, key, status, body = jira.answer(self.command, path)
            jira.record(route, key, arrived)
            self.send_response(status)
            if body:
                self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet: the benchmark prints its own summary."""

    return Handler
