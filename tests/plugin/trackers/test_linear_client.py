"""The Linear client against a faked GraphQL API, every call checked against Linear's schema."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from support.contracts import tracker_mock, validating_callback

from plugin.cards import Card, CardLine, render_markdown
from plugin.metrics import COUNTERS, TRACKER_CALLS
from plugin.trackers import linear
from plugin.trackers.errors import (
    AuthFailed,
    BadRequest,
    NotFound,
    RateLimited,
    TrackerUnavailable,
)
from plugin.trackers.linear import LinearClient

FIXTURES = Path(__file__).parent / "fixtures"
API = "https://api.linear.app/graphql"
KEY = "lin_api_0123456789abcdefghijklmnopqrstuvwxyzABCD"
ISSUE_ID = "8f1d6f0e-2b7a-4c1e-9a3f-6d2e1b0c9a47"
PROJECT_ID = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
TEAM_ID = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
COMMENT_ID = "4d3c2b1a-0f9e-4d8c-b7a6-958473625140"

CARD = Card(
    state="failing",
    headline="leanguard: 1 outcome check failing (1 error)",
    lines=(
        CardLine(
            status="fail",
            rule="require-metric",
            severity="error",
            text="The project has no success metric.",
            fix='a "Success metric" section in the project description',
            why="Without a metric nobody can tell whether the project worked.",
            who=("Priya Natarajan",),
        ),
    ),
    details_url="https://leanguard.example.com/items/linear/ENG-142",
)

Matcher = Callable[[requests.PreparedRequest], tuple[bool, str]]


def fixture(name: str) -> Any:
    """Load a JSON payload from the fixtures folder."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def operation(name: str) -> Matcher:
    """Match a GraphQL request by its operation name."""

    def match(request: requests.PreparedRequest) -> tuple[bool, str]:
        sent = json.loads(request.body or b"{}").get("operationName")
        return sent == name, f"operation {sent!r} is not {name!r}"

    return match


def sent(call: Any) -> dict[str, Any]:
    """Decode the GraphQL payload of a recorded call."""
    payload: dict[str, Any] = json.loads(call.request.body)
    return payload


def answer(
    fake: responses.RequestsMock, name: str, body: str, *, status: int = 200, **kw: Any
) -> None:
    """Answer operation ``name`` with a fixture file."""
    fake.post(API, json=fixture(body), status=status, match=[operation(name)], **kw)


@pytest.fixture
def fake() -> Iterator[responses.RequestsMock]:
    with tracker_mock() as rsps:
        yield rsps


@pytest.fixture
def client() -> LinearClient:
    return LinearClient(KEY)


def test_identity_sends_the_raw_key_and_is_cached(
    fake: responses.RequestsMock, client: LinearClient
) -> None:
    answer(fake, "Viewer", "linear_viewer.json")

    assert client.identity() == "0c6e9d7a-3b8e-4a55-9a5e-5f0f3d7c1e21"
    assert client.identity() == "0c6e9d7a-3b8e-4a55-9a5e-5f0f3d7c1e21"

    assert len(fake.calls) == 1
    assert fake.calls[0].request.headers["Authorization"] == KEY


def test_the_key_stays_out_of_repr() -> None:
    assert KEY not in repr(LinearClient(KEY))


def test_a_custom_endpoint_is_used(fake: responses.RequestsMock) -> None:
    url = "https://linear.internal.example.com/graphql"
    fake.post(url, json=fixture("linear_viewer.json"))

    LinearClient(KEY, api_url=url).identity()

    assert fake.calls[0].request.url == url


def test_fetch_issue_returns_the_node(fake: responses.RequestsMock, client: LinearClient) -> None:
    answer(fake, "Issue", "linear_issue.json")

    issue = client.fetch_item("ENG-142", "issue")

    assert issue is not None
    assert issue["identifier"] == "ENG-142"
    assert issue["needs"]["nodes"] == [{"id": "e1f2a3b4-c5d6-4e7f-8091-a2b3c4d5e6f7"}]
    assert sent(fake.calls[0])["variables"] == {"id": "ENG-142"}


def test_fetch_project_reads_description_and_content(
    fake: responses.RequestsMock, client: LinearClient
) -> None:
    answer(fake, "Project", "linear_project.json")

    project = client.fetch_item(PROJECT_ID, "project")

    assert project is not None
    assert project["content"].startswith("## Success metric")
    assert project["teams"]["nodes"] == [{"key": "ENG"}, {"key": "DES"}]


def test_fetch_item_returns_none_when_the_entity_is_gone(
    fake: responses.RequestsMock, client: LinearClient
) -> None:
    answer(fake, "Issue", "linear_error_not_found.json")

    assert client.fetch_item("ENG-999", "issue") is None


def test_partial_data_is_used(fake: responses.RequestsMock, client: LinearClient) -> None:
    answer(fake, "Issue", "linear_issue_partial.json")

    issue = client.fetch_item("ENG-142", "issue")

    assert issue is not None and issue["identifier"] == "ENG-142"


def test_unknown_kinds_are_refused(client: LinearClient) -> None:
    with pytest.raises(ValueError, match="cycle"):
        client.fetch_item("C-1", "cycle")


def test_post_card_on_an_issue(fake: responses.RequestsMock, client: LinearClient) -> None:
    answer(fake, "CommentCreate", "linear_comment_create.json")

    assert client.post_card("ENG-142", "issue", CARD) == COMMENT_ID
    assert sent(fake.calls[0])["variables"] == {
        "input": {
            "issueId": "ENG-142",
            "body": render_markdown(CARD),
            "doNotSubscribeToIssue": True,
        }
    }


def test_post_card_on_a_project(fake: responses.RequestsMock, client: LinearClient) -> None:
    answer(fake, "CommentCreate", "linear_comment_create.json")

    client.post_card(PROJECT_ID, "project", CARD)

    assert sent(fake.calls[0])["variables"] == {
        "input": {"projectId": PROJECT_ID, "body": render_markdown(CARD)}
    }


def test_find_card_pages_the_bots_comments_holding_the_marker(
    fake: responses.RequestsMock, client: LinearClient
) -> None:
    answer(fake, "Viewer", "linear_viewer.json")
    answer(fake, "IssueCards", "linear_issue_cards_page1.json")
    answer(fake, "IssueCards", "linear_issue_cards_page2.json")

    # The first page holds a teammate's quote of the footer, which is not the card.
    assert client.find_card(ISSUE_ID, "issue") == COMMENT_ID
    pages = [sent(call)["variables"] for call in fake.calls[1:]]
    assert pages == [
        {
            "id": ISSUE_ID,
            "marker": "Checked by leanguard",
            "user": "0c6e9d7a-3b8e-4a55-9a5e-5f0f3d7c1e21",
            "after": after,
        }
        for after in (None, "cursor-1")
    ]


def test_find_card_on_a_project_is_none_without_a_card(
    fake: responses.RequestsMock, client: LinearClient
) -> None:
    answer(fake, "Viewer", "linear_viewer.json")
    answer(fake, "ProjectCards", "linear_project_cards_none.json")

    assert client.find_card(PROJECT_ID, "project") is None
    assert sent(fake.calls[1])["operationName"] == "ProjectCards"


def test_calls_are_counted_by_operation_and_status(
    fake: responses.RequestsMock, client: LinearClient
) -> None:
    answer(fake, "CommentUpdate", "linear_comment_update.json")
    answer(fake, "CommentUpdate", "linear_error_ratelimited.json", status=400)
    COUNTERS.share_via(None)
    before = (COUNTERS.read() or {}).get(TRACKER_CALLS, {})

    client.edit_card("ENG-142", "issue", COMMENT_ID, CARD)
    with pytest.raises(RateLimited):
        client.edit_card("ENG-142", "issue", COMMENT_ID, CARD)

    after = (COUNTERS.read() or {})[TRACKER_CALLS]
    for status in ("200", "400"):
        labels = ("linear", "CommentUpdate", status)
        assert after[labels] - before.get(labels, 0) == 1


def test_edit_card_replaces_the_body(fake: responses.RequestsMock, client: LinearClient) -> None:
    answer(fake, "CommentUpdate", "linear_comment_update.json")

    client.edit_card("ENG-142", "issue", COMMENT_ID, CARD)

    assert sent(fake.calls[0])["variables"] == {
        "id": COMMENT_ID,
        "input": {"body": render_markdown(CARD)},
    }


def test_edit_card_raises_not_found_when_a_human_deleted_it(
    fake: responses.RequestsMock, client: LinearClient
) -> None:
    answer(fake, "CommentUpdate", "linear_error_not_found.json")

    with pytest.raises(NotFound):
        client.edit_card("ENG-142", "issue", COMMENT_ID, CARD)


def test_delete_card_treats_a_missing_comment_as_deleted(
    fake: responses.RequestsMock, client: LinearClient
) -> None:
    answer(fake, "CommentDelete", "linear_comment_delete.json")
    answer(fake, "CommentDelete", "linear_error_not_found.json")

    client.delete_card("ENG-142", "issue", COMMENT_ID)
    client.delete_card("ENG-142", "issue", COMMENT_ID)

    assert len(fake.calls) == 2


def test_publish_status_writes_nothing(fake: responses.RequestsMock, client: LinearClient) -> None:
    client.publish_status("ENG-142", "issue", {"status": "fail"})

    assert len(fake.calls) == 0


def test_set_label_uses_the_issues_own_team_label(
    fake: responses.RequestsMock, client: LinearClient
) -> None:
    answer(fake, "IssueLabelsOf", "linear_issue_labels_of.json")
    answer(fake, "IssueLabelFind", "linear_issue_label_find.json")
    answer(fake, "IssueAddLabel", "linear_issue_add_label.json")

    client.set_label("ENG-142", "issue", "Outcomes-Missing", True)

    assert sent(fake.calls[1])["variables"] == {"name": "Outcomes-Missing"}
    assert sent(fake.calls[2])["variables"] == {"id": ISSUE_ID, "labelId": "lbl-own-team"}


def test_set_label_creates_a_missing_label_once(
    fake: responses.RequestsMock, client: LinearClient
) -> None:
    answer(fake, "IssueLabelsOf", "linear_issue_labels_of.json")
    answer(fake, "IssueLabelFind", "linear_issue_label_find_none.json")
    answer(fake, "IssueLabelCreate", "linear_issue_label_create.json")
    answer(fake, "IssueAddLabel", "linear_issue_add_label.json")

    client.set_label("ENG-142", "issue", "outcomes-missing", True)
    client.set_label("ENG-142", "issue", "outcomes-missing", True)

    names = [sent(call)["operationName"] for call in fake.calls]
    assert names == [
        "IssueLabelsOf",
        "IssueLabelFind",
        "IssueLabelCreate",
        "IssueAddLabel",
        "IssueLabelsOf",
        "IssueAddLabel",
    ]
    assert sent(fake.calls[2])["variables"] == {
        "input": {"name": "outcomes-missing", "teamId": TEAM_ID}
    }
    assert sent(fake.calls[3])["variables"] == {"id": ISSUE_ID, "labelId": "lbl-created"}


def test_set_label_skips_writes_that_change_nothing(
    fake: responses.RequestsMock, client: LinearClient
) -> None:
    answer(fake, "IssueLabelsOf", "linear_issue_labels_of_flagged.json")
    answer(fake, "IssueLabelsOf", "linear_issue_labels_of.json")

    client.set_label("ENG-142", "issue", "outcomes-missing", True)
    client.set_label("ENG-142", "issue", "outcomes-missing", False)

    assert [sent(call)["operationName"] for call in fake.calls] == [
        "IssueLabelsOf",
        "IssueLabelsOf",
    ]


def test_set_label_removes_an_attached_label(
    fake: responses.RequestsMock, client: LinearClient
) -> None:
    answer(fake, "IssueLabelsOf", "linear_issue_labels_of_flagged.json")
    answer(fake, "IssueRemoveLabel", "linear_issue_remove_label.json")

    client.set_label("ENG-142", "issue", "outcomes-missing", False)

    assert sent(fake.calls[1])["variables"] == {"id": ISSUE_ID, "labelId": "lbl-outcomes"}


def test_set_label_on_a_project_finds_or_creates_a_project_label(
    fake: responses.RequestsMock, client: LinearClient
) -> None:
    answer(fake, "ProjectLabelsOf", "linear_project_labels_of.json")
    answer(fake, "ProjectLabelFind", "linear_project_label_find_none.json")
    answer(fake, "ProjectLabelCreate", "linear_project_label_create.json")
    answer(fake, "ProjectAddLabel", "linear_project_add_label.json")

    client.set_label(PROJECT_ID, "project", "outcomes-missing", True)

    assert sent(fake.calls[2])["variables"] == {"input": {"name": "outcomes-missing"}}
    assert sent(fake.calls[3])["variables"] == {"id": PROJECT_ID, "labelId": "plbl-created"}


def test_list_epics_walks_projects_then_labelled_issues(
    fake: responses.RequestsMock, client: LinearClient
) -> None:
    answer(fake, "EpicProjects", "linear_epic_projects_page1.json")
    answer(fake, "EpicProjects", "linear_epic_projects_page2.json")
    answer(fake, "EpicIssues", "linear_epic_issues_page.json")

    first, cursor = client.list_epics(after=None, first=1)
    second, cursor2 = client.list_epics(after=cursor, first=1)
    third, end = client.list_epics(after=cursor2, first=1, epic_label="Initiative")

    assert [node["name"] for node in first] == ["Activation"]
    assert [node["name"] for node in second] == ["Usage billing"]
    assert [(node["__typename"], node["identifier"]) for node in third] == [("Issue", "ENG-142")]
    assert end is None
    assert sent(fake.calls[0])["variables"] == {"first": 1, "after": None}
    assert sent(fake.calls[1])["variables"] == {"first": 1, "after": "cHJvamVjdHM6MQ=="}
    assert sent(fake.calls[2])["variables"] == {"first": 1, "after": None, "label": "Initiative"}


def test_list_epics_refuses_foreign_cursors(client: LinearClient) -> None:
    with pytest.raises(ValueError, match="cursor"):
        client.list_epics(after="cHJvamVjdHM6MQ==")


def test_ratelimited_arrives_as_http_400(
    fake: responses.RequestsMock, client: LinearClient
) -> None:
    reset_ms = int((datetime.now(UTC) + timedelta(seconds=300)).timestamp() * 1000)
    answer(
        fake,
        "Viewer",
        "linear_error_ratelimited.json",
        status=400,
        headers={
            "X-RateLimit-Requests-Limit": "2500",
            "X-RateLimit-Requests-Remaining": "0",
            "X-RateLimit-Requests-Reset": str(reset_ms),
        },
    )

    with pytest.raises(RateLimited) as caught:
        client.identity()

    assert 290 <= caught.value.retry_after <= 300
    assert caught.value.retryable
    assert caught.value.status == 400


def test_ratelimited_with_a_past_reset_waits_at_least_a_second(
    fake: responses.RequestsMock, client: LinearClient
) -> None:
    past_ms = int((datetime.now(UTC) - timedelta(seconds=5)).timestamp() * 1000)
    answer(
        fake,
        "Viewer",
        "linear_error_ratelimited.json",
        status=400,
        headers={"X-RateLimit-Requests-Reset": str(past_ms)},
    )

    with pytest.raises(RateLimited) as caught:
        client.identity()

    assert caught.value.retry_after == 1.0


def test_http_429_uses_retry_after(fake: responses.RequestsMock, client: LinearClient) -> None:
    fake.post(API, status=429, headers={"Retry-After": "0"})

    with pytest.raises(RateLimited) as caught:
        client.identity()

    assert caught.value.retry_after == 1.0


@pytest.mark.parametrize(
    ("body", "status"),
    [("linear_error_authentication.json", 400), ("linear_error_forbidden.json", 200)],
)
def test_authentication_and_permission_errors(
    fake: responses.RequestsMock, client: LinearClient, body: str, status: int
) -> None:
    answer(fake, "CommentCreate", body, status=status)

    with pytest.raises(AuthFailed) as caught:
        client.post_card("ENG-142", "issue", CARD)

    assert not caught.value.retryable


def test_a_plain_401_is_an_auth_failure(fake: responses.RequestsMock, client: LinearClient) -> None:
    fake.post(API, status=401, body="Unauthorized")

    with pytest.raises(AuthFailed):
        client.identity()


def test_other_graphql_errors_are_bad_requests_with_the_readable_message(
    fake: responses.RequestsMock, client: LinearClient
) -> None:
    answer(fake, "CommentCreate", "linear_error_invalid_input.json")

    with pytest.raises(BadRequest, match="shorter than or equal to 250000") as caught:
        client.post_card("ENG-142", "issue", CARD)

    assert not caught.value.retryable


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_unavailable(
    fake: responses.RequestsMock, client: LinearClient, status: int
) -> None:
    fake.post(API, status=status, body="upstream error", headers={"Retry-After": "20"})

    with pytest.raises(TrackerUnavailable) as caught:
        client.identity()

    assert caught.value.status == status
    assert caught.value.retry_after == 20.0


def test_timeouts_are_unavailable(fake: responses.RequestsMock, client: LinearClient) -> None:
    fake.post(API, body=requests.ConnectTimeout("connect timed out"))

    with pytest.raises(TrackerUnavailable, match="timed out"):
        client.identity()


def test_calls_are_logged_by_operation_without_the_key(
    fake: responses.RequestsMock, client: LinearClient, caplog: pytest.LogCaptureFixture
) -> None:
    answer(fake, "Viewer", "linear_viewer.json")

    with caplog.at_level(logging.DEBUG):
        client.identity()

    ours = [r.getMessage() for r in caplog.records if r.name == "plugin.trackers.linear"]
    assert any("Viewer -> 200" in message for message in ours)
    assert all(KEY not in r.getMessage() for r in caplog.records)


def test_contract_check_catches_a_drifted_document(
    fake: responses.RequestsMock, client: LinearClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(linear, "VIEWER", "query Viewer { viewer { id handle } }")

    with pytest.raises(AssertionError, match="Cannot query field 'handle'"):
        client.identity()


def test_contract_check_catches_drifted_variables(
    fake: responses.RequestsMock, client: LinearClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # commentCreate's input has no "issue" field; Linear would reject the variables.
    original = LinearClient._execute

    def drifted(self: LinearClient, name: str, document: str, variables: Any) -> Any:
        if name == "CommentCreate":
            variables = {"input": {"issue": "ENG-142", "body": "x"}}
        return original(self, name, document, variables)

    monkeypatch.setattr(LinearClient, "_execute", drifted)

    with pytest.raises(AssertionError, match="variables do not fit"):
        client.post_card("ENG-142", "issue", CARD)


def test_callback_fakes_are_contract_checked_too(
    fake: responses.RequestsMock, client: LinearClient
) -> None:
    seen: list[str] = []

    def handler(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        seen.append(json.loads(request.body or b"{}")["operationName"])
        return 200, {"Content-Type": "application/json"}, json.dumps(fixture("linear_viewer.json"))

    fake.add_callback(responses.POST, API, callback=validating_callback(handler))

    assert client.identity() == "0c6e9d7a-3b8e-4a55-9a5e-5f0f3d7c1e21"
    assert seen == ["Viewer"]
