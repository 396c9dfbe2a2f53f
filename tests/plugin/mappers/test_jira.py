"""Jira issues and webhooks become work items that say what Jira says, whatever the shape."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.strategies import json_values

from plugin.mappers.jira import jira_issue_to_item, jira_site_of, jira_webhook_to_item
from rules.model import Link, Person, StatusCategory

REPO = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("LEANGUARD_SHARED_DIR") or REPO.parent / "shared") / "fixtures"
OWN = Path(__file__).resolve().parent / "fixtures"


def load(path: Path) -> dict[str, Any]:
    """Read a JSON fixture."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def issue_with(**fields: Any) -> dict[str, Any]:
    """Build a minimal Cloud issue around the given fields."""
    return {
        "id": "10001",
        "key": "ACME-1",
        "self": "https://acme.atlassian.net/rest/api/3/issue/10001",
        "fields": {"summary": "An epic", **fields},
    }


# Real webhook payloads.


def test_cloud_issue_created_webhook_maps_the_issue_with_its_people_and_dates() -> None:
    payload = load(SHARED / "jira" / "cloud_jira_issue_created_with_changelog.json")

    item = jira_webhook_to_item(payload)

    assert item is not None
    assert (item.tracker, item.key, item.id) == ("jira", "KAN-22", "10021")
    assert item.title == "Add back button to pages"
    assert (item.kind, item.type_name, item.project) == ("task", "Task", "KAN")
    assert item.site == "https://helloworld-test.atlassian.net"
    assert item.url == "https://helloworld-test.atlassian.net/browse/KAN-22"
    assert item.description.startswith("Add back button navigation to all list pages.")
    assert (item.status, item.status_category) == ("To Do", StatusCategory.TODO)
    owner = Person(name="Sirajudheen MK", id="712020:f1ad7cfd-7f82-4dc0-85e4-8bc47bcc08e4")
    assert item.assignee == owner
    assert item.reporter == owner
    india = timezone(timedelta(hours=5, minutes=30))
    assert item.created == datetime(2024, 12, 29, 8, 41, 23, 303000, tzinfo=india)
    assert item.labels == ()
    assert item.links == ()
    assert item.parent is None


def test_custom_fields_without_a_known_name_are_left_out() -> None:
    payload = load(SHARED / "jira" / "cloud_jira_issue_created_with_changelog.json")

    item = jira_webhook_to_item(payload)

    assert item is not None
    assert item.fields == {}


def test_data_center_webhook_identifies_people_by_username_and_keeps_the_context_path() -> None:
    payload = load(SHARED / "jira" / "server_jira_issue_updated_status.json")

    item = jira_webhook_to_item(payload)

    assert item is not None
    assert item.key == "TEST-11"
    assert item.site == "http://localhost:2990/jira"
    assert item.url == "http://localhost:2990/jira/browse/TEST-11"
    assert item.assignee == Person(name="admin", id="admin")
    assert (item.status, item.status_category) == ("Done", StatusCategory.DONE)
    assert item.description == "description updated"
    assert item.created == datetime(2016, 1, 6, 20, 16, 41, 463000, tzinfo=UTC)


def test_comment_event_still_maps_its_trimmed_issue() -> None:
    payload = load(SHARED / "jira" / "cloud_comment_created.json")

    item = jira_webhook_to_item(payload)

    assert item is not None
    assert (item.key, item.title, item.kind, item.project) == ("TEST-24", "test", "task", "TEST")
    assert item.status_category is StatusCategory.TODO
    assert item.assignee is None
    assert item.description == ""


def test_issuelink_event_carries_no_item() -> None:
    payload = load(SHARED / "jira" / "issuelink_created.json")

    assert jira_webhook_to_item(payload) is None


def test_webhook_whose_issue_has_no_fields_carries_no_item() -> None:
    payload = {"webhookEvent": "jira:issue_updated", "issue": {"id": "1", "key": "ACME-1"}}

    assert jira_webhook_to_item(payload) is None


def test_webhook_site_argument_wins_over_the_self_link() -> None:
    payload = {"webhookEvent": "jira:issue_created", "issue": issue_with()}

    item = jira_webhook_to_item(payload, site="https://jira.acme.example/")

    assert item is not None
    assert item.site == "https://jira.acme.example"
    assert item.url == "https://jira.acme.example/browse/ACME-1"


# REST v3 with expand=names and ADF.


@pytest.fixture
def v3_epic() -> dict[str, Any]:
    """A REST v3 epic with ``names`` expanded, an ADF description and custom fields."""
    return load(OWN / "jira_v3_epic_names.json")


def test_v3_epic_is_an_epic_in_its_project(v3_epic: dict[str, Any]) -> None:
    item = jira_issue_to_item(v3_epic)

    assert (item.kind, item.type_name) == ("epic", "Epic")
    assert (item.key, item.project) == ("ACME-42", "ACME")
    assert item.url == "https://acme.atlassian.net/browse/ACME-42"
    assert item.labels == ("billing", "q3-bet")
    assert item.status_category is StatusCategory.IN_PROGRESS
    assert item.assignee == Person(name="Priya Raman", id="5b10ac8d82e05b22cc7d4ef5")


def test_adf_description_becomes_text_with_sections(v3_epic: dict[str, Any]) -> None:
    item = jira_issue_to_item(v3_epic)

    headings = [section.heading for section in item.sections]
    assert headings == ["Problem statement", "Scope"]
    assert "38 tickets a month" in item.sections[0].body
    assert "Problem statement" in item.description
    assert "Rendered HTML" not in item.description


def test_custom_fields_are_read_by_their_display_name_as_text(v3_epic: dict[str, Any]) -> None:
    item = jira_issue_to_item(v3_epic)

    assert item.fields["Hypothesis"].startswith("We believe an in-app upgrade button")
    assert item.fields["Success metric"] == (
        "Self-serve upgrades from 4% to 9% of Team admins by 30 June"
    )
    assert item.fields["Customer segment"] == "SMB"
    assert item.fields["Teams involved"] == "Billing, Growth"
    assert item.fields["Region"] == "EMEA / DACH"
    assert item.fields["Product owner"] == "Priya Raman"
    assert item.fields["Story point estimate"] == "8"
    assert item.fields["Sprint"] == "Billing Sprint 12"


def test_empty_and_unnamed_custom_fields_are_skipped(v3_epic: dict[str, Any]) -> None:
    item = jira_issue_to_item(v3_epic)

    assert "Customer problem" not in item.fields
    assert "Parent Link" not in item.fields
    assert "A field the caller has no name for" not in item.fields.values()


def test_field_names_from_the_field_list_fill_in_what_the_issue_does_not_name(
    v3_epic: dict[str, Any],
) -> None:
    item = jira_issue_to_item(v3_epic, field_names={"customfield_10099": "Research notes"})

    assert item.fields["Research notes"] == "A field the caller has no name for"
    assert item.fields["Customer segment"] == "SMB"


def test_field_names_alone_are_enough_without_expand_names(v3_epic: dict[str, Any]) -> None:
    del v3_epic["names"]

    item = jira_issue_to_item(v3_epic, field_names={"customfield_10051": "Success metric"})

    assert set(item.fields) == {"Success metric"}


def test_links_say_how_the_target_relates_to_the_epic(v3_epic: dict[str, Any]) -> None:
    item = jira_issue_to_item(v3_epic)

    hypothesis, idea, blocker = item.links
    assert hypothesis == Link(
        relation="is tested by",
        direction="inward",
        target_key="ACME-77",
        link_type="Tests",
        target_type="Hypothesis",
        target_title="Admins upgrade on their own when the button is one click away",
        target_status="Open",
    )
    assert (blocker.relation, blocker.direction, blocker.target_status) == (
        "is blocked by",
        "inward",
        "Done",
    )
    assert blocker.target_project_type == ""
    assert (idea.relation, idea.direction, idea.target_key) == ("implements", "outward", "IDEA-9")


def test_a_product_discovery_idea_link_is_marked_as_such(v3_epic: dict[str, Any]) -> None:
    item = jira_issue_to_item(v3_epic)

    idea = next(link for link in item.links if link.target_key == "IDEA-9")
    assert idea.link_type == "Polaris work item link"
    assert idea.target_type == "Idea"
    assert idea.target_project_type == "product_discovery"


@pytest.mark.parametrize(
    ("link_type", "target_type", "expected"),
    [
        ("Polaris datapoint issue link", "Insight", "product_discovery"),
        ("Relates", "Idea", "product_discovery"),
        ("Relates", "Story", ""),
    ],
)
def test_product_discovery_is_recognised_by_link_type_or_target_type(
    link_type: str, target_type: str, expected: str
) -> None:
    link = {
        "type": {"name": link_type, "inward": "is linked from", "outward": "links to"},
        "outwardIssue": {"key": "IDEA-1", "fields": {"issuetype": {"name": target_type}}},
    }

    item = jira_issue_to_item(issue_with(issuelinks=[link]))

    assert item.links[0].target_project_type == expected


def test_a_link_target_project_type_is_taken_when_jira_sends_it() -> None:
    target = {"key": "PD-3", "fields": {"project": {"projectTypeKey": "product_discovery"}}}
    link = {"type": {"name": "Relates", "outward": "relates to"}, "outwardIssue": target}

    item = jira_issue_to_item(issue_with(issuelinks=[link]))

    assert item.links[0].target_project_type == "product_discovery"


# REST v2 on Data Center with wiki markup.


@pytest.fixture
def dc_story() -> dict[str, Any]:
    """A REST v2 Data Center story with a wiki-markup description and an Epic Link."""
    return load(OWN / "jira_v2_dc_story_wiki.json")


def test_wiki_description_is_split_at_its_headings(dc_story: dict[str, Any]) -> None:
    item = jira_issue_to_item(dc_story)

    sections = {section.heading: section for section in item.sections}
    assert sections["Customer problem"].body.startswith("Returning shoppers must log in again")
    assert sections["Customer problem"].level == 2
    assert sections["Hypothesis"].body.startswith("We believe that letting returning shoppers")
    assert sections["Success metric"].body == "cart abandonment from 31% to 24% by the end of Q1"


def test_legacy_epic_link_field_gives_the_parent(dc_story: dict[str, Any]) -> None:
    item = jira_issue_to_item(dc_story)

    assert item.parent == "CHK-1"


def test_data_center_story_keeps_site_people_and_fields(dc_story: dict[str, Any]) -> None:
    item = jira_issue_to_item(dc_story)

    assert (item.kind, item.type_name) == ("story", "Story")
    assert item.site == "https://jira.example.org/jira"
    assert item.url == "https://jira.example.org/jira/browse/CHK-7"
    assert item.assignee == Person(name="Mara Weber", id="mweber")
    assert item.reporter == Person(name="Jonas Doe", id="jdoe")
    assert item.fields["Channels"] == "Web, iOS"
    assert item.fields["Story Points"] == "5"
    assert "Customer problem" not in item.fields  # an empty string is no value
    assert item.links[0].target_status == "In Review"


# Single rules.


@pytest.mark.parametrize(
    ("issuetype", "kind"),
    [
        ({"name": "Epic", "hierarchyLevel": 1}, "epic"),
        ({"name": "Epic"}, "epic"),
        ({"name": "Feature", "hierarchyLevel": 1}, "epic"),
        ({"name": "Sub-task", "subtask": True, "hierarchyLevel": -1}, "subtask"),
        ({"name": "Subtarefa", "subtask": True}, "subtask"),
        ({"name": "Story", "hierarchyLevel": 0}, "story"),
        ({"name": "Task"}, "task"),
        ({"name": "Bug"}, "bug"),
        ({"name": "Idea"}, "idea"),
        ({"name": "Hypothesis"}, "hypothesis"),
        ({}, "issue"),
    ],
)
def test_kind_follows_the_issue_type(issuetype: dict[str, Any], kind: str) -> None:
    item = jira_issue_to_item(issue_with(issuetype=issuetype))

    assert item.kind == kind
    assert item.type_name == issuetype.get("name", "")


@pytest.mark.parametrize(
    ("status", "category"),
    [
        ({"name": "Backlog", "statusCategory": {"key": "new"}}, StatusCategory.TODO),
        ({"name": "Doing", "statusCategory": {"key": "indeterminate"}}, StatusCategory.IN_PROGRESS),
        ({"name": "Shipped", "statusCategory": {"key": "done"}}, StatusCategory.DONE),
        ({"name": "Closed"}, StatusCategory.DONE),
        ({"name": "resolved"}, StatusCategory.DONE),
        ({"name": "In Review"}, StatusCategory.IN_PROGRESS),
        ({"name": "In  progress"}, StatusCategory.IN_PROGRESS),
        ({"name": "Open"}, StatusCategory.TODO),
        ({"name": "Open", "statusCategory": {"key": "undefined"}}, StatusCategory.TODO),
        ({}, None),
    ],
)
def test_status_category_comes_from_jira_or_is_guessed_from_the_name(
    status: dict[str, Any], category: StatusCategory | None
) -> None:
    item = jira_issue_to_item(issue_with(status=status))

    assert item.status_category is category


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("Plain text", "Plain text"),
        (
            {
                "type": "doc",
                "version": 1,
                "content": [{"type": "paragraph", "content": [{"type": "text", "text": "ADF"}]}],
            },
            "ADF",
        ),
        ({"value": "Option", "id": "1"}, "Option"),
        ({"value": "Parent", "child": {"value": "Child"}}, "Parent / Child"),
        ({"name": "Version 2"}, "Version 2"),
        ({"displayName": "Ada Lovelace", "accountId": "abc"}, "Ada Lovelace"),
        ([{"value": "A"}, {"value": "B"}], "A, B"),
        (["x", "", None, "y"], "x, y"),
        (3, "3"),
        (2.5, "2.5"),
        (13.0, "13"),
    ],
)
def test_custom_field_values_of_every_shape_read_as_text(value: object, text: str) -> None:
    issue = issue_with(customfield_10500=value)
    issue["names"] = {"customfield_10500": "Outcome"}

    item = jira_issue_to_item(issue)

    assert item.fields == {"Outcome": text}


@pytest.mark.parametrize(
    "value", [None, "", "   ", [], {}, {"hasEpicLinkFieldDependency": False}, [None]]
)
def test_empty_custom_field_values_are_skipped(value: object) -> None:
    issue = issue_with(customfield_10500=value)
    issue["names"] = {"customfield_10500": "Outcome"}

    assert jira_issue_to_item(issue).fields == {}


def test_system_fields_never_count_as_custom_fields() -> None:
    issue = issue_with(environment="Production")
    issue["names"] = {"environment": "Environment"}

    assert jira_issue_to_item(issue).fields == {}


def test_when_two_fields_share_a_name_the_first_with_a_value_counts() -> None:
    issue = issue_with(customfield_1=None, customfield_2="second", customfield_3="third")
    issue["names"] = {f"customfield_{n}": "Hypothesis" for n in (1, 2, 3)}

    assert jira_issue_to_item(issue).fields == {"Hypothesis": "second"}


def test_parent_field_gives_the_parent() -> None:
    item = jira_issue_to_item(issue_with(parent={"id": "10000", "key": "ACME-7"}))

    assert item.parent == "ACME-7"


def test_advanced_roadmaps_parent_link_gives_the_parent() -> None:
    issue = issue_with(
        customfield_10018={"hasEpicLinkFieldDependency": False, "data": {"key": "P-2"}}
    )
    issue["names"] = {"customfield_10018": "Parent Link"}

    assert jira_issue_to_item(issue).parent == "P-2"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-12-29T08:41:23.904+0530", datetime(2024, 12, 29, 3, 11, 23, 904000, tzinfo=UTC)),
        ("2026-03-02T08:00:00.000Z", datetime(2026, 3, 2, 8, 0, tzinfo=UTC)),
        ("2026-03-02T08:00:00", datetime(2026, 3, 2, 8, 0, tzinfo=UTC)),
        ("yesterday", None),
        (1735441883659, None),
        (None, None),
    ],
)
def test_timestamps_are_parsed_with_their_offset(raw: object, expected: datetime | None) -> None:
    item = jira_issue_to_item(issue_with(created=raw))

    assert item.created == expected


@pytest.mark.parametrize(
    ("self_link", "site"),
    [
        ("https://acme.atlassian.net/rest/api/3/issue/10001", "https://acme.atlassian.net"),
        (
            "https://helloworld-test.atlassian.net/rest/api/2/10021",
            "https://helloworld-test.atlassian.net",
        ),
        ("http://localhost:2990/jira/rest/api/2/issue/10010", "http://localhost:2990/jira"),
        ("https://acme.atlassian.net/browse/ACME-1", "https://acme.atlassian.net"),
        ("not a url", ""),
        ("http://[broken/rest/api/2/issue/1", ""),
        (42, ""),
    ],
)
def test_site_is_the_base_url_of_the_self_link(self_link: object, site: str) -> None:
    assert jira_site_of({"self": self_link}) == site


def test_issue_without_self_link_or_site_has_no_url() -> None:
    item = jira_issue_to_item({"key": "ACME-1", "fields": {"summary": "x"}})

    assert (item.site, item.url) == ("", "")


def test_wrong_typed_fields_degrade_to_defaults() -> None:
    issue = {
        "key": "ACME-1",
        "id": 10001,
        "names": ["not", "a", "map"],
        "fields": {
            "summary": ["not text"],
            "issuetype": "Epic",
            "status": "Done",
            "labels": ["ok", 3, None],
            "issuelinks": {"type": "Blocks"},
            "assignee": "someone",
            "reporter": {"displayName": None},
            "project": [],
            "parent": "ACME-0",
            "description": 12,
            "created": {"at": "now"},
        },
    }

    item = jira_issue_to_item(issue)

    assert (item.key, item.id, item.title) == ("ACME-1", "10001", "")
    assert (item.kind, item.status, item.status_category) == ("issue", "", None)
    assert item.labels == ("ok",)
    assert item.links == ()
    assert (item.assignee, item.reporter, item.parent) == (None, None, None)
    assert (item.description, item.sections, item.created) == ("", (), None)


_JSON = json_values(max_leaves=12)
_FIELD_KEYS = st.sampled_from(
    [
        "summary",
        "issuetype",
        "status",
        "labels",
        "issuelinks",
        "assignee",
        "reporter",
        "parent",
        "project",
        "description",
        "created",
        "customfield_1",
        "customfield_2",
    ]
)


@settings(max_examples=150)
@given(
    fields=st.dictionaries(_FIELD_KEYS, _JSON, max_size=8),
    names=st.dictionaries(st.sampled_from(["customfield_1", "customfield_2"]), _JSON),
    key=_JSON,
)
def test_any_issue_shaped_json_maps_without_error(
    fields: dict[str, Any], names: dict[str, Any], key: object
) -> None:
    item = jira_issue_to_item({"key": key, "fields": fields, "names": names, "self": key})

    assert item.tracker == "jira"
