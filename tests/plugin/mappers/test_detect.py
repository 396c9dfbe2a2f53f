"""Any tracker document is recognised and mapped, or refused with a message that says why."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.strategies import json_values

from plugin.mappers import UnknownFormat, items_from_document
from rules.model import Person, Section, StatusCategory, WorkItem

REPO = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("LEANGUARD_SHARED_DIR") or REPO.parent / "shared") / "fixtures"
OWN = Path(__file__).resolve().parent / "fixtures"

# What each shared real payload holds: the keys of the items it carries.
SHARED_EXPECTED = {
    "jira/cloud_comment_created.json": ["TEST-24"],
    "jira/cloud_jira_issue_created_with_changelog.json": ["KAN-22"],
    "jira/issuelink_created.json": [],
    "jira/server_jira_issue_updated_status.json": ["TEST-11"],
    "linear/01_issue_create_with_labels.json": ["WEB-44"],
    "linear/02_issue_update_updatedFrom.json": ["WEB-44"],
    "linear/05_project_create.json": ["532c1333013b"],
    "linear/07_comment_create_issue.json": [],
}
OWN_EXPECTED = {
    "jira_v3_epic_names.json": ["ACME-42"],
    "jira_v2_dc_story_wiki.json": ["CHK-7"],
    "jira_search_jql_page.json": ["ACME-42", "ACME-43"],
    "linear_graphql_issue.json": ["GRO-128"],
    "linear_graphql_project.json": ["8f2e61a0c4d7"],
    "linear_webhook_epic_issue.json": ["GRO-140"],
}


def load(path: Path) -> Any:
    """Read a JSON fixture."""
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("name", "keys"), sorted(SHARED_EXPECTED.items()))
def test_every_shared_payload_is_recognised(name: str, keys: list[str]) -> None:
    items = items_from_document(load(SHARED / name), source=name)

    assert [item.key for item in items] == keys


def test_the_expectations_cover_every_shared_payload() -> None:
    present = {path.relative_to(SHARED).as_posix() for path in SHARED.rglob("*.json")}

    assert present == set(SHARED_EXPECTED)


@pytest.mark.parametrize(("name", "keys"), sorted(OWN_EXPECTED.items()))
def test_every_own_fixture_is_recognised(name: str, keys: list[str]) -> None:
    items = items_from_document(load(OWN / name), source=name)

    assert [item.key for item in items] == keys


def test_a_stored_work_item_reads_back_as_itself() -> None:
    item = WorkItem(
        tracker="jira",
        key="ACME-1",
        title="Epic",
        kind="epic",
        sections=(Section(heading="Hypothesis", body="We believe", level=2),),
        fields={"Success metric": "5%"},
        status_category=StatusCategory.DONE,
        assignee=Person(name="Ada", id="a1"),
    )

    assert items_from_document(item.to_dict()) == [item]


@pytest.mark.parametrize("name", sorted(OWN_EXPECTED))
def test_mapped_items_survive_the_stored_snapshot(name: str) -> None:
    items = items_from_document(load(OWN / name))

    assert items_from_document([item.to_dict() for item in items]) == items


def test_a_jira_search_page_names_custom_fields_for_every_issue() -> None:
    page = load(OWN / "jira_search_jql_page.json")

    first, second = items_from_document(page)

    assert first.fields == {
        "Success metric": "Self-serve upgrades from 4% to 9% of Team admins by 30 June"
    }
    assert second.fields == {
        "Customer problem": "Heavy API users hit the plan ceiling mid-month and churn."
    }
    assert first.site == "https://acme.atlassian.net"


def test_a_jira_search_page_of_bare_ids_carries_no_items() -> None:
    page = {"issues": [{"id": "10068"}, {"id": "10069"}], "isLast": True}

    assert items_from_document(page) == []


def test_a_jira_rest_issue_is_mapped() -> None:
    issue = load(OWN / "jira_v3_epic_names.json")

    (item,) = items_from_document(issue)

    assert (item.tracker, item.kind, item.fields["Customer segment"]) == ("jira", "epic", "SMB")


def test_linear_graphql_lists_are_mapped_from_nodes_and_edges() -> None:
    issue = load(OWN / "linear_graphql_issue.json")["data"]["issue"]
    project = load(OWN / "linear_graphql_project.json")["data"]["project"]
    response = {
        "data": {
            "issues": {"nodes": [issue], "pageInfo": {"hasNextPage": False}},
            "projects": {"edges": [{"node": project, "cursor": "c1"}]},
        }
    }

    items = items_from_document(response)

    assert [(item.key, item.kind) for item in items] == [
        ("GRO-128", "epic"),
        ("8f2e61a0c4d7", "project"),
    ]


def test_a_linear_graphql_response_without_its_node_carries_no_item() -> None:
    response = {
        "data": {"issue": None},
        "errors": [{"message": "Entity not found: Issue", "extensions": {"type": "invalid input"}}],
    }

    assert items_from_document(response) == []


def test_a_list_of_documents_yields_all_their_items_in_order() -> None:
    documents = [
        load(SHARED / "jira" / "cloud_comment_created.json"),
        load(SHARED / "linear" / "07_comment_create_issue.json"),
        [load(OWN / "linear_webhook_epic_issue.json")],
        load(OWN / "jira_search_jql_page.json"),
    ]

    items = items_from_document(documents)

    assert [item.key for item in items] == ["TEST-24", "GRO-140", "ACME-42", "ACME-43"]


@pytest.mark.parametrize(
    "document",
    [
        "an issue",
        42,
        None,
        {"hello": "world"},
        {"data": {"viewer": {"id": "u1"}}},
        {"issues": "none"},
    ],
)
def test_unknown_documents_are_refused_naming_the_source_and_what_was_expected(
    document: object,
) -> None:
    with pytest.raises(UnknownFormat) as raised:
        items_from_document(document, source="export.json")

    message = str(raised.value)
    assert message.startswith("export.json: ")
    assert "expected a work item" in message
    assert "Jira webhook" in message
    assert "Linear webhook or GraphQL response" in message


def test_the_refusal_names_the_keys_it_found() -> None:
    with pytest.raises(UnknownFormat, match=r"keys \[hello, world\]"):
        items_from_document({"world": 1, "hello": 2})


def test_an_unknown_entry_in_a_list_is_refused_with_its_position() -> None:
    documents = [load(SHARED / "jira" / "cloud_comment_created.json"), "oops"]

    with pytest.raises(UnknownFormat, match=r"^batch\.json\[1\]: found a JSON string"):
        items_from_document(documents, source="batch.json")


def test_without_a_source_the_message_speaks_of_the_document() -> None:
    with pytest.raises(UnknownFormat, match=r"^document: "):
        items_from_document(3)


@pytest.mark.parametrize(
    "snapshot",
    [
        {"tracker": "jira", "key": "A-1", "kind": "epic", "status_category": "finished"},
        {"tracker": "jira", "key": "A-1", "kind": "epic", "sections": [{"heading": "H"}]},
        {"tracker": "jira", "key": "A-1", "kind": "epic", "links": [{"colour": "red"}]},
        {"tracker": "jira", "key": "A-1", "kind": "epic", "created": "soon"},
    ],
)
def test_a_broken_work_item_snapshot_is_refused(snapshot: dict[str, Any]) -> None:
    with pytest.raises(UnknownFormat, match="not a valid work item"):
        items_from_document(snapshot, source="snapshot")


def test_unknown_format_is_a_value_error() -> None:
    assert issubclass(UnknownFormat, ValueError)


_JSON = json_values(max_leaves=16)
# Keys the detector and the mappers look at, so generated documents reach deep code paths.
_KNOWN_KEYS = st.sampled_from(
    [
        "tracker",
        "key",
        "kind",
        "webhookEvent",
        "issue",
        "fields",
        "issues",
        "names",
        "type",
        "data",
        "action",
        "project",
        "projects",
        "nodes",
        "edges",
        "node",
        "summary",
        "issuetype",
        "status",
        "statusCategory",
        "issuelinks",
        "outwardIssue",
        "description",
        "customfield_1",
        "sections",
        "links",
        "level",
        "heading",
        "labels",
        "identifier",
        "state",
        "team",
        "needs",
        "relations",
    ]
)
_SHAPED = st.recursive(
    _JSON,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(_KNOWN_KEYS | st.sampled_from(["Issue", "Project"]), inner, max_size=6)
    ),
    max_leaves=30,
)


def _list_or_unknown(document: object) -> None:
    try:
        items = items_from_document(document, source="generated")
    except UnknownFormat:
        return
    assert isinstance(items, list)
    assert all(isinstance(item, WorkItem) for item in items)


@settings(max_examples=300)
@given(document=st.dictionaries(st.text(max_size=10), _JSON, max_size=6))
def test_any_json_object_gives_a_list_or_unknown_format(document: dict[str, Any]) -> None:
    _list_or_unknown(document)


@settings(max_examples=300)
@given(document=st.dictionaries(_KNOWN_KEYS, _SHAPED, max_size=8))
def test_any_tracker_shaped_object_gives_a_list_or_unknown_format(document: dict[str, Any]) -> None:
    _list_or_unknown(document)


@settings(max_examples=100)
@given(
    kind=st.sampled_from(["Issue", "Project", "Comment"]),
    data=st.dictionaries(_KNOWN_KEYS, _SHAPED, max_size=8),
)
def test_any_linear_webhook_gives_a_list(kind: str, data: dict[str, Any]) -> None:
    items = items_from_document({"type": kind, "action": "update", "data": data})

    assert len(items) == (0 if kind == "Comment" or not data else 1)
