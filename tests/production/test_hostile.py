"""Hostile input: fuzzed webhooks, the API under schemathesis, every route without credentials,
secrets kept out of the logs, and Connect sites limited to the allowed hosts.

Everything runs against the whole application (``create_app`` on a SQLite file), so a request
goes through the same routing, error handlers, inbox and database as in production.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import responses
import schemathesis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks
from sqlalchemy import select
from support.jira_server import SHARED, JiraServer, hub_signature, webhook_body
from support.strategies import json_values
from werkzeug.test import TestResponse

from plugin.app import QUEUE_EXTENSION, RUNTIME_EXTENSION, create_app
from plugin.connect.jwt import query_string_hash
from plugin.logs import JsonFormatter
from plugin.queue import InProcessQueue
from plugin.runtime import Runtime
from plugin.settings import Settings
from plugin.storage import Tenant
from webhooks.views import MAX_BODY_BYTES

BASE_URL = "https://leanguard.example.com"
ADMIN_TOKEN = "hostile-admin-token-Vb7Qe1"
SECRETS = {
    "secret_key": "hostile-secret-key-Lk2Xw9Zr4",
    "jira_api_token": "hostile-jira-token-Pq8Mn3Ty6",
    "jira_webhook_secret": "hostile-jira-hook-Dd5Fg7Hh",
    "linear_api_key": "lin_api_hostileLinearKey0123456789",
    "linear_webhook_secret": "hostile-linear-hook-Ss1Aa2Qq",
    "admin_token": ADMIN_TOKEN,
}
JIRA_EMAIL = "leanguard-bot@example.com"
KEYS_URL = "https://install-keys.example.test"
KID = "7f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"

JIRA_CAPTURE = (SHARED / "fixtures/jira/server_jira_issue_updated_status.json").read_bytes()
LINEAR_CAPTURE = (SHARED / "fixtures/linear/02_issue_update_updatedFrom.json").read_bytes()


def build_app(instance: Path, **settings: Any) -> Flask:
    """The whole service on a SQLite file; the worker is not started."""
    values: dict[str, Any] = {"instance_path": str(instance), "base_url": BASE_URL, **settings}
    return create_app(Settings(**values), start_worker=False)


# The API under schemathesis ----------------------------------------------------------------
# schemathesis parametrizes at collection, so this app is built at import, in a folder that
# goes away with the test process.
_API_INSTANCE = tempfile.TemporaryDirectory(prefix="leanguard-api-")
_API_APP = build_app(
    Path(_API_INSTANCE.name), admin_token=ADMIN_TOKEN, secret_key=SECRETS["secret_key"]
)
API = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", _API_APP)
API_CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.mark.production
@API.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_answers_every_generated_request_without_a_5xx_and_as_documented(
    case: schemathesis.Case,
) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, checks=API_CHECKS)


@pytest.mark.production
def test_an_id_no_row_can_have_is_404_on_every_route(tmp_path: Path) -> None:
    # Werkzeug's <int:...> takes any number of digits; the database refuses the number (out of
    # range for INTEGER), which used to end in a 500.
    app = build_app(tmp_path, admin_token=ADMIN_TOKEN, secret_key=SECRETS["secret_key"])
    client = app.test_client()
    numbered = [
        (method, rule) for method, rule, _ in routes(app) if "<int:" in rule and method == "GET"
    ]
    assert numbered, "no route takes a number any more: drop this test"
    for method, rule in numbered:
        for number in (2**31, 10**30):
            url = re.sub(r"<int:\w+>", str(number), rule)
            url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: PARTS.get(m.group(1), "x"), url)
            response = client.open(
                url, method=method, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            )
            assert response.status_code == 404, (url, response.status_code)


# Fuzzed webhooks -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def webhook_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    return build_app(
        tmp_path_factory.mktemp("webhooks"),
        secret_key=SECRETS["secret_key"],
        jira_webhook_secret=SECRETS["jira_webhook_secret"],
        linear_webhook_secret=SECRETS["linear_webhook_secret"],
    )


@st.composite
def mutated(draw: st.DrawFn, capture: bytes) -> bytes:
    """A real payload with a few keys, at any depth, replaced by arbitrary JSON or dropped."""
    payload = json.loads(capture)
    for _ in range(draw(st.integers(1, 4))):
        target = payload
        while draw(st.booleans()):
            nested = sorted(k for k, v in target.items() if isinstance(v, dict) and v)
            if not nested:
                break
            target = target[draw(st.sampled_from(nested))]
        key = draw(st.sampled_from(sorted(target)))
        if draw(st.booleans()):
            del target[key]
        else:
            target[key] = draw(json_values())
        if not target:
            break
    payload["webhookTimestamp"] = int(time.time() * 1000)
    return json.dumps(payload).encode()


BODIES = st.one_of(
    st.binary(max_size=512),
    st.text(max_size=256).map(str.encode),
    json_values().map(lambda value: json.dumps(value).encode()),
    mutated(JIRA_CAPTURE),
    mutated(LINEAR_CAPTURE),
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-16",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=----x",
        "application/octet-stream",
        "",
        "application/json; boundary=\x7f",
    ]
)
HEADER_VALUES = st.one_of(
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=64),
    st.integers(256, 64 * 1024).map(lambda n: "x" * n),
)


@st.composite
def webhook_requests(draw: st.DrawFn, tracker: str) -> tuple[bytes, dict[str, str]]:
    """A body and headers: signed or not, with odd content types and oversized headers."""
    body = draw(BODIES)
    headers = {"Content-Type": draw(CONTENT_TYPES)}
    for name in draw(
        st.lists(
            st.sampled_from(
                [
                    "X-Atlassian-Webhook-Identifier",
                    "Linear-Delivery",
                    "Linear-Event",
                    "User-Agent",
                    "X-Forwarded-For",
                    "Authorization",
                    "X-Padding",
                ]
            ),
            max_size=4,
        )
    ):
        headers[name] = draw(HEADER_VALUES)
    signing = draw(st.sampled_from(["signed", "unsigned", "garbage"]))
    if tracker == "jira":
        if signing == "signed":
            headers["X-Hub-Signature"] = hub_signature(SECRETS["jira_webhook_secret"], body)
        elif signing == "garbage":
            headers["X-Hub-Signature"] = draw(HEADER_VALUES)
    elif signing == "signed":
        secret = SECRETS["linear_webhook_secret"].encode()
        headers["Linear-Signature"] = hmac.new(secret, body, hashlib.sha256).hexdigest()
    elif signing == "garbage":
        headers["Linear-Signature"] = draw(HEADER_VALUES)
    return body, headers


def assert_refused_or_taken(response: TestResponse) -> None:
    """Never a 5xx; every refusal is the JSON error shape."""
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    if response.status_code >= 400:
        error = response.get_json(silent=True)
        assert isinstance(error, dict) and {"code", "message"} <= set(error), error


@pytest.mark.production
@pytest.mark.parametrize("tracker", ["jira", "linear"])
@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_webhook_request_is_answered_without_a_5xx(
    webhook_app: Flask, tracker: str, data: st.DataObject
) -> None:
    body, headers = data.draw(webhook_requests(tracker))
    response = webhook_app.test_client().post(f"/webhooks/{tracker}", data=body, headers=headers)
    assert_refused_or_taken(response)


@pytest.mark.production
@pytest.mark.parametrize("tracker", ["jira", "linear"])
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_a_body_over_the_limit_is_413(
    webhook_app: Flask, tracker: str, declared: bool, signed: bool
) -> None:
    body = b"{" + b" " * MAX_BODY_BYTES + b"}"
    headers = {"Content-Type": "application/json"}
    if signed and tracker == "jira":
        headers["X-Hub-Signature"] = hub_signature(SECRETS["jira_webhook_secret"], body)
    elif signed:
        secret = SECRETS["linear_webhook_secret"].encode()
        headers["Linear-Signature"] = hmac.new(secret, body, hashlib.sha256).hexdigest()
    client = webhook_app.test_client()
    if declared:
        response = client.post(f"/webhooks/{tracker}", data=body, headers=headers)
    else:
        # As gunicorn hands over a chunked body: no length, a stream it ends itself.
        environ = {
            "wsgi.input": io.BytesIO(body),
            "wsgi.input_terminated": True,
            "HTTP_TRANSFER_ENCODING": "chunked",
        }
        response = client.post(f"/webhooks/{tracker}", headers=headers, environ_overrides=environ)
    assert response.status_code == 413
    assert response.get_json()["code"] == "payload_too_large"


# Every route without credentials ---------------------------------------------------------------

PUBLIC = {
    ("GET", "/"): "what leanguard is, the connected trackers and the latest results",
    ("GET", "/setup"): "how to connect a tracker",
    ("GET", "/healthz"): "liveness probe",
    ("GET", "/readyz"): "readiness probe",
    ("GET", "/metrics"): "Prometheus scrape",
    ("GET", "/api/v1/openapi.json"): "describes the API, reveals no data",
    ("GET", "/atlassian-connect.json"): "the Connect descriptor Jira installs from",
    ("GET", "/connect/icon.svg"): "the Connect module's icon",
    ("GET", "/items/<tracker>/<path:key>"): "the details page every card links to",
    ("GET", "/static/<path:filename>"): "style sheets",
    ("GET", "/admin/login"): "the admin login form",
    ("POST", "/admin/login"): "logging in is how credentials are given",
    ("POST", "/admin/logout"): "ends a session; refuses a request without its CSRF token",
    # The health report is read like the home page and the item pages it links to; starting
    # a backfill from it is not public.
    ("GET", "/reports"): "the health report",
    ("GET", "/reports/<tracker>/<project>"): "a project's health report",
    ("GET", "/reports/<tracker>/<project>/health.csv"): "a project's health report as CSV",
    ("GET", "/reports/health.csv"): "the health report as CSV",
}
"""Routes that answer without credentials, each with the reason it may."""
PARTS = {"tracker": "jira", "project": "PAY", "key": "PAY-1", "filename": "leanguard.css"}


def routes(app: Flask) -> Iterator[tuple[str, str, str]]:
    """Every (method, rule, URL) of the app, with sample values in the URL's variables."""
    for rule in app.url_map.iter_rules():
        url = re.sub(
            r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>",
            lambda m: "7" if m.group(1) == "int" else PARTS.get(m.group(2), "x"),
            rule.rule,
        )
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield method, rule.rule, url


def refused(method: str, url: str, response: TestResponse) -> bool:
    """Tell whether a request without credentials was refused as the route's kind should."""
    if url.startswith("/admin") and method == "GET":
        location = response.headers.get("Location", "")
        return response.status_code == 302 and location.startswith("/admin/login")
    if url.startswith("/api/"):
        error = response.get_json(silent=True)
        return response.status_code == 401 and isinstance(error, dict) and "code" in error
    return response.status_code in (401, 404)


def answered(method: str, rule: str, response: TestResponse) -> bool:
    """Tell whether a public route answered a caller without credentials as it should."""
    if method != "GET":
        return True  # the login form's posts refuse what they must (a wrong token, no CSRF)
    if rule == "/readyz":
        return response.status_code in (200, 503)
    if "<" in rule:
        return response.status_code in (200, 404)  # the sample item or file may not exist
    return response.status_code == 200


SECRET_SETTINGS = {
    **SECRETS,
    "jira_url": "https://acme.atlassian.net",
    "jira_email": JIRA_EMAIL,
}


@pytest.mark.production
@pytest.mark.parametrize(
    "configured", [True, False], ids=["secrets and admin token set", "nothing set"]
)
@pytest.mark.parametrize(
    "credentials",
    [{}, {"Authorization": "Bearer not-the-token"}, {"Authorization": "JWT not.a.token"}],
    ids=["none", "wrong bearer", "garbage JWT"],
)
def test_every_route_refuses_a_caller_without_credentials(
    tmp_path: Path, configured: bool, credentials: dict[str, str]
) -> None:
    app = build_app(tmp_path, **(SECRET_SETTINGS if configured else {}))
    client = app.test_client()
    seen = set()
    for method, rule, url in routes(app):
        seen.add((method, rule))
        response = client.open(url, method=method, headers=credentials)
        # /readyz tells by its status; here no worker thread runs, so it says 503.
        assert response.status_code < 500 or rule == "/readyz", (method, url, response.status_code)
        body = response.get_data(as_text=True)
        assert not [name for name, value in SECRETS.items() if value in body], (method, url)
        if (method, rule) in PUBLIC:
            assert answered(method, rule, response), (method, url, response.status_code)
            continue
        assert refused(method, url, response), (
            f"{method} {rule} answered {response.status_code} without credentials: make it "
            "refuse (401, 404, or a redirect to the login page), or list it in PUBLIC"
        )
    assert set(PUBLIC) <= seen, f"PUBLIC names routes that are gone: {set(PUBLIC) - seen}"


@pytest.mark.production
def test_public_pages_answer(tmp_path: Path) -> None:
    client = build_app(tmp_path, **SECRET_SETTINGS).test_client()
    for path in ("/", "/setup", "/healthz", "/metrics", "/api/v1/openapi.json"):
        assert client.get(path).status_code == 200, path
    assert client.get("/atlassian-connect.json").get_json()["baseUrl"] == BASE_URL


# Secrets stay out of the logs ------------------------------------------------------------------


def test_no_secret_or_signature_reaches_the_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site = JiraServer().start()
    try:
        app = build_app(
            tmp_path,
            **{**SECRETS, "jira_url": site.url, "jira_email": JIRA_EMAIL, "max_attempts": 2},
        )
        client = app.test_client()
        queue = app.extensions[QUEUE_EXTENSION]
        assert isinstance(queue, InProcessQueue)
        caplog.handler.setFormatter(JsonFormatter())
        caplog.set_level(logging.DEBUG)
        sent: list[str] = []

        def jira(body: bytes, signature: str, delivery_id: str) -> TestResponse:
            sent.append(signature)
            return client.post(
                "/webhooks/jira",
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Atlassian-Webhook-Identifier": delivery_id,
                    "X-Hub-Signature": signature,
                },
            )

        def linear(body: bytes, secret: str) -> TestResponse:
            signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            sent.append(signature)
            return client.post(
                "/webhooks/linear",
                data=body,
                headers={"Content-Type": "application/json", "Linear-Signature": signature},
            )

        hook_secret = SECRETS["jira_webhook_secret"]
        site.put_issue("TEST-1", "problem-only")
        site.put_issue("TEST-2", "problem-only")
        body = webhook_body(site, "TEST-1")
        other = webhook_body(site, "TEST-2")
        assert jira(body, hub_signature(hook_secret, body), "ok").status_code == 200
        assert jira(body, hub_signature("guessed", body), "forged").status_code == 401
        assert jira(body, f"sha256={hook_secret}", "secret-as-signature").status_code == 401
        linear_body = json.loads(LINEAR_CAPTURE)
        linear_body["webhookTimestamp"] = int(time.time() * 1000)
        raw = json.dumps(linear_body).encode()
        assert linear(raw, SECRETS["linear_webhook_secret"]).status_code == 200
        assert linear(raw, "guessed").status_code == 401
        # A job that works, one the tracker refuses, and one that crashes with a traceback.
        queue.drain()
        site.fail("GET", r"/issue/TEST-2$", status=401, times=1)
        assert jira(other, hub_signature(hook_secret, other), "refused").status_code == 200
        queue.drain()
        runtime: Runtime = app.extensions[RUNTIME_EXTENSION]

        def crash(tenant: Tenant) -> Any:
            raise RuntimeError("the client factory broke")

        runtime.client_factory = crash
        assert jira(other, hub_signature(hook_secret, other), "crash").status_code == 200
        queue.drain()
        # The API and the admin login, with the right and the wrong secrets.
        for token in ("wrong-token", ADMIN_TOKEN):
            client.get("/api/v1/rulesets", headers={"Authorization": f"Bearer {token}"})
            form = client.get("/admin/login").get_data(as_text=True)
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
            assert csrf is not None, "the login form carries a CSRF token"
            client.post("/admin/login", data={"token": token, "csrf_token": csrf.group(1)})
    finally:
        site.stop()

    logged = caplog.text
    for event in ("webhook.accepted", "webhook.rejected", "jira.request", "delivery.dead"):
        assert event in logged, f"{event} was not logged: the capture saw nothing"
    assert "delivery.crashed" in logged and "Traceback" in logged
    basic = base64.b64encode(f"{JIRA_EMAIL}:{SECRETS['jira_api_token']}".encode()).decode()
    leaked = [name for name, value in {**SECRETS, "basic auth": basic}.items() if value in logged]
    leaked += [f"signature {s[:12]}" for s in sent if s.removeprefix("sha256=") in logged]
    assert leaked == []


# Connect sites on allowed hosts only -----------------------------------------------------------


@pytest.fixture(scope="module")
def install_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def signed_install(app: Flask, key: rsa.RSAPrivateKey, base_url: str) -> tuple[TestResponse, str]:
    """Install the app on ``base_url`` with a valid signed install; return the answer and key."""
    client_key = f"hostile-{uuid.uuid4()}"
    now = int(time.time())
    token = jwt.encode(
        {
            "iss": client_key,
            "aud": BASE_URL,
            "iat": now,
            "exp": now + 180,
            "qsh": query_string_hash("POST", "/connect/installed"),
        },
        key,
        algorithm="RS256",
        headers={"kid": KID},
    )
    body = {
        "key": "leanguard",
        "clientKey": client_key,
        "sharedSecret": f"shared-{uuid.uuid4().hex}",
        "baseUrl": base_url,
        "displayUrl": base_url,
        "productType": "jira",
        "description": f"Atlassian JIRA at {base_url}",
        "eventType": "installed",
    }
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as keys:
        keys.get(f"{KEYS_URL}/{KID}", body=pem)
        answer = app.test_client().post(
            "/connect/installed", json=body, headers={"Authorization": f"JWT {token}"}
        )
    return answer, client_key


@pytest.mark.production
@pytest.mark.parametrize(
    "base_url",
    [
        "https://evil.example.com",
        "https://acme.atlassian.net.evil.example.com",
        "https://evil.example.com/.atlassian.net",
        "https://acme.atlassian.net@evil.example.com",
        "http://acme.atlassian.net",
        "https://169.254.169.254",
        "https://127.0.0.1:8080",
        "https://localhost",
        "https://acme.atlassian.net?x=.jira.com",
    ],
)
def test_a_connect_site_outside_the_allowed_hosts_cannot_install(
    tmp_path: Path, install_key: rsa.RSAPrivateKey, base_url: str
) -> None:
    app = build_app(tmp_path, secret_key=SECRETS["secret_key"], connect_install_keys_url=KEYS_URL)
    allowed, _ = signed_install(app, install_key, "https://acme.atlassian.net")
    answer, client_key = signed_install(app, install_key, base_url)

    assert allowed.status_code == 204, allowed.get_data(as_text=True)
    assert answer.status_code in (400, 403), answer.get_data(as_text=True)
    assert answer.get_json()["code"] in ("host_not_allowed", "insecure_base_url", "bad_base_url")
    runtime: Runtime = app.extensions[RUNTIME_EXTENSION]
    with runtime.database.session() as session:
        sites = list(session.scalars(select(Tenant.site).where(Tenant.client_key.is_not(None))))
        stored = session.scalars(select(Tenant).where(Tenant.client_key == client_key)).first()
    assert sites == ["https://acme.atlassian.net"]
    assert stored is None
