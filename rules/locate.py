"""Finding an outcome field on an item: custom fields, sections, links, customer needs."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from rules.model import Link, WorkItem
from rules.naming import normalize_name, singular
from rules.ruleset import LinkSource, OutcomeField


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where a field was found and, for text, what it says."""

    where: str
    text: str | None
    """The text to check; ``None`` for evidence that is not text (a link, customer requests)."""


@dataclass(frozen=True, slots=True)
class Search:
    """The outcome of looking for one field on one item."""

    evidence: Evidence | None
    looked_in: tuple[str, ...]
    empty: tuple[str, ...]
    """Places that exist on the item but hold nothing (an empty section or field)."""


class ItemIndex:
    """An item's custom fields and sections keyed by folded name, built once per evaluation."""

    __slots__ = ("fields", "item", "labels", "sections")

    def __init__(self, item: WorkItem) -> None:
        self.item = item
        self.labels = frozenset(label.casefold() for label in item.labels)
        self.fields: dict[str, tuple[str, str]] = {}
        for name, value in item.fields.items():
            self.fields.setdefault(_key(name), (name, value))
        self.sections: dict[str, list[tuple[str, str]]] = {}
        for section in item.sections:
            self.sections.setdefault(_key(section.heading), []).append(
                (section.heading, section.body)
            )


@lru_cache(maxsize=4096)
def _key(name: str) -> str:
    # Headings and field names repeat across items and evaluations; folding them is not free.
    return singular(normalize_name(name))


@lru_cache(maxsize=512)
def looked_in(outcome: OutcomeField) -> tuple[str, ...]:
    """Describe every place a field may live, for the result tree."""
    places = [f'custom field "{name}"' for name in outcome.custom_fields]
    places += [f'description section "{name}"' for name in outcome.headings]
    places += [source.describe() for source in outcome.links]
    if outcome.customer_needs:
        places.append("a linked customer request")
    return tuple(places)


@lru_cache(maxsize=512)
def _keys(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((name, _key(name)) for name in names)


def find(index: ItemIndex, outcome: OutcomeField) -> Search:
    """Look for a field in every place the rule set allows, in a fixed order."""
    empty: list[str] = []
    for _, key in _keys(outcome.custom_fields):
        hit = index.fields.get(key)
        if hit is None:
            continue
        name, value = hit
        if value.strip():
            return Search(Evidence(f'custom field "{name}"', value.strip()), looked_in(outcome), ())
        empty.append(f'custom field "{name}" is empty')
    for _, key in _keys(outcome.headings):
        for heading, body in index.sections.get(key, ()):
            if body.strip():
                evidence = Evidence(f'description section "{heading}"', body.strip())
                return Search(evidence, looked_in(outcome), ())
            empty.append(f'description section "{heading}" is empty')
    for source in outcome.links:
        link = next((link for link in index.item.links if _link_matches(link, source)), None)
        if link is not None:
            title = f' ("{link.target_title}")' if link.target_title else ""
            where = f"link {link.relation} {link.target_key}{title}"
            return Search(Evidence(where, None), looked_in(outcome), ())
    if outcome.customer_needs and index.item.customer_needs > 0:
        count = index.item.customer_needs
        where = f"{count} linked customer request" + ("s" if count != 1 else "")
        return Search(Evidence(where, None), looked_in(outcome), ())
    return Search(None, looked_in(outcome), tuple(empty))


def _link_matches(link: Link, source: LinkSource) -> bool:
    return (
        _any_name(link.link_type, source.link_types)
        and _any_name(link.relation, source.relations)
        and _any_name(link.target_type, source.target_types)
        and _any_name(link.target_project_type, source.target_project_types)
    )


def _any_name(value: str, wanted: tuple[str, ...]) -> bool:
    if not wanted:
        return True
    key = _key(value)
    return any(key == wanted_key for _, wanted_key in _keys(wanted))
