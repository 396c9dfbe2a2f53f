"""The Jira client against faked Jira Cloud and Data Center sites, every call contract-checked."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import responses
from responses import matchers
from support.contracts import tracker_mock

from plugin.cards import Card, CardLine, render_wiki
from plugin.metrics import COUNTERS, TRACKER_CALLS
from plugin.trackers.errors import (
    AuthFailed,
    BadRequest,
    NotFound,
    RateLimited,
    TrackerError,
    TrackerUnavailable,
)
from plugin.trackers.jira import JiraClient, is_cloud_url

FIXTURES = Path(__file__).parent / "fixtures"
CLOUD = "https://acme.atlassian.net"
DC = "https://jira.example.com/jira"
EMAIL = "leanguard-bot@acme.example"
TOKEN = "ATATT3xFfGF0-cloud-token"
PAT = "NjM4OTk1-dc-personal-token"

CARD = Card(
    state="failing",
    headline="leanguard: 1 outcome check failing (1 error)",
    lines=(
        CardLine(
            status="fail",
            rule="require-hypothesis",
            severity="error",
            text="The epic has no hypothesis.",
            fix="the Hypothesis field",
            why="Without a hypothesis nobody can tell whether the epic worked.",
            who=("Mia Krystof",),
        ),
    ),
    details_url="https://leanguard.example.com/items/jira/ACME-42",
)


def fixture(name: str) -> Any:
    """Load a JSON payload from the fixtures folder."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def sent_json(call: Any) -> Any:
    """Decode the JSON body of a recorded call."""
    return json.loads(call.request.body)


@pytest.fixture
def fake() -> Iterator[responses.RequestsMock]:
    with tracker_mock() as rsps:
        yield rsps


@pytest.fixture
def cloud() -> JiraClient:
    return JiraClient(CLOUD, email=EMAIL, api_token=TOKEN)


@pytest.fixture
def dc() -> JiraClient:
    return JiraClient(DC, api_token=PAT)


@pytest.fixture(autouse=True)
def no_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test in which the library would sleep instead of handing back to the queue."""

    def refuse(seconds: float) -> None:
        raise AssertionError(f"the Jira client slept {seconds} s")

    monkeypatch.setattr("atlassian.rest_client.time.sleep", refuse)


def test_cloud_is_recognised_by_host() -> None:
    assert is_cloud_url("https://acme.atlassian.net")
    assert is_cloud_url("https://legacy.jira.com/")
    assert not is_cloud_url("https://jira.example.com/jira")
    assert not is_cloud_url("https://atlassian.net.example.com")
    assert JiraClient("https://acme.atlassian.net", cloud=False).api_version == "2"
    assert JiraClient("https://jira.example.com", cloud=True).api_version == "3"


def test_email_without_token_is_refused() -> None:
    with pytest.raises(ValueError, match="API token"):
        JiraClient(CLOUD, email=EMAIL)


def test_cloud_identity_uses_basic_auth_and_is_cached(
    fake: responses.RequestsMock, cloud: JiraClient
) -> None:
    fake.get(f"{CLOUD}/rest/api/3/myself", json=fixture("jira_cloud_myself.json"))

    assert cloud.identity() == "712020:4f1c3a52-9a1e-4b7e-8a53-0c2d5f7e9b11"
    assert cloud.identity() == "712020:4f1c3a52-9a1e-4b7e-8a53-0c2d5f7e9b11"

    assert len(fake.calls) == 1
    expected = base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()
    assert fake.calls[0].request.headers["Authorization"] == f"Basic {expected}"


def test_data_center_identity_uses_a_bearer_token_and_the_user_key(
    fake: responses.RequestsMock, dc: JiraClient
) -> None:
    fake.get(f"{DC}/rest/api/2/myself", json=fixture("jira_dc_myself.json"))

    assert dc.identity() == "JIRAUSER10100"
    assert fake.calls[0].request.headers["Authorization"] == f"Bearer {PAT}"


def test_data_center_identity_falls_back_to_the_user_name(
    fake: responses.RequestsMock, dc: JiraClient
) -> None:
    me = fixture("jira_dc_myself.json")
    del me["key"]
    fake.get(f"{DC}/rest/api/2/myself", json=me)

    assert dc.identity() == "leanguard"


def test_a_callers_session_keeps_its_own_auth(fake: responses.RequestsMock) -> None:
    class ConnectJwt(requests.auth.AuthBase):
        def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
            request.headers["Authorization"] = f"JWT signed-for {request.method} {request.path_url}"
            return request

    session = requests.Session()
    session.auth = ConnectJwt()
    client = JiraClient(CLOUD, session=session)
    fake.get(f"{CLOUD}/rest/api/3/myself", json=fixture("jira_cloud_myself.json"))

    client.identity()

    assert fake.calls[0].request.headers["Authorization"] == (
        "JWT signed-for GET /rest/api/3/myself"
    )


def test_fetch_item_asks_for_all_fields_and_names(
    fake: responses.RequestsMock, cloud: JiraClient
) -> None:
    fake.get(
        f"{CLOUD}/rest/api/3/issue/ACME-42",
        json=fixture("jira_cloud_issue.json"),
        match=[matchers.query_param_matcher({"expand": "names", "fields": "*all"})],
    )

    issue = cloud.fetch_item("ACME-42", "issue")

    assert issue is not None
    assert issue["key"] == "ACME-42"
    assert issue["names"]["customfield_10056"] == "Hypothesis"


def test_fetch_item_on_data_center_uses_v2_under_the_context_path(
    fake: responses.RequestsMock, dc: JiraClient
) -> None:
    fake.get(f"{DC}/rest/api/2/issue/OPS-7", json=fixture("jira_dc_issue.json"))

    issue = dc.fetch_item("OPS-7", "issue")

    assert issue is not None and issue["fields"]["description"].startswith("h2. Hypothesis")


def test_fetch_item_returns_none_when_the_issue_is_gone(
    fake: responses.RequestsMock, cloud: JiraClient
) -> None:
    fake.get(
        f"{CLOUD}/rest/api/3/issue/ACME-404",
        json=fixture("jira_error_issue_not_found.json"),
        status=404,
    )

    assert cloud.fetch_item("ACME-404", "issue") is None


def test_jira_items_are_always_issues(cloud: JiraClient) -> None:
    with pytest.raises(ValueError, match="project"):
        cloud.fetch_item("ACME", "project")


def test_field_names_are_read_once(fake: responses.RequestsMock, cloud: JiraClient) -> None:
    fake.get(f"{CLOUD}/rest/api/3/field", json=fixture("jira_fields.json"))

    names = cloud.field_names()

    assert names["customfield_10051"] == "Success metric"
    assert cloud.field_names() is names
    assert len(fake.calls) == 1


def test_cloud_card_is_posted_as_adf(fake: responses.RequestsMock, cloud: JiraClient) -> None:
    fake.post(
        f"{CLOUD}/rest/api/3/issue/ACME-42/comment",
        json=fixture("jira_cloud_comment_created.json"),
        status=201,
    )

    comment_id = cloud.post_card("ACME-42", "issue", CARD)

    assert comment_id == "10500"
    body = sent_json(fake.calls[0])["body"]
    assert body["type"] == "doc" and body["version"] == 1
    assert body["content"][0]["type"] == "panel"


def test_data_center_card_is_posted_as_wiki_markup(
    fake: responses.RequestsMock, dc: JiraClient
) -> None:
    fake.post(
        f"{DC}/rest/api/2/issue/OPS-7/comment",
        json=fixture("jira_dc_comment_created.json"),
        status=201,
    )

    assert dc.post_card("OPS-7", "issue", CARD) == "30077"
    assert sent_json(fake.calls[0]) == {"body": render_wiki(CARD)}


def test_edit_card_does_not_notify_watchers(
    fake: responses.RequestsMock, cloud: JiraClient
) -> None:
    fake.put(
        f"{CLOUD}/rest/api/3/issue/ACME-42/comment/10500",
        json=fixture("jira_cloud_comment_created.json"),
        match=[matchers.query_param_matcher({"notifyUsers": "false"})],
    )

    cloud.edit_card("ACME-42", "issue", "10500", CARD)

    assert sent_json(fake.calls[0])["body"]["type"] == "doc"


def test_edit_card_raises_not_found_when_a_human_deleted_it(
    fake: responses.RequestsMock, dc: JiraClient
) -> None:
    fake.put(
        f"{DC}/rest/api/2/issue/OPS-7/comment/30077",
        json={"errorMessages": ["Can not find a comment for the id: 30077."], "errors": {}},
        status=404,
    )

    with pytest.raises(NotFound) as caught:
        dc.edit_card("OPS-7", "issue", "30077", CARD)

    assert caught.value.status == 404
    assert not caught.value.retryable
    assert "Can not find a comment" in str(caught.value)


def test_find_card_pages_the_comments_for_the_bots_own_card(
    fake: responses.RequestsMock, cloud: JiraClient
) -> None:
    fake.get(f"{CLOUD}/rest/api/3/myself", json=fixture("jira_cloud_myself.json"))
    comments = f"{CLOUD}/rest/api/3/issue/ACME-42/comment"
    for start, page in ((0, "page1"), (2, "page2")):
        fake.get(
            comments,
            json=fixture(f"jira_cloud_comments_{page}.json"),
            match=[
                matchers.query_param_matcher(
                    {"startAt": str(start), "maxResults": "100", "orderBy": "created"}
                )
            ],
        )

    # A teammate quoting the footer and a bot comment without it are not the card.
    assert cloud.find_card("ACME-42", "issue") == "10500"
    assert [urlsplit(c.request.url or "").path for c in fake.calls][1:] == [
        "/rest/api/3/issue/ACME-42/comment",
        "/rest/api/3/issue/ACME-42/comment",
    ]


def test_find_card_on_data_center_matches_the_bots_user_key(
    fake: responses.RequestsMock, dc: JiraClient
) -> None:
    fake.get(f"{DC}/rest/api/2/myself", json=fixture("jira_dc_myself.json"))
    fake.get(f"{DC}/rest/api/2/issue/OPS-7/comment", json=fixture("jira_dc_comments.json"))

    assert dc.find_card("OPS-7", "issue") == "30077"


def test_find_card_is_none_when_only_humans_mention_leanguard(
    fake: responses.RequestsMock, dc: JiraClient
) -> None:
    fake.get(f"{DC}/rest/api/2/myself", json=fixture("jira_dc_myself.json"))
    fake.get(
        f"{DC}/rest/api/2/issue/OPS-7/comment",
        json=fixture("jira_dc_comments_none_by_the_bot.json"),
    )

    assert dc.find_card("OPS-7", "issue") is None


def test_calls_are_counted_by_operation_without_ids(
    fake: responses.RequestsMock, cloud: JiraClient
) -> None:
    fake.put(f"{CLOUD}/rest/api/3/issue/ACME-42/comment/10500", json={"id": "10500"})
    fake.put(f"{CLOUD}/rest/api/3/issue/ACME-42/properties/leanguard", status=429)
    COUNTERS.share_via(None)
    before = COUNTERS.read() or {}

    cloud.edit_card("ACME-42", "issue", "10500", CARD)
    with pytest.raises(RateLimited):
        cloud.publish_status("ACME-42", "issue", {"status": "fail"})

    after = COUNTERS.read() or {}

    def grown(labels: tuple[str, ...]) -> float:
        return after[TRACKER_CALLS].get(labels, 0) - before.get(TRACKER_CALLS, {}).get(labels, 0)

    assert grown(("jira", "PUT issue/comment", "200")) == 1
    assert grown(("jira", "PUT issue/properties", "429")) == 1
    assert not [labels for labels in after[TRACKER_CALLS] if "ACME-42" in "".join(labels)]


def test_delete_card_treats_a_missing_comment_as_deleted(
    fake: responses.RequestsMock, cloud: JiraClient
) -> None:
    fake.delete(f"{CLOUD}/rest/api/3/issue/ACME-42/comment/10500", status=204)
    fake.delete(f"{CLOUD}/rest/api/3/issue/ACME-42/comment/10501", status=404)

    cloud.delete_card("ACME-42", "issue", "10500")
    cloud.delete_card("ACME-42", "issue", "10501")

    assert [call.request.method for call in fake.calls] == ["DELETE", "DELETE"]


def test_publish_status_writes_the_leanguard_property(
    fake: responses.RequestsMock, cloud: JiraClient
) -> None:
    fake.put(f"{CLOUD}/rest/api/3/issue/ACME-42/properties/leanguard", status=200)
    value = {
        "status": "fail",
        "violations": 1,
        "failing": ["require-hypothesis"],
        "evaluatedAt": "2026-09-14T09:30:05+00:00",
        "detailsUrl": CARD.details_url,
    }

    cloud.publish_status("ACME-42", "issue", value)

    assert sent_json(fake.calls[0]) == value


@pytest.mark.parametrize(("present", "operation"), [(True, "add"), (False, "remove")])
def test_set_label_updates_labels_quietly(
    fake: responses.RequestsMock, dc: JiraClient, present: bool, operation: str
) -> None:
    fake.put(
        f"{DC}/rest/api/2/issue/OPS-7",
        status=204,
        match=[matchers.query_param_matcher({"notifyUsers": "false"})],
    )

    dc.set_label("OPS-7", "issue", "outcomes-missing", present)

    assert sent_json(fake.calls[0]) == {"update": {"labels": [{operation: "outcomes-missing"}]}}


def test_cloud_search_pages_with_next_page_token(cloud: JiraClient) -> None:
    url = f"{CLOUD}/rest/api/3/search/jql"
    jql = "issuetype = Epic AND statusCategory != Done"
    with tracker_mock(ordered=True) as fake:
        fake.post(url, json=fixture("jira_cloud_search_page1.json"))
        fake.post(url, json=fixture("jira_cloud_search_page2.json"))

        first, token = cloud.search_epics(jql, page_token=None)
        second, last = cloud.search_epics(jql, page_token=token)
        bodies = [sent_json(call) for call in fake.calls]

    assert [issue["key"] for issue in first] == ["ACME-42", "ACME-43"]
    assert token == "CAEaAggD"
    assert [issue["key"] for issue in second] == ["ACME-77"]
    assert last is None
    assert first[0]["names"]["customfield_10051"] == "Success metric"
    assert bodies[0] == {"jql": jql, "maxResults": 100, "fields": ["*all"], "expand": "names"}
    assert bodies[1]["nextPageToken"] == "CAEaAggD"


def test_data_center_search_pages_with_start_at(
    fake: responses.RequestsMock, dc: JiraClient
) -> None:
    url = f"{DC}/rest/api/2/search"
    common = {"jql": "issuetype = Epic", "maxResults": "2", "fields": "*all", "expand": "names"}
    fake.get(
        url,
        json=fixture("jira_dc_search_page1.json"),
        match=[matchers.query_param_matcher({**common, "startAt": "0"})],
    )
    fake.get(
        url,
        json=fixture("jira_dc_search_page2.json"),
        match=[matchers.query_param_matcher({**common, "startAt": "2"})],
    )

    first, start = dc.search_epics("issuetype = Epic", page_token=None, max_results=2)
    second, last = dc.search_epics("issuetype = Epic", page_token=start, max_results=2)

    assert [issue["key"] for issue in first] == ["OPS-7", "OPS-8"]
    assert start == "2"
    assert [issue["key"] for issue in second] == ["OPS-12"]
    assert last is None
    assert second[0]["names"]["customfield_10100"] == "Success metric"


@pytest.mark.parametrize(
    ("header", "expected"),
    [("30", 30.0), ("0", 1.0), ("86400", 900.0), ("2.5", 2.5)],
)
def test_429_honours_retry_after_seconds(
    fake: responses.RequestsMock, cloud: JiraClient, header: str, expected: float
) -> None:
    fake.get(
        f"{CLOUD}/rest/api/3/issue/ACME-42",
        json={"errorMessages": ["Rate limit exceeded."], "errors": {}},
        status=429,
        headers={"Retry-After": header, "RateLimit-Reason": "jira-quota-tenant-based"},
    )

    with pytest.raises(RateLimited) as caught:
        cloud.fetch_item("ACME-42", "issue")

    assert caught.value.retry_after == expected
    assert caught.value.retryable
    assert caught.value.status == 429
    assert len(fake.calls) == 1


def test_429_reads_retry_after_as_an_http_date(
    fake: responses.RequestsMock, cloud: JiraClient
) -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    fake.get(
        f"{CLOUD}/rest/api/3/myself",
        status=429,
        headers={"Retry-After": format_datetime(when, usegmt=True)},
    )

    with pytest.raises(RateLimited) as caught:
        cloud.identity()

    assert 110 <= caught.value.retry_after <= 120


def test_429_without_retry_after_uses_the_reset_time_or_a_default(
    fake: responses.RequestsMock, cloud: JiraClient
) -> None:
    reset = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%MZ")
    fake.get(f"{CLOUD}/rest/api/3/myself", status=429, headers={"X-RateLimit-Reset": reset})
    fake.get(f"{CLOUD}/rest/api/3/field", status=429)

    with pytest.raises(RateLimited) as by_reset:
        cloud.identity()
    with pytest.raises(RateLimited) as by_default:
        cloud.field_names()

    assert 200 <= by_reset.value.retry_after <= 300
    assert by_default.value.retry_after == 60.0


def test_503_is_unavailable_with_its_retry_after(
    fake: responses.RequestsMock, cloud: JiraClient
) -> None:
    fake.get(f"{CLOUD}/rest/api/3/myself", status=503, headers={"Retry-After": "45"})

    with pytest.raises(TrackerUnavailable) as caught:
        cloud.identity()

    assert caught.value.retry_after == 45.0
    assert caught.value.status == 503
    assert caught.value.retryable


def test_html_error_pages_are_reduced_to_a_short_message(
    fake: responses.RequestsMock, cloud: JiraClient
) -> None:
    fake.post(
        f"{CLOUD}/rest/api/3/issue/ACME-42/comment",
        body=(FIXTURES / "jira_error_bad_gateway.html").read_text(encoding="utf-8"),
        status=502,
        content_type="text/html",
    )

    with pytest.raises(TrackerUnavailable) as caught:
        cloud.post_card("ACME-42", "issue", CARD)

    message = str(caught.value)
    assert "502 Bad Gateway \u2013 Atlassian Cloud" in message
    assert "<" not in message
    assert "window.trace" not in message
    assert caught.value.retry_after is None


@pytest.mark.parametrize(
    "failure",
    [requests.ConnectTimeout("connect timed out"), requests.ReadTimeout("read timed out")],
)
def test_timeouts_are_unavailable(
    fake: responses.RequestsMock, cloud: JiraClient, failure: Exception
) -> None:
    fake.get(f"{CLOUD}/rest/api/3/myself", body=failure)

    with pytest.raises(TrackerUnavailable) as caught:
        cloud.identity()

    assert caught.value.retryable
    assert caught.value.status is None
    assert "timed out" in str(caught.value)


def test_connection_resets_are_unavailable(fake: responses.RequestsMock, dc: JiraClient) -> None:
    fake.put(
        f"{DC}/rest/api/2/issue/OPS-7/properties/leanguard",
        body=requests.ConnectionError("Connection reset by peer"),
    )

    with pytest.raises(TrackerUnavailable, match="could not connect"):
        dc.publish_status("OPS-7", "issue", {"status": "pass"})


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_auth_failures(
    fake: responses.RequestsMock, cloud: JiraClient, status: int
) -> None:
    fake.get(
        f"{CLOUD}/rest/api/3/issue/ACME-42",
        json=fixture("jira_error_unauthorized.json"),
        status=status,
    )

    with pytest.raises(AuthFailed) as caught:
        cloud.fetch_item("ACME-42", "issue")

    assert caught.value.status == status
    assert not caught.value.retryable


def test_rejected_bodies_are_bad_requests_with_jiras_reason(
    fake: responses.RequestsMock, cloud: JiraClient
) -> None:
    fake.post(
        f"{CLOUD}/rest/api/3/issue/ACME-42/comment",
        json=fixture("jira_error_comment_invalid.json"),
        status=400,
    )

    with pytest.raises(BadRequest, match="Comment body is not valid!") as caught:
        cloud.post_card("ACME-42", "issue", CARD)

    assert not caught.value.retryable


def test_a_login_page_instead_of_json_is_an_error(
    fake: responses.RequestsMock, dc: JiraClient
) -> None:
    fake.get(
        f"{DC}/rest/api/2/myself",
        body="<html><head><title>Log in - Jira</title></head></html>",
        content_type="text/html",
    )

    with pytest.raises(TrackerError, match="Log in - Jira") as caught:
        dc.identity()

    assert not caught.value.retryable


def test_every_call_is_logged_without_secrets(
    fake: responses.RequestsMock, cloud: JiraClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake.get(f"{CLOUD}/rest/api/3/myself", json=fixture("jira_cloud_myself.json"))
    fake.get(f"{CLOUD}/rest/api/3/issue/ACME-9", status=404)

    with caplog.at_level(logging.DEBUG):
        cloud.identity()
        cloud.fetch_item("ACME-9", "issue")

    ours = [r.getMessage() for r in caplog.records if r.name == "plugin.trackers.jira"]
    assert any("GET /rest/api/3/myself -> 200" in message for message in ours)
    assert any("GET /rest/api/3/issue/ACME-9 -> 404" in message for message in ours)
    secret = base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()
    assert all(TOKEN not in r.getMessage() and secret not in r.getMessage() for r in caplog.records)


def test_contract_check_catches_a_drifted_comment_body(
    fake: responses.RequestsMock, cloud: JiraClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # v3 rejects plain strings; the fake must refuse them just as Jira does.
    monkeypatch.setattr(JiraClient, "_body", lambda self, card: render_wiki(card))

    with pytest.raises(AssertionError, match="ADF must be an object"):
        cloud.post_card("ACME-42", "issue", CARD)


def test_contract_check_catches_a_drifted_path(
    fake: responses.RequestsMock, cloud: JiraClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(JiraClient, "COMMENTS_PATH", "rest/api/{v}/issue/{key}/comments")

    with pytest.raises(AssertionError, match="Jira has no POST"):
        cloud.post_card("ACME-42", "issue", CARD)


def test_contract_check_catches_a_misspelt_query_parameter(
    fake: responses.RequestsMock, cloud: JiraClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = JiraClient._call

    def misspelt(self: JiraClient, method: str, path: str, **kwargs: Any) -> Any:
        if kwargs.get("params") == {"notifyUsers": "false"}:
            kwargs["params"] = {"notifyUser": "false"}
        return original(self, method, path, **kwargs)

    monkeypatch.setattr(JiraClient, "_call", misspelt)

    with pytest.raises(AssertionError, match="notifyUser"):
        cloud.set_label("ACME-42", "issue", "outcomes-missing", True)
