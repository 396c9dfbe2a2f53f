"""Parsing Linear deliveries into InboundEvents, with the signed timestamp's replay window."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhooks.errors import BadPayload, StaleDelivery, WebhookError
from webhooks.events import Change, InboundEvent, ItemRef
from webhooks.linear import parse_linear_delivery

SHARED_DIR = Path(
    os.environ.get("LEANGUARD_SHARED_DIR") or Path(__file__).resolve().parents[2] / ".." / "shared"
)
FIXTURES = SHARED_DIR / "fixtures" / "linear"

SENT_AT_MS = 1_779_947_631_560
ISSUE_ID = "3443a709-f2b5-46f2-a136-a0445fd432be"
PROJECT_ID = "e65b2421-bad1-4075-bfd4-24be439c83f9"


def clock(ms: float) -> Callable[[], float]:
    """Return a clock (seconds) that reads ``ms`` milliseconds since the epoch."""
    return lambda: ms / 1000


def fixture(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((FIXTURES / name).read_bytes())
    return value


def parse_fixture(name: str) -> InboundEvent:
    body = (FIXTURES / name).read_bytes()
    # Captures are old: read them with a clock set to their own send time.
    return parse_linear_delivery(body, {}, now=clock(json.loads(body)["webhookTimestamp"]))


def parse(payload: dict[str, Any], headers: dict[str, str] | None = None) -> InboundEvent:
    return parse_linear_delivery(json.dumps(payload).encode(), headers or {}, now=clock(SENT_AT_MS))


def envelope(resource: str = "Issue", action: str = "update", **extra: Any) -> dict[str, Any]:
    return {
        "action": action,
        "type": resource,
        "createdAt": "2026-05-28T05:53:50.732Z",
        "data": {"id": ISSUE_ID, "updatedAt": "2026-05-28T05:53:50.732Z"},
        "organizationId": "org-1",
        "webhookTimestamp": SENT_AT_MS,
        **extra,
    }


class TestFixtures:
    def test_issue_create_rechecks_the_issue(self) -> None:
        event = parse_fixture("01_issue_create_with_labels.json")

        assert event.tracker == "linear"
        assert event.event_type == "Issue.create"
        assert event.needs_work is True
        assert event.refs == (ItemRef("linear", ISSUE_ID, "issue"),)
        assert event.site == "7a661544-df08-4cd1-a1e3-5ec611898806"
        # 2023-era payloads have no actor.
        assert event.actor_id is None
        assert event.changes == ()
        assert event.occurred_at == datetime(2023, 4, 11, 10, 10, 15, 37000, tzinfo=UTC)

    def test_issue_update_reports_updated_from_keys(self) -> None:
        event = parse_fixture("02_issue_update_updatedFrom.json")

        assert event.event_type == "Issue.update"
        assert event.refs == (ItemRef("linear", ISSUE_ID, "issue"),)
        assert event.changes == (
            Change("updatedAt", "2023-04-11T10:13:05.980Z", "2023-04-11T10:16:53.022Z"),
            Change(
                "title",
                "This is regarding the outage that we faced during 11/12/22 from 2000 to 2200.",
                "This is regarding the outage that we faced on 11/12/22 from 2000 to 2200"
                " and also on 25/12/22 from 0000 to 0230",
            ),
        )

    def test_project_create_rechecks_the_project(self) -> None:
        event = parse_fixture("05_project_create.json")

        assert event.event_type == "Project.create"
        assert event.refs == (ItemRef("linear", PROJECT_ID, "project"),)
        assert event.actor_id == "e825c109-f691-4716-a85f-b68a2626531c"
        assert event.site == "498d97b2-c819-42cc-8d65-7bffd494ed23"

    def test_comment_is_stored_but_needs_no_work(self) -> None:
        event = parse_fixture("07_comment_create_issue.json")

        assert event.event_type == "Comment.create"
        assert (event.needs_work, event.refs) == (False, ())
        # No actor in this capture: the comment's author stands in.
        assert event.actor_id == "674c90c8-35ea-454d-8ca4-5548258fd795"

    @pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.json")))
    def test_every_fixture_round_trips_through_json(self, name: str) -> None:
        event = parse_fixture(name)
        stored = json.loads(json.dumps(event.to_dict()))
        assert InboundEvent.from_dict(stored) == event
        assert stored["payload"] == fixture(name)


class TestFreshness:
    def test_delivery_within_the_window_is_accepted(self) -> None:
        body = json.dumps(envelope()).encode()
        for skew_ms in (-60_000, -1, 0, 1, 60_000):
            parse_linear_delivery(body, {}, now=clock(SENT_AT_MS + skew_ms))

    def test_delivery_older_than_60_seconds_is_stale(self) -> None:
        body = json.dumps(envelope()).encode()
        with pytest.raises(StaleDelivery, match="sent 61 s ago; the limit is 60 s") as caught:
            parse_linear_delivery(body, {}, now=clock(SENT_AT_MS + 61_000))
        assert (caught.value.status, caught.value.code) == (401, "stale_timestamp")

    def test_delivery_dated_in_the_future_is_stale(self) -> None:
        body = json.dumps(envelope()).encode()
        with pytest.raises(StaleDelivery, match="61 s in the future"):
            parse_linear_delivery(body, {}, now=clock(SENT_AT_MS - 61_000))

    def test_tolerance_can_be_narrowed(self) -> None:
        body = json.dumps(envelope()).encode()
        with pytest.raises(StaleDelivery):
            parse_linear_delivery(body, {}, now=clock(SENT_AT_MS + 6_000), tolerance_s=5)

    @pytest.mark.parametrize("timestamp", [None, "1779947631560", True, [SENT_AT_MS], 10**400])
    def test_missing_or_unusable_timestamp_is_stale(self, timestamp: Any) -> None:
        payload = envelope()
        payload["webhookTimestamp"] = timestamp
        with pytest.raises(StaleDelivery):
            parse(payload)

    def test_freshness_is_checked_before_the_shape(self) -> None:
        # A replayed body is refused as stale even when it is malformed otherwise.
        with pytest.raises(StaleDelivery):
            parse_linear_delivery(b'{"type": 1}', {}, now=clock(SENT_AT_MS))


class TestEventTypes:
    def test_issue_remove_marks_the_item_deleted(self) -> None:
        event = parse(envelope(action="remove"))
        assert event.refs == (ItemRef("linear", ISSUE_ID, "issue", deleted=True),)
        assert event.needs_work is True

    @pytest.mark.parametrize(("action", "deleted"), [("update", False), ("remove", True)])
    def test_project_events_use_kind_project(self, action: str, deleted: bool) -> None:
        event = parse(envelope("Project", action, data={"id": PROJECT_ID}))
        assert event.refs == (ItemRef("linear", PROJECT_ID, "project", deleted=deleted),)

    def test_customer_need_rechecks_the_linked_issue(self) -> None:
        event = parse(envelope("CustomerNeed", "create", data={"id": "n1", "issueId": ISSUE_ID}))
        assert (event.needs_work, event.refs) == (True, (ItemRef("linear", ISSUE_ID, "issue"),))

    def test_customer_need_rechecks_the_linked_project(self) -> None:
        data = {"id": "n1", "projectId": PROJECT_ID}
        event = parse(envelope("CustomerNeed", "remove", data=data))
        # Removing a need leaves the project in place: re-check it, not delete it.
        assert event.refs == (ItemRef("linear", PROJECT_ID, "project"),)

    def test_customer_need_moved_rechecks_old_and_new_item(self) -> None:
        data = {"id": "n1", "issueId": ISSUE_ID}
        event = parse(envelope("CustomerNeed", data=data, updatedFrom={"issueId": "old-issue"}))
        assert event.refs == (
            ItemRef("linear", ISSUE_ID, "issue"),
            ItemRef("linear", "old-issue", "issue"),
        )

    def test_customer_need_without_a_linked_item_needs_no_work(self) -> None:
        event = parse(envelope("CustomerNeed", "create", data={"id": "n1", "customerId": "c"}))
        assert (event.needs_work, event.refs) == (False, ())

    @pytest.mark.parametrize("resource", ["Comment", "Cycle", "IssueLabel", "Reaction"])
    def test_other_resources_need_no_work(self, resource: str) -> None:
        event = parse(envelope(resource, "create"))
        assert (event.event_type, event.needs_work, event.refs) == (f"{resource}.create", False, ())

    def test_label_changes_are_reported_as_id_lists(self) -> None:
        data = {"id": ISSUE_ID, "labelIds": ["epic", "bug"], "priority": 2, "trashed": None}
        event = parse(
            envelope(data=data, updatedFrom={"labelIds": ["bug"], "priority": 1, "trashed": True})
        )
        assert event.changes == (
            Change("labelIds", '["bug"]', '["epic","bug"]'),
            Change("priority", "1", "2"),
            Change("trashed", "True", None),
        )

    def test_actor_is_preferred_over_comment_author(self) -> None:
        data = {"id": "c1", "userId": "author"}
        event = parse(envelope("Comment", "create", data=data, actor={"id": "u1", "type": "user"}))
        assert event.actor_id == "u1"

    def test_occurred_at_is_the_event_time_in_utc(self) -> None:
        event = parse(envelope(createdAt="2026-05-28T07:53:50.732+02:00"))
        assert event.occurred_at == datetime(2026, 5, 28, 5, 53, 50, 732000, tzinfo=UTC)

    @pytest.mark.parametrize("created_at", [None, 5, "yesterday", "0001-01-01T00:00:00+01:00"])
    def test_occurred_at_falls_back_to_the_send_time(self, created_at: Any) -> None:
        payload = envelope(createdAt=created_at)
        assert parse(payload).occurred_at == datetime.fromtimestamp(SENT_AT_MS / 1000, tz=UTC)

    def test_site_is_empty_without_organization(self) -> None:
        payload = envelope()
        del payload["organizationId"]
        assert parse(payload).site == ""


class TestDeliveryId:
    def test_linear_delivery_header_is_the_delivery_id(self) -> None:
        event = parse(envelope(), {"Linear-Delivery": "9f1c2d7e-delivery"})
        assert event.delivery_id == "9f1c2d7e-delivery"

    def test_without_header_a_content_key_is_hashed(self) -> None:
        key = f"Issue|{ISSUE_ID}|update|2026-05-28T05:53:50.732Z"
        expected = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
        assert parse(envelope()).delivery_id == expected

    def test_content_key_ignores_the_send_time_so_retries_dedupe(self) -> None:
        first = envelope()
        retry = envelope(webhookTimestamp=SENT_AT_MS + 30_000)
        assert parse(first).delivery_id == parse(retry).delivery_id

    def test_content_key_differs_per_action(self) -> None:
        assert parse(envelope()).delivery_id != parse(envelope(action="remove")).delivery_id


class TestBadPayloads:
    @pytest.mark.parametrize("body", [b"", b"{", b"[]", b"\xc3\x28"])
    def test_body_that_is_not_a_json_object_is_refused(self, body: bytes) -> None:
        with pytest.raises(BadPayload) as caught:
            parse_linear_delivery(body, {}, now=clock(SENT_AT_MS))
        assert (caught.value.status, caught.value.code) == (400, "bad_payload")

    @pytest.mark.parametrize(
        ("key", "value", "named"),
        [
            ("type", None, "type"),
            ("type", "", "type"),
            ("action", 3, "action"),
            ("data", None, "data"),
            ("data", [1], "data"),
            ("updatedFrom", "title", "updatedFrom"),
        ],
    )
    def test_wrong_shape_names_the_key(self, key: str, value: Any, named: str) -> None:
        payload = envelope()
        payload[key] = value
        with pytest.raises(BadPayload, match=named):
            parse(payload)

    @pytest.mark.parametrize("item_id", [None, "", 42, "../x", "a/b"])
    def test_issue_without_usable_id_is_refused(self, item_id: Any) -> None:
        with pytest.raises(BadPayload, match=r"data\.id"):
            parse(envelope(data={"id": item_id}))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
ids = st.sampled_from([ISSUE_ID, "bad/id"]) | json_values
envelopes = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["Issue", "Project", "CustomerNeed", "Comment"]) | json_values,
        "action": st.sampled_from(["create", "update", "remove"]) | json_values,
        "data": st.fixed_dictionaries(
            {},
            optional={
                "id": ids,
                "issueId": ids,
                "projectId": ids,
                "updatedAt": json_values,
                "userId": json_values,
            },
        )
        | json_values,
        "webhookTimestamp": st.just(SENT_AT_MS) | json_values,
    },
    optional={
        "updatedFrom": st.dictionaries(st.text(max_size=8), json_values, max_size=3) | json_values,
        "actor": json_values,
        "organizationId": json_values,
        "createdAt": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(envelopes)
def test_any_envelope_parses_or_is_refused_with_a_webhook_error(payload: dict[str, Any]) -> None:
    try:
        event = parse(payload)
    except WebhookError as error:
        assert error.status in (400, 401)
        return
    assert InboundEvent.from_dict(json.loads(json.dumps(event.to_dict()))) == event
    assert event.needs_work == bool(event.refs)
