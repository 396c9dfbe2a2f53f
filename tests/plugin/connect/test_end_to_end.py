"""A Connect webhook in, the worker, and the card written to Jira as the app, JWT on every call."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest
import requests
import responses
from connect_support import ACME, FIXTURES, ConnectHarness, fixture_json
from sqlalchemy import select
from support.contracts import assert_adf_document, tracker_mock

from plugin.app import QUEUE_EXTENSION
from plugin.storage import CardRow, Delivery, DeliveryState, WorkItemRow
from plugin.trackers.errors import AuthFailed

STATUS_PROPERTY = "com.atlassian.jira.issue:leanguard:leanguard-status:status"
API = f"{ACME.base_url}/rest/api/3"


def answer(status: int, body: Any = None) -> tuple[int, dict[str, str], str]:
    return status, {"Content-Type": "application/json"}, "" if body is None else json.dumps(body)


@dataclass
class FakeConnectJira:
    """ACME's Jira behind ``responses``; it accepts only the app's JWT for each exact request."""

    rsps: responses.RequestsMock
    issue: dict[str, Any]
    secret: str = ACME.shared_secret
    comments: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    canonical: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for method in ("GET", "POST", "PUT", "DELETE"):
            self.rsps.add_callback(method, _API_PATTERN, callback=self._answer)

    def _answer(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        url = urlsplit(request.url or "")
        method = request.method or ""
        params = parse_qsl(url.query, keep_blank_values=True)
        # Jira's side of the handshake, written out by hand: the canonical request of exactly
        # this call, and the token must be the app's, fresh, and hash that string.
        query = "&".join(f"{_enc(k)}={_enc(v)}" for k, v in sorted(params) if k != "jwt")
        canonical = f"{method}&{url.path}&{query}"
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        try:
            assert scheme == "JWT", scheme
            claims = jwt.decode(token, self.secret, algorithms=["HS256"])
            assert claims["iss"] == "leanguard", claims
            assert claims["exp"] - claims["iat"] == 180, claims
            assert claims["qsh"] == hashlib.sha256(canonical.encode()).hexdigest(), canonical
        except (AssertionError, jwt.PyJWTError) as exc:
            self.refused.append(f"{canonical}: {exc!r}")
            return answer(401, {"errorMessages": ["JWT authentication failed."]})
        self.canonical.append(canonical)
        return self._route(method, url.path.removeprefix("/rest/api/3"), request.body)

    def _route(self, method: str, path: str, raw: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(raw) if raw else None
        if (method, path) == ("GET", "/myself"):
            return answer(200, fixture_json("jira_myself_app.json"))
        if (method, path) == ("GET", "/field"):
            return answer(200, fixture_json("jira_fields.json"))
        if (method, path) == ("GET", "/issue/OUT-7"):
            return answer(200, self.issue)
        if (method, path) == ("POST", "/issue/OUT-7/comment"):
            comment_id = str(10500 + len(self.comments))
            self.comments[comment_id] = body["body"]
            return answer(
                201, {"id": comment_id, "self": f"{API}/issue/10207/comment/{comment_id}"}
            )
        prefix = "/issue/OUT-7/properties/"
        if method == "PUT" and path.startswith(prefix):
            key = requests.utils.unquote(path.removeprefix(prefix))
            created = key not in self.properties
            self.properties[key] = body
            return answer(201 if created else 200)
        return answer(404, {"errorMessages": [f"no {method} {path} in this fake"]})


_API_PATTERN = re.compile(re.escape(API) + r"/.*")


def _enc(value: str) -> str:
    return requests.utils.quote(value, safe="~")


def post_connect_webhook(connect: ConnectHarness, body: bytes) -> Any:
    token = connect.token(ACME, "POST", "/webhooks/jira")
    return connect.client.post(
        "/webhooks/jira",
        data=body,
        headers={
            "Authorization": f"JWT {token}",
            "Content-Type": "application/json",
            "User-Agent": "Atlassian Webhook HTTP Client",
            "X-Atlassian-Webhook-Identifier": str(uuid.uuid4()),
        },
    )


@pytest.mark.parametrize(
    "api_token_site",
    ["", "https://other-team.atlassian.net"],
    ids=["connect only", "beside an API-token site"],
)
def test_connect_webhook_ends_in_a_card_signed_as_the_app(
    make_connect: Any, api_token_site: str
) -> None:
    overrides: dict[str, Any] = {}
    if api_token_site:
        overrides = {
            "jira_url": api_token_site,
            "jira_email": "bot@other-team.example",
            "jira_api_token": "ATATT-other-team-token",
        }
    connect: ConnectHarness = make_connect(**overrides)
    body = (FIXTURES / "connect_webhook_issue_created.json").read_bytes()
    with tracker_mock(assert_all_requests_are_fired=False) as rsps:
        assert connect.install(ACME, rsps=rsps).status_code == 204
        jira = FakeConnectJira(rsps, fixture_json("jira_issue_OUT-7.json"))
        response = post_connect_webhook(connect, body)
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["status"] == "accepted"
        connect.app.extensions[QUEUE_EXTENSION].drain()

    assert jira.refused == []
    # The card: one ADF comment naming what is missing.
    [comment] = jira.comments.values()
    assert_adf_document(comment)
    assert "Success metric" in json.dumps(comment)
    # The JQL-searchable property and the issue-view status.
    assert jira.properties["leanguard"]["status"] == "fail"
    assert jira.properties["leanguard"]["violations"] == 1
    assert jira.properties[STATUS_PROPERTY] == {
        "type": "lozenge",
        "value": {"label": "1 to fix", "type": "removed"},
    }
    # Hand-written canonical requests of two of the calls: the qsh covers path and query.
    assert "GET&/rest/api/3/issue/OUT-7&expand=names&fields=%2Aall" in jira.canonical
    assert "POST&/rest/api/3/issue/OUT-7/comment&" in jira.canonical

    tenant_id = connect.tenant(ACME.client_key).id
    with connect.runtime.database.session() as session:
        [delivery] = session.scalars(select(Delivery)).all()
        assert (delivery.tenant_id, delivery.state) == (tenant_id, DeliveryState.DONE)
        [item] = session.scalars(select(WorkItemRow)).all()
        assert (item.tenant_id, item.key) == (tenant_id, "OUT-7")
        assert session.scalars(select(CardRow)).one().comment_id in jira.comments


def test_the_cached_client_follows_reinstall_and_uninstall(make_connect: Any) -> None:
    connect: ConnectHarness = make_connect()
    body = (FIXTURES / "connect_webhook_issue_created.json").read_bytes()
    rotated = dataclasses.replace(ACME, shared_secret="acme-rotated-secret-Pq9Wo8Ei7Ru6Ty5")
    with tracker_mock(assert_all_requests_are_fired=False) as rsps:
        assert connect.install(ACME, rsps=rsps).status_code == 204
        jira = FakeConnectJira(rsps, fixture_json("jira_issue_OUT-7.json"))
        assert post_connect_webhook(connect, body).status_code == 200
        connect.app.extensions[QUEUE_EXTENSION].drain()
        client = connect.runtime.client_for(connect.tenant(ACME.client_key))
        assert client is not None
        # A reinstall rotates the secret: the same cached client signs with the new one.
        assert connect.install(rotated).status_code == 204
        jira.secret = rotated.shared_secret
        assert client.fetch_item("OUT-7", "issue") is not None
        assert jira.refused == []
        calls = len(jira.canonical)
        # An uninstall stops the client before anything is sent.
        token = connect.install_token(ACME.client_key, path="/connect/uninstalled")
        uninstalled = connect.lifecycle("/connect/uninstalled", connect.body(ACME), token)
        assert uninstalled.status_code == 204
        with pytest.raises(AuthFailed, match="disabled or gone"):
            client.fetch_item("OUT-7", "issue")
    assert len(jira.canonical) == calls
    assert jira.refused == []
