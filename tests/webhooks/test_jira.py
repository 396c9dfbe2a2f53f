"""Parsing Jira deliveries (Cloud and Data Center) into InboundEvents."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhooks.errors import BadPayload, WebhookError
from webhooks.events import Change, InboundEvent, ItemRef
from webhooks.jira import parse_jira_delivery

SHARED_DIR = Path(
    os.environ.get("LEANGUARD_SHARED_DIR") or Path(__file__).resolve().parents[2] / ".." / "shared"
)
FIXTURES = SHARED_DIR / "fixtures" / "jira"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(fixture_bytes(name))
    return value


def parse(payload: dict[str, Any], headers: dict[str, str] | None = None) -> InboundEvent:
    return parse_jira_delivery(json.dumps(payload).encode(), headers or {})


def issue_event(event_type: str = "jira:issue_updated", **extra: Any) -> dict[str, Any]:
    return {
        "timestamp": 1735441883659,
        "webhookEvent": event_type,
        "user": {
            "self": "https://acme.atlassian.net/rest/api/2/user?accountId=1",
            "accountId": "1",
        },
        "issue": {
            "id": "10021",
            "self": "https://acme.atlassian.net/rest/api/2/10021",
            "key": "KAN-22",
        },
        **extra,
    }


class TestFixtures:
    def test_cloud_issue_created_rechecks_the_issue_and_lists_initial_values(self) -> None:
        event = parse_jira_delivery(
            fixture_bytes("cloud_jira_issue_created_with_changelog.json"), {}
        )

        assert event.tracker == "jira"
        assert event.event_type == "jira:issue_created"
        assert event.needs_work is True
        assert event.refs == (ItemRef("jira", "KAN-22"),)
        assert event.site == "https://helloworld-test.atlassian.net"
        assert event.actor_id == "712020:f1ad7cfd-7f82-4dc0-85e4-8bc47bcc08e4"
        assert event.occurred_at == datetime(2024, 12, 29, 3, 11, 23, 659000, tzinfo=UTC)
        assert [c.field for c in event.changes] == [
            "assignee",
            "description",
            "priority",
            "reporter",
            "status",
            "summary",
        ]
        assert Change("status", None, "To Do") in event.changes

    def test_changes_key_on_field_id_not_the_display_name(self) -> None:
        event = parse_jira_delivery(
            fixture_bytes("cloud_jira_issue_created_with_changelog.json"), {}
        )
        # The fixture's display name is "Status"; its fieldId is "status".
        assert "Status" not in {c.field for c in event.changes}

    def test_data_center_update_uses_user_key_and_context_path(self) -> None:
        event = parse_jira_delivery(fixture_bytes("server_jira_issue_updated_status.json"), {})

        assert event.event_type == "jira:issue_updated"
        assert event.refs == (ItemRef("jira", "TEST-11"),)
        # Data Center users have name/key and no accountId; the site keeps its context path.
        assert event.actor_id == "admin"
        assert event.site == "http://localhost:2990/jira"
        # Older Data Center items have no fieldId; the field name stands in.
        assert event.changes == (
            Change("resolution", "Fixed", "Done"),
            Change("status", "To Do", "Done"),
        )

    def test_comment_is_stored_but_needs_no_work(self) -> None:
        event = parse_jira_delivery(fixture_bytes("cloud_comment_created.json"), {})

        assert event.event_type == "comment_created"
        assert event.needs_work is False
        assert event.refs == ()
        assert event.site == "https://jira-trigger-plugin.atlassian.net"
        # Comment events carry no user; the comment's author acted.
        assert event.actor_id == "557058:eb43b4a2-fad1-4ff6-a2d9-38eee0b088b9"

    def test_issue_link_rechecks_both_ends_by_id_and_tolerates_extra_keys(self) -> None:
        # This capture has logging keys added by its authors and a string timestamp.
        event = parse_jira_delivery(fixture_bytes("issuelink_created.json"), {})

        assert event.event_type == "issuelink_created"
        assert event.needs_work is True
        assert event.refs == (ItemRef("jira", "11442"), ItemRef("jira", "11961"))
        assert event.occurred_at is None
        assert event.site == ""
        assert event.actor_id is None

    @pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.json")))
    def test_every_fixture_round_trips_through_json(self, name: str) -> None:
        event = parse_jira_delivery(fixture_bytes(name), {})
        stored = json.loads(json.dumps(event.to_dict()))
        assert InboundEvent.from_dict(stored) == event
        assert stored["payload"] == fixture(name)


class TestEventTypes:
    def test_issue_updated_reports_changelog_items(self) -> None:
        changelog = {
            "id": "1",
            "items": [
                {"field": "Статус", "fieldId": "status", "fromString": "Open", "toString": "Done"},
                {"field": "labels", "fromString": "", "toString": "lean-exempt"},
                {"fieldId": "customfield_10050", "fromString": None, "toString": "We believe"},
                {"fromString": "nameless item is skipped"},
                "not an object",
            ],
        }
        event = parse(issue_event(changelog=changelog))

        assert event.changes == (
            Change("status", "Open", "Done"),
            Change("labels", "", "lean-exempt"),
            Change("customfield_10050", None, "We believe"),
        )

    def test_issue_updated_without_changelog_has_no_changes(self) -> None:
        assert parse(issue_event()).changes == ()

    def test_issue_deleted_marks_the_item_deleted(self) -> None:
        event = parse(issue_event("jira:issue_deleted"))
        assert event.needs_work is True
        assert event.refs == (ItemRef("jira", "KAN-22", deleted=True),)

    def test_issue_link_deleted_rechecks_both_ends(self) -> None:
        payload = {
            "timestamp": 1,
            "webhookEvent": "issuelink_deleted",
            "issueLink": {"id": 5, "sourceIssueId": "10001", "destinationIssueId": 10002},
        }
        assert parse(payload).refs == (ItemRef("jira", "10001"), ItemRef("jira", "10002"))

    def test_self_link_yields_one_ref(self) -> None:
        payload = {
            "webhookEvent": "issuelink_created",
            "issueLink": {"sourceIssueId": 7, "destinationIssueId": 7},
        }
        assert parse(payload).refs == (ItemRef("jira", "7"),)

    @pytest.mark.parametrize(
        "event_type", ["comment_created", "comment_updated", "comment_deleted"]
    )
    def test_comments_never_need_work(self, event_type: str) -> None:
        event = parse(issue_event(event_type, comment={"id": "1", "body": "hi"}))
        assert (event.needs_work, event.refs) == (False, ())

    @pytest.mark.parametrize("event_type", ["worklog_updated", "jira:version_released", "board_x"])
    def test_unknown_events_are_kept_but_need_no_work(self, event_type: str) -> None:
        event = parse({"webhookEvent": event_type})
        assert (event.event_type, event.needs_work, event.refs) == (event_type, False, ())

    def test_data_center_user_without_key_falls_back_to_name(self) -> None:
        payload = issue_event(
            user={"name": "jdoe", "self": "https://jira.acme.org/rest/api/2/user"}
        )
        event = parse(payload)
        assert event.actor_id == "jdoe"
        # issue.self wins over user.self for the site.
        assert event.site == "https://acme.atlassian.net"

    def test_site_is_normalised_and_empty_when_no_rest_link(self) -> None:
        upper = issue_event(issue={"key": "A-1", "self": "HTTPS://Jira.Acme.ORG/ctx/rest/api/2/1"})
        assert parse(upper).site == "https://jira.acme.org/ctx"
        no_link = issue_event(issue={"key": "A-1", "self": "ftp://x/rest/"}, user={})
        assert parse(no_link).site == ""

    @pytest.mark.parametrize(
        ("timestamp", "expected"),
        [
            (1735441883659, datetime(2024, 12, 29, 3, 11, 23, 659000, tzinfo=UTC)),
            ("1735441883659", datetime(2024, 12, 29, 3, 11, 23, 659000, tzinfo=UTC)),
            ("2018-12-18 11:57:24,746", None),
            (True, None),
            (10**30, None),
            (None, None),
        ],
    )
    def test_timestamp_is_epoch_millis_and_tolerated_when_odd(
        self, timestamp: Any, expected: datetime | None
    ) -> None:
        assert parse(issue_event(timestamp=timestamp)).occurred_at == expected


class TestDeliveryId:
    def test_atlassian_identifier_header_is_the_delivery_id(self) -> None:
        event = parse(issue_event(), {"X-Atlassian-Webhook-Identifier": "4f1b-retry-stable"})
        assert event.delivery_id == "4f1b-retry-stable"

    def test_header_name_matches_case_insensitively(self) -> None:
        event = parse(issue_event(), {"x-atlassian-webhook-identifier": "abc"})
        assert event.delivery_id == "abc"

    def test_without_header_the_raw_body_hash_is_used(self) -> None:
        body = fixture_bytes("server_jira_issue_updated_status.json")
        event = parse_jira_delivery(body, {})
        assert event.delivery_id == "sha256:" + hashlib.sha256(body).hexdigest()

    def test_same_body_gives_same_id_so_retries_dedupe(self) -> None:
        body = fixture_bytes("server_jira_issue_updated_status.json")
        assert (
            parse_jira_delivery(body, {}).delivery_id == parse_jira_delivery(body, {}).delivery_id
        )

    def test_overlong_identifier_is_refused(self) -> None:
        with pytest.raises(BadPayload, match="X-Atlassian-Webhook-Identifier"):
            parse(issue_event(), {"X-Atlassian-Webhook-Identifier": "x" * 256})


class TestBadPayloads:
    @pytest.mark.parametrize(
        "body",
        [b"", b"not json", b"\xff\xfe\x00", b"[1, 2]", b'"text"', b"null", b'{"a": NaN}'],
    )
    def test_body_that_is_not_a_json_object_is_refused(self, body: bytes) -> None:
        with pytest.raises(BadPayload) as caught:
            parse_jira_delivery(body, {})
        assert (caught.value.status, caught.value.code) == (400, "bad_payload")

    def test_absurdly_nested_json_is_refused(self) -> None:
        with pytest.raises(BadPayload, match="not valid JSON"):
            parse_jira_delivery(b"[" * 100_000 + b"]" * 100_000, {})

    @pytest.mark.parametrize("value", [None, "", 3, ["jira:issue_updated"]])
    def test_missing_webhook_event_is_refused(self, value: Any) -> None:
        with pytest.raises(BadPayload, match="webhookEvent"):
            parse({"webhookEvent": value, "issue": {"key": "A-1"}})

    @pytest.mark.parametrize("issue", [None, "A-1", {}, {"key": ""}, {"key": 12}])
    def test_issue_event_without_key_names_issue_key(self, issue: Any) -> None:
        with pytest.raises(BadPayload, match=r"issue\.key"):
            parse(issue_event(issue=issue))

    @pytest.mark.parametrize("key", ["../A-1", "A-1/comment", "A-1?x=1", "A 1", "-1", "A-"])
    def test_issue_key_that_could_alter_a_rest_path_is_refused(self, key: str) -> None:
        with pytest.raises(BadPayload, match="not a Jira issue key"):
            parse(issue_event(issue={"key": key}))

    @pytest.mark.parametrize(
        "link",
        [None, {}, {"sourceIssueId": 1}, {"sourceIssueId": True, "destinationIssueId": 2}],
    )
    def test_issue_link_without_both_ids_is_refused(self, link: Any) -> None:
        with pytest.raises(BadPayload, match="issueLink"):
            parse({"webhookEvent": "issuelink_created", "issueLink": link})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
issue_keys = st.sampled_from(["KAN-1", "A_B-22", "bad key"]) | json_values
envelopes = st.fixed_dictionaries(
    {
        "webhookEvent": st.sampled_from(
            [
                "jira:issue_created",
                "jira:issue_updated",
                "jira:issue_deleted",
                "issuelink_created",
                "comment_created",
            ]
        )
        | json_values,
    },
    optional={
        "timestamp": json_values,
        "issue": st.fixed_dictionaries({}, optional={"key": issue_keys, "self": json_values})
        | json_values,
        "user": json_values,
        "comment": json_values,
        "changelog": st.fixed_dictionaries({"items": st.lists(json_values, max_size=3)})
        | json_values,
        "issueLink": st.fixed_dictionaries(
            {}, optional={"sourceIssueId": json_values, "destinationIssueId": json_values}
        )
        | json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(envelopes)
def test_any_envelope_parses_or_is_refused_with_a_webhook_error(payload: dict[str, Any]) -> None:
    try:
        event = parse(payload)
    except WebhookError as error:
        assert error.status == 400
        return
    assert InboundEvent.from_dict(json.loads(json.dumps(event.to_dict()))) == event
    assert event.needs_work == bool(event.refs)
