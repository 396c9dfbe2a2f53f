"""Linear issues and projects become work items, from webhooks and from GraphQL alike."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.strategies import json_values

from plugin.mappers.linear import (
    EPIC_LABELS,
    linear_issue_to_item,
    linear_project_to_item,
    linear_webhook_to_item,
)
from rules.model import Link, Person, StatusCategory

REPO = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("LEANGUARD_SHARED_DIR") or REPO.parent / "shared") / "fixtures"
OWN = Path(__file__).resolve().parent / "fixtures"


def load(path: Path) -> dict[str, Any]:
    """Read a JSON fixture."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


# Real webhook payloads.


def test_issue_webhook_maps_the_issue_with_team_key_and_number_as_key() -> None:
    payload = load(SHARED / "linear" / "01_issue_create_with_labels.json")

    item = linear_webhook_to_item(payload)

    assert item is not None
    assert (item.tracker, item.key, item.project) == ("linear", "WEB-44", "WEB")
    assert item.id == "3443a709-f2b5-46f2-a136-a0445fd432be"
    assert item.site == "7a661544-df08-4cd1-a1e3-5ec611898806"
    assert item.url.startswith("https://linear.app/webhooks/issue/WEB-44/")
    assert (item.kind, item.type_name) == ("issue", "Issue")
    assert item.title.startswith("This is regarding the outage")
    assert item.labels == ("Improvement", "Feature", "Bug", "Custom Label")
    assert (item.status, item.status_category) == ("In Progress", StatusCategory.IN_PROGRESS)
    assert item.assignee == Person(name="Satyam Bansal", id="674c90c8-35ea-454d-8ca4-5548258fd795")
    assert item.reporter is None  # the webhook names the creator by id only
    assert item.description.startswith("The outage that occurred")
    assert item.created == datetime(2023, 4, 11, 10, 10, 15, 37000, tzinfo=UTC)
    assert item.customer_needs == 0


def test_issue_update_webhook_maps_the_new_values() -> None:
    payload = load(SHARED / "linear" / "02_issue_update_updatedFrom.json")

    item = linear_webhook_to_item(payload)

    assert item is not None
    assert item.title.endswith("and also on 25/12/22 from 0000 to 0230")
    assert item.updated == datetime(2023, 4, 11, 10, 16, 53, 22000, tzinfo=UTC)


def test_project_webhook_reads_summary_and_content_and_the_lead() -> None:
    payload = load(SHARED / "linear" / "05_project_create.json")

    item = linear_webhook_to_item(payload)

    assert item is not None
    assert (item.kind, item.type_name) == ("project", "Project")
    assert (item.key, item.title) == ("532c1333013b", "Zulip-Project")
    assert item.description == "Summary for the Project\n\nThis is the project description."
    assert (item.status, item.status_category) == ("Planned", StatusCategory.TODO)
    assert item.owner == Person(name="Dhruv Shetty", id="e825c109-f691-4716-a85f-b68a2626531c")
    assert item.url == "https://linear.app/zulipdhruv/project/zulip-project-532c1333013b"
    assert item.site == "498d97b2-c819-42cc-8d65-7bffd494ed23"
    assert item.project == ""  # the webhook lists team ids, not keys


def test_comment_webhook_carries_no_item() -> None:
    payload = load(SHARED / "linear" / "07_comment_create_issue.json")

    assert linear_webhook_to_item(payload) is None


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "Issue", "action": "remove"},
        {"type": "Issue", "action": "create", "data": "not an object"},
        {"type": "ProjectUpdate", "action": "create", "data": {"id": "1", "body": "On track"}},
    ],
)
def test_webhooks_without_an_issue_or_project_carry_no_item(payload: dict[str, Any]) -> None:
    assert linear_webhook_to_item(payload) is None


def test_epic_labelled_issue_webhook_is_an_epic() -> None:
    payload = load(OWN / "linear_webhook_epic_issue.json")

    item = linear_webhook_to_item(payload)

    assert item is not None
    assert (item.key, item.kind, item.type_name) == ("GRO-140", "epic", "Issue")
    assert item.labels == ("Epic",)
    assert item.status_category is StatusCategory.TODO
    assert [section.heading for section in item.sections] == ["Hypothesis"]


# GraphQL nodes.


@pytest.fixture
def graphql_issue() -> dict[str, Any]:
    """The ``issue`` node of a GraphQL response."""
    node: dict[str, Any] = load(OWN / "linear_graphql_issue.json")["data"]["issue"]
    return node


def test_graphql_issue_maps_identity_people_and_parent(graphql_issue: dict[str, Any]) -> None:
    item = linear_issue_to_item(graphql_issue, site="org-1")

    assert (item.key, item.project, item.site) == ("GRO-128", "GRO", "org-1")
    assert (
        item.url == "https://linear.app/acme/issue/GRO-128/onboarding-checklist-for-new-workspaces"
    )
    assert item.parent == "GRO-100"
    assert item.assignee == Person(name="Lea Fischer", id="a1b2c3d4-0000-4e5f-8a9b-111111111111")
    assert item.reporter == Person(name="Sam Okafor", id="a1b2c3d4-0000-4e5f-8a9b-222222222222")
    assert item.labels == ("epic", "Onboarding")


def test_epic_label_matches_without_regard_to_case(graphql_issue: dict[str, Any]) -> None:
    assert linear_issue_to_item(graphql_issue).kind == "epic"


def test_markdown_description_is_split_into_sections(graphql_issue: dict[str, Any]) -> None:
    item = linear_issue_to_item(graphql_issue)

    headings = [section.heading for section in item.sections]
    assert headings == ["Customer problem", "Hypothesis", "Success metrics"]
    assert item.sections[2].body == "Week-1 activation from 22% to 30% by 31 March."


def test_customer_needs_are_counted(graphql_issue: dict[str, Any]) -> None:
    assert linear_issue_to_item(graphql_issue).customer_needs == 2


def test_relations_become_links_in_both_directions(graphql_issue: dict[str, Any]) -> None:
    item = linear_issue_to_item(graphql_issue)

    assert item.links == (
        Link(
            relation="blocks",
            direction="outward",
            target_key="GRO-131",
            link_type="blocks",
            target_type="Issue",
            target_title="Track checklist completion events",
            target_status="Todo",
        ),
        Link(
            relation="relates to",
            direction="inward",
            target_key="RES-12",
            link_type="related",
            target_type="Issue",
            target_title="Interview notes: first-week owners",
            target_status="Done",
        ),
    )


@pytest.mark.parametrize(
    ("kind", "outward", "inward"),
    [
        ("blocks", "blocks", "is blocked by"),
        ("duplicate", "duplicates", "is duplicated by"),
        ("similar", "is similar to", "is similar to"),
        ("follows", "follows", "follows"),
    ],
)
def test_relation_phrases_read_from_this_issue(kind: str, outward: str, inward: str) -> None:
    issue = {
        "identifier": "A-1",
        "relations": {"nodes": [{"type": kind, "relatedIssue": {"identifier": "A-2"}}]},
        "inverseRelations": {"nodes": [{"type": kind, "issue": {"identifier": "A-3"}}]},
    }

    item = linear_issue_to_item(issue)

    assert [link.relation for link in item.links] == [outward, inward]


@pytest.fixture
def graphql_project() -> dict[str, Any]:
    """The ``project`` node of a GraphQL response."""
    node: dict[str, Any] = load(OWN / "linear_graphql_project.json")["data"]["project"]
    return node


def test_project_sections_come_from_description_and_content(
    graphql_project: dict[str, Any],
) -> None:
    item = linear_project_to_item(graphql_project)

    headings = [section.heading for section in item.sections]
    assert headings == ["Problem statement", "Hypothesis", "Success metric"]
    assert item.description.startswith("Problem statement: new owners stall")
    assert "\n\n## Hypothesis" in item.description


def test_graphql_project_maps_team_lead_needs_and_status(graphql_project: dict[str, Any]) -> None:
    item = linear_project_to_item(graphql_project, site="org-1")

    assert (item.key, item.id, item.title) == (
        "8f2e61a0c4d7",
        "77a1c9e2-1d3b-4f5a-8c6d-444444444444",
        "Activation",
    )
    assert (item.project, item.site) == ("GRO", "org-1")
    assert item.owner == Person(name="Lea Fischer", id="a1b2c3d4-0000-4e5f-8a9b-111111111111")
    assert item.reporter == Person(name="Sam Okafor", id="a1b2c3d4-0000-4e5f-8a9b-222222222222")
    assert item.labels == ("Q2 bet",)
    assert item.customer_needs == 1
    assert (item.status, item.status_category) == ("In Progress", StatusCategory.IN_PROGRESS)


# Single rules.


def test_a_label_in_an_epic_label_group_makes_an_epic() -> None:
    issue = {
        "identifier": "A-1",
        "labels": {"nodes": [{"name": "Checkout", "parent": {"name": "Epic"}}]},
    }

    assert linear_issue_to_item(issue).kind == "epic"


def test_teams_can_name_their_own_epic_labels() -> None:
    issue = {"identifier": "A-1", "labels": [{"name": "Bet"}]}

    assert linear_issue_to_item(issue).kind == "issue"
    assert linear_issue_to_item(issue, epic_labels=("Bet", "Epic")).kind == "epic"
    assert linear_issue_to_item(issue, epic_labels="bet").kind == "epic"
    assert EPIC_LABELS == ("Epic",)


@pytest.mark.parametrize(
    ("state_type", "category"),
    [
        ("triage", StatusCategory.TODO),
        ("backlog", StatusCategory.TODO),
        ("unstarted", StatusCategory.TODO),
        ("started", StatusCategory.IN_PROGRESS),
        ("completed", StatusCategory.DONE),
        ("canceled", StatusCategory.DONE),
        ("mystery", None),
    ],
)
def test_issue_status_category_follows_the_workflow_state_type(
    state_type: str, category: StatusCategory | None
) -> None:
    item = linear_issue_to_item({"state": {"name": "Whatever", "type": state_type}})

    assert item.status_category is category


@pytest.mark.parametrize(
    ("project", "status", "category"),
    [
        ({"status": {"name": "Backlog", "type": "backlog"}}, "Backlog", StatusCategory.TODO),
        ({"status": {"name": "Planned", "type": "planned"}}, "Planned", StatusCategory.TODO),
        ({"status": {"name": "Paused", "type": "paused"}}, "Paused", StatusCategory.IN_PROGRESS),
        ({"status": {"name": "Shipped", "type": "completed"}}, "Shipped", StatusCategory.DONE),
        ({"status": {"name": "Dropped", "type": "canceled"}}, "Dropped", StatusCategory.DONE),
        ({"state": "started"}, "started", StatusCategory.IN_PROGRESS),
        ({"state": "canceled"}, "canceled", StatusCategory.DONE),
        ({}, "", None),
    ],
)
def test_project_status_category_follows_status_type_or_legacy_state(
    project: dict[str, Any], status: str, category: StatusCategory | None
) -> None:
    item = linear_project_to_item(project)

    assert (item.status, item.status_category) == (status, category)


@pytest.mark.parametrize(
    ("issue", "key"),
    [
        ({"id": "uuid-1", "identifier": "ENG-7", "team": {"key": "X"}, "number": 1}, "ENG-7"),
        ({"id": "uuid-1", "team": {"key": "ENG"}, "number": 12.0}, "ENG-12"),
        ({"id": "uuid-1", "team": {"key": "ENG"}}, "uuid-1"),
        ({"id": "uuid-1", "number": 12}, "uuid-1"),
    ],
)
def test_issue_key_is_the_identifier_or_team_and_number_or_the_id(
    issue: dict[str, Any], key: str
) -> None:
    assert linear_issue_to_item(issue).key == key


def test_project_key_falls_back_to_the_id() -> None:
    assert linear_project_to_item({"id": "uuid-9", "name": "P"}).key == "uuid-9"


def test_parent_id_is_the_parent_when_no_parent_node_is_given() -> None:
    payload = {"parentId": "7f3c0000-0000-4000-8000-000000000001", "identifier": "A-2"}

    assert linear_issue_to_item(payload).parent == "7f3c0000-0000-4000-8000-000000000001"


@pytest.mark.parametrize(
    ("node", "count"),
    [
        ({"needs": {"nodes": [{}, {}, {}]}}, 3),
        ({"needs": {"edges": [{"node": {"id": "n1"}}]}}, 1),
        ({"customerNeedCount": 4}, 4),
        ({"customerNeedCount": "four"}, 0),
        ({"customerNeedCount": -1}, 0),
        ({}, 0),
    ],
)
def test_customer_needs_come_from_the_needs_connection_or_a_count(
    node: dict[str, Any], count: int
) -> None:
    assert linear_issue_to_item(node).customer_needs == count
    assert linear_project_to_item(node).customer_needs == count


def test_without_a_site_the_organization_of_the_team_is_the_site() -> None:
    team = {"key": "GRO", "organization": {"id": "org-7"}}

    assert linear_issue_to_item({"identifier": "GRO-1", "team": team}).site == "org-7"
    assert linear_project_to_item({"id": "p1", "teams": {"nodes": [team]}}).site == "org-7"


def test_a_lead_known_only_by_id_is_no_owner() -> None:
    item = linear_project_to_item({"leadId": "e825c109", "lead": None})

    assert item.owner is None


def test_wrong_typed_fields_degrade_to_defaults() -> None:
    issue = {
        "id": 5,
        "title": None,
        "labels": "Epic",
        "state": ["started"],
        "team": "WEB",
        "assignee": {"id": "u1"},
        "relations": [{"type": "blocks", "relatedIssue": "A-1"}],
        "createdAt": "last week",
        "description": {"type": "doc"},
    }

    item = linear_issue_to_item(issue)

    assert (item.key, item.title, item.kind) == ("5", "", "issue")
    assert (item.project, item.status_category, item.assignee) == ("", None, None)
    assert (item.links, item.created, item.description) == ((), None, "")


_JSON = json_values(max_leaves=12)
_KEYS = st.sampled_from(
    [
        "id",
        "identifier",
        "number",
        "title",
        "name",
        "slugId",
        "description",
        "content",
        "labels",
        "state",
        "status",
        "team",
        "teams",
        "assignee",
        "creator",
        "lead",
        "parent",
        "parentId",
        "needs",
        "customerNeedCount",
        "relations",
        "inverseRelations",
        "createdAt",
        "url",
    ]
)


@settings(max_examples=150)
@given(node=st.dictionaries(_KEYS, _JSON, max_size=10), kind=st.sampled_from(["Issue", "Project"]))
def test_any_node_shaped_json_maps_without_error(node: dict[str, Any], kind: str) -> None:
    payload = {"type": kind, "action": "update", "data": node, "organizationId": node.get("id")}

    item = linear_webhook_to_item(payload)

    assert item is None or item.tracker == "linear"
    assert linear_issue_to_item(node).type_name == "Issue"
    assert linear_project_to_item(node).type_name == "Project"
