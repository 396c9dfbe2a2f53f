"""The tracker-neutral work item that every rule reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Tracker(StrEnum):
    """The trackers leanguard understands."""

    JIRA = "jira"
    LINEAR = "linear"


class StatusCategory(StrEnum):
    """Where an item is in its life, whatever the tracker calls its statuses."""

    TODO = "todo"
    IN_PROGRESS = "in_progress"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Person:
    """Somebody who can act on an item (assignee, reporter, lead)."""

    name: str
    id: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """Return a JSON-safe dict."""
        return {"name": self.name, "id": self.id}


@dataclass(frozen=True, slots=True)
class Link:
    """A relation from the item to another item."""

    relation: str
    """The phrase as seen from this item, e.g. ``is tested by`` or ``relates to``."""
    direction: str
    """``outward`` or ``inward`` (Jira), ``outward`` for relations without a direction."""
    target_key: str
    link_type: str = ""
    """The link type's name, e.g. ``Blocks`` or ``Polaris work item link``."""
    target_type: str = ""
    """The target's own type name, e.g. ``Hypothesis`` or ``Idea``."""
    target_title: str = ""
    target_status: str = ""
    target_project_type: str = ""
    """Jira's project type of the target, ``product_discovery`` for JPD ideas."""

    def to_dict(self) -> dict[str, str]:
        """Return a JSON-safe dict."""
        return {
            "relation": self.relation,
            "direction": self.direction,
            "target_key": self.target_key,
            "link_type": self.link_type,
            "target_type": self.target_type,
            "target_title": self.target_title,
            "target_status": self.target_status,
            "target_project_type": self.target_project_type,
        }


@dataclass(frozen=True, slots=True)
class Section:
    """A named part of a description: a heading or a ``Name:`` line and the text under it."""

    heading: str
    body: str
    level: int = 0
    """Heading level 1-6, or 0 for a ``Name:`` line."""

    def to_dict(self) -> dict[str, str | int]:
        """Return a JSON-safe dict."""
        return {"heading": self.heading, "body": self.body, "level": self.level}


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One Jira issue, Linear issue or Linear project, as rules see it."""

    tracker: str
    key: str
    title: str
    kind: str = "issue"
    """Normalised kind: epic, story, task, bug, subtask, project, idea, issue."""
    type_name: str = ""
    """The tracker's own type name, e.g. ``Epic`` or ``Project``."""
    id: str = ""
    site: str = ""
    """The tracker site: a Jira base URL or a Linear organisation id."""
    url: str = ""
    project: str = ""
    """The Jira project key or the Linear team key the item belongs to."""
    description: str = ""
    """The description as plain text (ADF and wiki markup flattened to Markdown-like text)."""
    sections: tuple[Section, ...] = ()
    fields: Mapping[str, str] = field(default_factory=dict)
    """Custom field values as text, by the field's display name."""
    labels: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()
    parent: str | None = None
    status: str = ""
    status_category: StatusCategory | None = None
    assignee: Person | None = None
    reporter: Person | None = None
    owner: Person | None = None
    """Who owns the item beyond the assignee: a Linear project lead."""
    customer_needs: int = 0
    created: datetime | None = None
    updated: datetime | None = None

    def has_label(self, name: str) -> bool:
        """Tell whether the item carries a label, ignoring case."""
        wanted = name.casefold()
        return any(label.casefold() == wanted for label in self.labels)

    def who_can_fix(self) -> tuple[Person, ...]:
        """Return the people who can fix the item, most responsible first."""
        people: list[Person] = []
        for person in (self.assignee, self.owner, self.reporter):
            if person is not None and person not in people:
                people.append(person)
        return tuple(people)

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-safe dict of the item (the stored snapshot)."""
        return {
            "tracker": self.tracker,
            "key": self.key,
            "id": self.id,
            "site": self.site,
            "url": self.url,
            "project": self.project,
            "kind": self.kind,
            "type_name": self.type_name,
            "title": self.title,
            "description": self.description,
            "sections": [section.to_dict() for section in self.sections],
            "fields": dict(self.fields),
            "labels": list(self.labels),
            "links": [link.to_dict() for link in self.links],
            "parent": self.parent,
            "status": self.status,
            "status_category": self.status_category.value if self.status_category else None,
            "assignee": self.assignee.to_dict() if self.assignee else None,
            "reporter": self.reporter.to_dict() if self.reporter else None,
            "owner": self.owner.to_dict() if self.owner else None,
            "customer_needs": self.customer_needs,
            "created": self.created.isoformat() if self.created else None,
            "updated": self.updated.isoformat() if self.updated else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> WorkItem:
        """Rebuild an item from :meth:`to_dict` output."""

        def person(value: object) -> Person | None:
            if not isinstance(value, Mapping):
                return None
            return Person(name=str(value.get("name") or ""), id=_opt_str(value.get("id")))

        def when(value: object) -> datetime | None:
            return datetime.fromisoformat(value) if isinstance(value, str) and value else None

        category = data.get("status_category")
        return cls(
            tracker=str(data["tracker"]),
            key=str(data["key"]),
            id=str(data.get("id") or ""),
            site=str(data.get("site") or ""),
            url=str(data.get("url") or ""),
            project=str(data.get("project") or ""),
            kind=str(data.get("kind") or "issue"),
            type_name=str(data.get("type_name") or ""),
            title=str(data.get("title") or ""),
            description=str(data.get("description") or ""),
            sections=tuple(
                Section(heading=str(s["heading"]), body=str(s["body"]), level=_int(s.get("level")))
                for s in _list_of_maps(data.get("sections"))
            ),
            fields={str(k): str(v) for k, v in _map(data.get("fields")).items()},
            labels=tuple(str(label) for label in _list(data.get("labels"))),
            links=tuple(
                Link(**{k: str(v) for k, v in link.items()})
                for link in _list_of_maps(data.get("links"))
            ),
            parent=_opt_str(data.get("parent")),
            status=str(data.get("status") or ""),
            status_category=StatusCategory(category) if isinstance(category, str) else None,
            assignee=person(data.get("assignee")),
            reporter=person(data.get("reporter")),
            owner=person(data.get("owner")),
            customer_needs=_int(data.get("customer_needs")),
            created=when(data.get("created")),
            updated=when(data.get("updated")),
        )


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _map(value: object) -> Mapping[object, object]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _list_of_maps(value: object) -> list[Mapping[str, object]]:
    return [entry for entry in _list(value) if isinstance(entry, Mapping)]
