"""The webhook endpoints: size, configuration, signature, parse, store, answer."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, Request, Response
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from webhooks.errors import BadSignature
from webhooks.events import InboundEvent
from webhooks.views import MAX_BODY_BYTES, bp

JIRA_SECRET = "jira-secret-for-tests"
LINEAR_SECRET = "linear-secret-for-tests"
TENANT_SITE = "https://tenant.atlassian.net"
ISSUE_ID = "3443a709-f2b5-46f2-a136-a0445fd432be"
# Appears in bodies so tests can prove bodies never reach the logs.
BODY_MARKER = "body-marker-7c1e"


class MemoryInbox:
    """An in-memory Inbox: records new events, reports repeats, can be made to fail."""

    def __init__(self) -> None:
        self.events: list[InboundEvent] = []
        self.seen: set[tuple[str, str, str]] = set()
        self.down = False

    def accept(self, event: InboundEvent) -> bool:
        if self.down:
            # Like a database driver, echo the statement's parameters in the error.
            raise ConnectionError(f"could not insert {json.dumps(event.to_dict())}")
        key = (event.tracker, event.site, event.delivery_id)
        if key in self.seen:
            return False
        self.seen.add(key)
        self.events.append(event)
        return True


def connect_verifier(req: Request) -> str:
    """Accept one known Connect token and name its tenant."""
    if req.headers.get("Authorization") != "JWT good-token":
        raise BadSignature("The Connect token is not valid.")
    return TENANT_SITE


def make_app(
    inbox: MemoryInbox,
    *,
    jira_secret: str | None = JIRA_SECRET,
    linear_secret: str | None = LINEAR_SECRET,
    with_connect: bool = False,
) -> Flask:
    app = Flask(__name__)
    app.config.update(
        LEANGUARD_JIRA_WEBHOOK_SECRET=jira_secret,
        LEANGUARD_LINEAR_WEBHOOK_SECRET=linear_secret,
    )
    app.extensions["leanguard.inbox"] = inbox
    if with_connect:
        app.extensions["leanguard.connect_verifier"] = connect_verifier
    app.register_blueprint(bp)
    return app


@pytest.fixture
def inbox() -> MemoryInbox:
    return MemoryInbox()


@pytest.fixture
def client(inbox: MemoryInbox) -> FlaskClient:
    return make_app(inbox).test_client()


def hub_signature(body: bytes, secret: str = JIRA_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def linear_signature(body: bytes, secret: str = LINEAR_SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def jira_body(event_type: str = "jira:issue_updated") -> bytes:
    payload = {
        "timestamp": 1735441883659,
        "webhookEvent": event_type,
        "user": {"accountId": "u1"},
        "issue": {
            "key": "KAN-22",
            "self": "https://acme.atlassian.net/rest/api/2/issue/10021",
            "fields": {"summary": BODY_MARKER},
        },
        "comment": {"id": "1", "body": BODY_MARKER},
    }
    return json.dumps(payload).encode()


def linear_body(
    resource: str = "Issue", action: str = "update", sent_at_ms: float | None = None
) -> bytes:
    payload = {
        "action": action,
        "type": resource,
        "data": {"id": ISSUE_ID, "title": BODY_MARKER, "updatedAt": "2026-05-28T05:53:50.732Z"},
        "organizationId": "org-1",
        "webhookTimestamp": time.time() * 1000 if sent_at_ms is None else sent_at_ms,
    }
    return json.dumps(payload).encode()


def post_jira(
    client: FlaskClient, body: bytes, delivery: str | None = "jira-delivery-1", **headers: str
) -> TestResponse:
    sent = {"X-Hub-Signature": hub_signature(body), "Content-Type": "application/json"}
    if delivery is not None:
        sent["X-Atlassian-Webhook-Identifier"] = delivery
    sent.update(headers)
    return client.post("/webhooks/jira", data=body, headers=sent)


def post_linear(
    client: FlaskClient, body: bytes, delivery: str | None = "linear-delivery-1", **headers: str
) -> TestResponse:
    sent = {"Linear-Signature": linear_signature(body), "Content-Type": "application/json"}
    if delivery is not None:
        sent["Linear-Delivery"] = delivery
    sent.update(headers)
    return client.post("/webhooks/linear", data=body, headers=sent)


class CountingStream(io.RawIOBase):
    """A request body of ``size`` bytes that counts how much of it was read."""

    def __init__(self, size: int) -> None:
        self.remaining = size
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.remaining)
        buffer[:n] = b"x" * n
        self.remaining -= n
        self.bytes_read += n
        return n


class TestJira:
    def test_signed_issue_event_is_stored_then_answered_200(
        self, client: FlaskClient, inbox: MemoryInbox
    ) -> None:
        response = post_jira(client, jira_body())

        assert response.status_code == 200
        assert response.json == {"status": "accepted", "delivery_id": "jira-delivery-1"}
        [event] = inbox.events
        assert (event.tracker, event.site, event.refs[0].key) == (
            "jira",
            "https://acme.atlassian.net",
            "KAN-22",
        )

    def test_redelivery_is_answered_200_duplicate(
        self, client: FlaskClient, inbox: MemoryInbox
    ) -> None:
        post_jira(client, jira_body())
        response = post_jira(client, jira_body(), **{"X-Atlassian-Webhook-Retry": "1"})

        assert response.status_code == 200
        assert response.json == {"status": "duplicate", "delivery_id": "jira-delivery-1"}
        assert len(inbox.events) == 1

    def test_event_needing_no_work_is_stored_and_answered_204(
        self, client: FlaskClient, inbox: MemoryInbox
    ) -> None:
        response = post_jira(client, jira_body("comment_created"))

        assert response.status_code == 204
        assert response.data == b""
        assert [e.event_type for e in inbox.events] == ["comment_created"]

    def test_without_identifier_header_the_body_hash_dedupes(
        self, client: FlaskClient, inbox: MemoryInbox
    ) -> None:
        body = jira_body()
        first = post_jira(client, body, delivery=None)
        second = post_jira(client, body, delivery=None)

        expected = "sha256:" + hashlib.sha256(body).hexdigest()
        assert first.json == {"status": "accepted", "delivery_id": expected}
        assert second.json == {"status": "duplicate", "delivery_id": expected}

    @pytest.mark.parametrize(
        ("signature", "message"),
        [
            (None, "missing"),
            ("sha256=" + "0" * 64, "does not match"),
            ("sha1=" + "0" * 40, "not supported"),
            ("garbage", "not of the form"),
        ],
    )
    def test_bad_signature_is_401(
        self, client: FlaskClient, inbox: MemoryInbox, signature: str | None, message: str
    ) -> None:
        headers = {} if signature is None else {"X-Hub-Signature": signature}
        response = client.post("/webhooks/jira", data=jira_body(), headers=headers)

        assert response.status_code == 401
        assert response.json is not None
        assert response.json["code"] == "bad_signature"
        assert message in response.json["message"]
        assert inbox.events == []

    def test_body_signed_with_another_secret_is_401(self, client: FlaskClient) -> None:
        body = jira_body()
        signature = hub_signature(body, "not-the-secret")
        response = client.post("/webhooks/jira", data=body, headers={"X-Hub-Signature": signature})
        assert response.status_code == 401

    @pytest.mark.parametrize(
        "body", [b"not json", b"[]", b'{"issue": {}}', b'{"webhookEvent": "jira:issue_updated"}']
    )
    def test_signed_body_of_the_wrong_shape_is_400(
        self, client: FlaskClient, inbox: MemoryInbox, body: bytes
    ) -> None:
        response = post_jira(client, body)

        assert response.status_code == 400
        assert response.json is not None
        assert response.json["code"] == "bad_payload"
        assert inbox.events == []

    @pytest.mark.parametrize("secret", [None, ""])
    def test_without_secret_the_endpoint_is_closed_with_404(
        self, inbox: MemoryInbox, secret: str | None
    ) -> None:
        client = make_app(inbox, jira_secret=secret).test_client()
        response = post_jira(client, jira_body())

        assert response.status_code == 404
        assert response.json is not None
        assert response.json["code"] == "not_configured"
        assert "LEANGUARD_JIRA_WEBHOOK_SECRET" in response.json["message"]
        assert inbox.events == []

    def test_configuration_is_checked_before_the_signature(self, inbox: MemoryInbox) -> None:
        client = make_app(inbox, jira_secret=None).test_client()
        response = client.post("/webhooks/jira", data=b"{}", headers={"X-Hub-Signature": "x"})
        assert response.status_code == 404


class TestJiraConnect:
    def test_verified_token_sets_the_site_from_the_token(self, inbox: MemoryInbox) -> None:
        # The HMAC secret is not needed for Connect deliveries.
        client = make_app(inbox, jira_secret=None, with_connect=True).test_client()
        body = jira_body()
        response = client.post(
            "/webhooks/jira",
            data=body,
            headers={"Authorization": "JWT good-token", "X-Atlassian-Webhook-Identifier": "c1"},
        )

        assert response.status_code == 200
        [event] = inbox.events
        # The body names acme; only the verified tenant counts.
        assert event.site == TENANT_SITE

    def test_invalid_token_is_401_from_the_verifier(self, inbox: MemoryInbox) -> None:
        client = make_app(inbox, with_connect=True).test_client()
        response = client.post(
            "/webhooks/jira", data=jira_body(), headers={"Authorization": "JWT forged"}
        )

        assert response.status_code == 401
        assert response.json == {
            "code": "bad_signature",
            "message": "The Connect token is not valid.",
        }
        assert inbox.events == []

    def test_connect_webhooks_are_refused_when_no_verifier_is_registered(
        self, client: FlaskClient, inbox: MemoryInbox
    ) -> None:
        body = jira_body()
        # A valid HMAC does not open the Connect path.
        response = post_jira(client, body, Authorization="jwt some-token")

        assert response.status_code == 401
        assert response.json == {
            "code": "bad_signature",
            "message": "Connect app webhooks are not enabled.",
        }
        assert inbox.events == []


class TestLinear:
    def test_signed_fresh_issue_event_is_stored_then_answered_200(
        self, client: FlaskClient, inbox: MemoryInbox
    ) -> None:
        response = post_linear(client, linear_body())

        assert response.status_code == 200
        assert response.json == {"status": "accepted", "delivery_id": "linear-delivery-1"}
        [event] = inbox.events
        assert (event.event_type, event.site) == ("Issue.update", "org-1")

    def test_redelivery_is_200_duplicate(self, client: FlaskClient, inbox: MemoryInbox) -> None:
        post_linear(client, linear_body())
        response = post_linear(client, linear_body())

        assert response.status_code == 200
        assert response.json == {"status": "duplicate", "delivery_id": "linear-delivery-1"}
        assert len(inbox.events) == 1

    def test_event_needing_no_work_is_stored_and_still_200(
        self, client: FlaskClient, inbox: MemoryInbox
    ) -> None:
        # Linear counts anything but 200 as a failure, so "ignored" is a 200 too.
        response = post_linear(client, linear_body("Comment", "create"))

        assert response.status_code == 200
        assert response.json == {"status": "ignored", "delivery_id": "linear-delivery-1"}
        assert [e.event_type for e in inbox.events] == ["Comment.create"]

    @pytest.mark.parametrize(("skew_s", "words"), [(-61, "ago"), (61, "in the future")])
    def test_replayed_or_future_delivery_is_401_even_when_signed(
        self, client: FlaskClient, inbox: MemoryInbox, skew_s: int, words: str
    ) -> None:
        # The timestamp is inside the signed body, so the body is re-signed after changing it.
        body = linear_body(sent_at_ms=(time.time() + skew_s) * 1000)
        response = post_linear(client, body)

        assert response.status_code == 401
        assert response.json is not None
        assert response.json["code"] == "stale_timestamp"
        assert words in response.json["message"]
        assert inbox.events == []

    def test_changing_the_timestamp_without_re_signing_is_401_bad_signature(
        self, client: FlaskClient
    ) -> None:
        old = linear_body(sent_at_ms=(time.time() - 3600) * 1000)
        fresh = linear_body()
        response = client.post(
            "/webhooks/linear", data=fresh, headers={"Linear-Signature": linear_signature(old)}
        )
        assert response.status_code == 401
        assert response.json is not None
        assert response.json["code"] == "bad_signature"

    @pytest.mark.parametrize("signature", [None, "sha256=abc", "0" * 64])
    def test_bad_signature_is_401(self, client: FlaskClient, signature: str | None) -> None:
        headers = {} if signature is None else {"Linear-Signature": signature}
        response = client.post("/webhooks/linear", data=linear_body(), headers=headers)

        assert response.status_code == 401
        assert response.json is not None
        assert response.json["code"] == "bad_signature"

    def test_signed_body_of_the_wrong_shape_is_400(self, client: FlaskClient) -> None:
        body = json.dumps({"webhookTimestamp": time.time() * 1000, "type": "Issue"}).encode()
        response = post_linear(client, body)

        assert response.status_code == 400
        assert response.json == {"code": "bad_payload", "message": "The body has no action string."}

    def test_without_secret_the_endpoint_is_closed_with_404(self, inbox: MemoryInbox) -> None:
        client = make_app(inbox, linear_secret=None).test_client()
        response = post_linear(client, linear_body())

        assert response.status_code == 404
        assert response.json is not None
        assert "LEANGUARD_LINEAR_WEBHOOK_SECRET" in response.json["message"]


def post_stream(
    client: FlaskClient, path: str, stream: CountingStream, content_length: int | None
) -> TestResponse:
    """Post ``stream`` as the raw WSGI input, chunked when ``content_length`` is None."""
    environ: dict[str, Any] = {"wsgi.input": stream}
    if content_length is None:
        # What a server such as gunicorn passes for a chunked body: no length, and a
        # stream it terminates itself.
        environ.update({"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True})
    else:
        environ["CONTENT_LENGTH"] = str(content_length)
    return client.post(path, environ_overrides=environ)


class TestBodySize:
    @pytest.mark.parametrize("path", ["/webhooks/jira", "/webhooks/linear"])
    def test_declared_length_over_5_mib_is_413_without_reading(
        self, client: FlaskClient, path: str
    ) -> None:
        stream = CountingStream(MAX_BODY_BYTES + 1)
        response = post_stream(client, path, stream, MAX_BODY_BYTES + 1)

        assert response.status_code == 413
        assert response.json is not None
        assert response.json["code"] == "payload_too_large"
        assert stream.bytes_read == 0

    @pytest.mark.parametrize("path", ["/webhooks/jira", "/webhooks/linear"])
    def test_chunked_body_is_cut_one_byte_past_the_limit(
        self, client: FlaskClient, path: str
    ) -> None:
        stream = CountingStream(50 * MAX_BODY_BYTES)
        response = post_stream(client, path, stream, None)

        assert response.status_code == 413
        assert stream.bytes_read == MAX_BODY_BYTES + 1

    def test_chunked_body_within_the_limit_is_read_whole(self, client: FlaskClient) -> None:
        stream = CountingStream(1000)
        response = post_stream(client, "/webhooks/jira", stream, None)
        # Read in full, then refused for its (missing) signature.
        assert response.status_code == 401
        assert stream.bytes_read == 1000

    def test_body_of_exactly_the_limit_is_read(self, client: FlaskClient) -> None:
        body = b" " * MAX_BODY_BYTES
        response = post_jira(client, body)
        # Past the size check and the signature: refused only because it is not JSON.
        assert response.status_code == 400

    def test_size_is_checked_before_configuration(self, inbox: MemoryInbox) -> None:
        client = make_app(inbox, jira_secret=None, linear_secret=None).test_client()
        body = b"x" * (MAX_BODY_BYTES + 1)
        assert client.post("/webhooks/jira", data=body).status_code == 413
        assert client.post("/webhooks/linear", data=body).status_code == 413

    def test_lower_application_limit_is_answered_the_same_way(self, inbox: MemoryInbox) -> None:
        app = make_app(inbox)
        app.config["MAX_CONTENT_LENGTH"] = 10
        response = post_stream(app.test_client(), "/webhooks/jira", CountingStream(100), None)

        assert response.status_code == 413
        assert response.json is not None
        assert response.json["code"] == "payload_too_large"


class TestStorage:
    @pytest.fixture
    def answered_with(self, inbox: MemoryInbox) -> Iterator[tuple[FlaskClient, list[int]]]:
        """A client plus, per response, how many events the inbox held when it was built."""
        app = make_app(inbox)
        counts: list[int] = []

        @app.after_request
        def record(response: Response) -> Response:
            counts.append(len(inbox.events))
            return response

        yield app.test_client(), counts

    def test_event_is_in_the_inbox_before_the_answer_is_built(
        self, answered_with: tuple[FlaskClient, list[int]]
    ) -> None:
        client, counts = answered_with
        post_jira(client, jira_body())
        post_linear(client, linear_body())
        post_jira(client, jira_body("comment_created"), delivery="jira-delivery-2")
        assert counts == [1, 2, 3]

    @pytest.mark.parametrize("tracker", ["jira", "linear"])
    def test_store_failure_is_503_with_retry_after_and_nothing_acknowledged(
        self, client: FlaskClient, inbox: MemoryInbox, tracker: str
    ) -> None:
        inbox.down = True
        post = post_jira if tracker == "jira" else post_linear
        body = jira_body() if tracker == "jira" else linear_body()
        delivery_id = f"{tracker}-delivery-1"

        response = post(client, body)

        assert response.status_code == 503
        assert response.headers["Retry-After"] == "30"
        assert response.json is not None
        assert response.json["code"] == "unavailable"
        # The retry, once the database is back, is a new delivery, not a duplicate.
        inbox.down = False
        assert post(client, body).json == {"status": "accepted", "delivery_id": delivery_id}

    def test_logs_name_events_and_never_carry_bodies_or_secrets(
        self, client: FlaskClient, inbox: MemoryInbox, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="webhooks")
        body = jira_body()
        post_jira(client, body)
        post_jira(client, body)
        post_jira(client, body, **{"X-Hub-Signature": "sha256=" + "0" * 64})
        inbox.down = True
        post_linear(client, linear_body(), delivery="linear-down")

        assert [r.getMessage() for r in caplog.records] == [
            "webhook.accepted",
            "webhook.duplicate",
            "webhook.rejected",
            "webhook.store-failed",
        ]
        failed = vars(caplog.records[-1])
        assert (failed["tracker"], failed["delivery_id"], failed["reason"]) == (
            "linear",
            "linear-down",
            "unavailable",
        )
        assert vars(caplog.records[2])["reason"] == "bad_signature"
        logged = " ".join(str(vars(record)) for record in caplog.records)
        for secret in (BODY_MARKER, JIRA_SECRET, LINEAR_SECRET, hub_signature(body)):
            assert secret not in logged


@pytest.mark.parametrize("path", ["/webhooks/jira", "/webhooks/linear"])
def test_only_post_is_routed(client: FlaskClient, path: str) -> None:
    # The 405 body itself comes from the application's HTTP error handler.
    response = client.get(path)
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]


# Property tests: whatever a holder of the secret signs, the answer is never a 5xx.

PROPERTY_INBOX = MemoryInbox()
PROPERTY_CLIENT = make_app(PROPERTY_INBOX).test_client()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
jira_objects = st.dictionaries(
    st.sampled_from(["webhookEvent", "issue", "user", "comment", "changelog", "issueLink"]),
    json_values | st.sampled_from(["jira:issue_updated", "issuelink_created"]),
)
linear_objects = st.dictionaries(
    st.sampled_from(["type", "action", "data", "updatedFrom", "actor", "createdAt"]),
    json_values | st.sampled_from(["Issue", "Project", "CustomerNeed", "update", "remove"]),
)
property_settings = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@property_settings
@given(body=st.binary(max_size=512) | jira_objects.map(lambda o: json.dumps(o).encode()))
def test_any_signed_jira_body_is_answered_without_a_5xx(body: bytes) -> None:
    response = post_jira(PROPERTY_CLIENT, body, delivery=None)
    assert response.status_code in (200, 204, 400)


@property_settings
@given(
    body=st.binary(max_size=512)
    | linear_objects.map(
        # JSON bodies carry a fresh timestamp, so they reach the checks after freshness.
        lambda o: json.dumps({**o, "webhookTimestamp": time.time() * 1000}).encode()
    )
)
def test_any_signed_linear_body_is_answered_without_a_5xx(body: bytes) -> None:
    response = post_linear(PROPERTY_CLIENT, body, delivery=None)
    assert response.status_code in (200, 400, 401)
