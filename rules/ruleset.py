"""Rule sets: parsing, inheritance, locked rules, and the resolved model the engine reads."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from marshmallow import ValidationError

from rules.naming import normalize_name
from rules.result import Mode, Severity
from rules.schema import RuleSetSchema, flatten_errors

MAX_EXTENDS_DEPTH = 8


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a rule set: where, and what."""

    source: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.path}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        """Return a JSON-safe dict."""
        return {"source": self.source, "path": self.path, "message": self.message}


class RuleSetError(ValueError):
    """A rule set that cannot be used, with every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


@dataclass(frozen=True, slots=True)
class LinkSource:
    """Issue links that count as evidence for a field; every list given must match."""

    link_types: tuple[str, ...] = ()
    relations: tuple[str, ...] = ()
    target_types: tuple[str, ...] = ()
    target_project_types: tuple[str, ...] = ()

    def describe(self) -> str:
        """Say in words which links count."""
        parts: list[str] = []
        if self.target_types:
            parts.append("to an issue of type " + _either(self.target_types))
        if self.target_project_types:
            labels = [_PROJECT_TYPE_NAMES.get(t, t) for t in self.target_project_types]
            parts.append("to " + _either(labels, quote=False))
        if self.link_types:
            parts.append("of link type " + _either(self.link_types))
        if self.relations:
            parts.append("with relation " + _either(self.relations))
        return "an issue link " + " ".join(parts)


_PROJECT_TYPE_NAMES = {"product_discovery": "a Jira Product Discovery idea"}


@dataclass(frozen=True, slots=True)
class OutcomeField:
    """An outcome field (hypothesis, success metric, ...) and where it may be written."""

    id: str
    name: str
    why: str = ""
    custom_fields: tuple[str, ...] = ()
    headings: tuple[str, ...] = ()
    links: tuple[LinkSource, ...] = ()
    customer_needs: bool = False

    @property
    def article_name(self) -> str:
        """The name with an indefinite article, for sentences."""
        lowered = self.name[:1].lower() + self.name[1:]
        return ("an " if lowered[:1] in "aeiou" else "a ") + lowered


@dataclass(frozen=True, slots=True)
class When:
    """Which items a rule applies to."""

    trackers: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    status_categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Checks:
    """Content checks for the fields a rule requires."""

    non_empty: bool = True
    min_words: int | None = None
    pattern: str | None = None
    measurable: bool = False
    hypothesis_form: bool = False
    problem_not_solution: bool = False
    severity: Severity = Severity.WARNING

    def enabled(self) -> list[str]:
        """Return the names of the quality checks switched on, in a stable order."""
        names: list[str] = []
        if self.min_words:
            names.append("min_words")
        if self.pattern:
            names.append("pattern")
        for name in ("measurable", "hypothesis_form", "problem_not_solution"):
            if getattr(self, name):
                names.append(name)
        return names


@dataclass(frozen=True, slots=True)
class Rule:
    """A resolved rule."""

    id: str
    require: tuple[str, ...]
    description: str = ""
    why: str = ""
    when: When = field(default_factory=When)
    checks: Checks = field(default_factory=Checks)
    severity: Severity = Severity.ERROR
    mode: Mode = Mode.WARN
    locked: bool = False
    origin: str = ""
    """The rule set that defined the rule."""
    exempt_labels: tuple[str, ...] = ()
    """Labels that exempt an item from this rule (a project cannot exempt from a locked rule)."""


@dataclass(frozen=True, slots=True)
class Waiver:
    """A time-boxed exception with an owner; it stops counting after ``expires``."""

    rule: str
    owner: str
    expires: date
    items: tuple[str, ...] = ()
    reason: str = ""

    def covers(self, rule_id: str, item_key: str, on: date) -> bool:
        """Tell whether the waiver applies to a rule on an item at a date."""
        if self.rule != rule_id or on > self.expires:
            return False
        return not self.items or item_key.casefold() in {i.casefold() for i in self.items}


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A resolved rule set, inheritance applied, ready for :func:`rules.engine.evaluate`."""

    name: str
    description: str
    fields: Mapping[str, OutcomeField]
    rules: tuple[Rule, ...]
    waivers: tuple[Waiver, ...] = ()
    exemption_labels: tuple[str, ...] = ()
    trackers: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    source: str = ""
    lineage: tuple[str, ...] = ()
    """Names of the rule sets this one extends, nearest first."""
    document: Mapping[str, Any] = field(default_factory=dict)
    """The merged document, for display and versioning."""
    version: str = ""
    """A short content hash of ``document``: equal documents have equal versions."""

    def applies_to(self, tracker: str, project: str) -> bool:
        """Tell whether the rule set's scope covers a tracker and project."""
        if self.trackers and tracker not in self.trackers:
            return False
        return not self.projects or project.casefold() in {p.casefold() for p in self.projects}

    def rule(self, rule_id: str) -> Rule | None:
        """Return a rule by id."""
        return next((rule for rule in self.rules if rule.id == rule_id), None)


Resolver = Callable[[str], Mapping[str, Any]]
"""Given an ``extends`` value, return that rule set's raw (validated) document and its source."""


def parse_document(text: str, *, source: str) -> dict[str, Any]:
    """Parse YAML or JSON text and validate it against the schema; raise :class:`RuleSetError`."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(document)"
        problem = getattr(exc, "problem", None) or str(exc)
        raise RuleSetError([Problem(source, where, f"not valid YAML: {problem}")]) from exc
    if not isinstance(raw, dict):
        raise RuleSetError([Problem(source, "(document)", "a rule set must be a mapping")])
    try:
        loaded: dict[str, Any] = RuleSetSchema().load(raw)
    except ValidationError as exc:
        problems = [Problem(source, path, msg) for path, msg in flatten_errors(exc.messages)]
        raise RuleSetError(problems) from exc
    return loaded


def build(
    document: Mapping[str, Any],
    *,
    source: str,
    resolve: Callable[[str], tuple[Mapping[str, Any], str]] | None = None,
) -> RuleSet:
    """Resolve a validated document's ``extends`` chain into a :class:`RuleSet`."""
    chain: list[tuple[Mapping[str, Any], str]] = [(document, source)]
    seen = {source}
    while (parent_ref := chain[-1][0].get("extends")) is not None:
        if len(chain) > MAX_EXTENDS_DEPTH:
            raise RuleSetError([Problem(source, "extends", "extends chain is too deep (max 8)")])
        if resolve is None:
            raise RuleSetError(
                [Problem(chain[-1][1], "extends", f"cannot resolve {parent_ref!r} here")]
            )
        parent, parent_source = resolve(str(parent_ref))
        if parent_source in seen:
            raise RuleSetError(
                [Problem(chain[-1][1], "extends", f"{parent_ref!r} extends itself in a cycle")]
            )
        seen.add(parent_source)
        chain.append((parent, parent_source))
    chain.reverse()
    return _merge(chain)


def _merge(chain: Sequence[tuple[Mapping[str, Any], str]]) -> RuleSet:
    """Merge documents from the root down: fields and rules by id, the rest by key."""
    problems: list[Problem] = []
    fields_by_id: dict[str, dict[str, Any]] = {}
    rules_by_id: dict[str, dict[str, Any]] = {}
    rule_meta: dict[str, dict[str, Any]] = {}
    exemption_labels: list[str] = []
    waivers: list[dict[str, Any]] = []
    merged: dict[str, Any] = {}
    lineage: list[str] = []
    labels_known_at: list[int] = []

    for depth, (document, source) in enumerate(chain):
        name = str(document.get("name") or Path(source).stem or "rules")
        lineage.append(name)
        for key in ("description", "scope"):
            if key in document:
                merged[key] = copy.deepcopy(document[key])
        merged["name"] = name
        for fdoc in document.get("fields_", []):
            fields_by_id[fdoc["id"]] = {**fields_by_id.get(fdoc["id"], {}), **fdoc}
        for index, rdoc in enumerate(document.get("rules", [])):
            path = f"rules[{index}]"
            base = rules_by_id.get(rdoc["id"])
            if base is None:
                rules_by_id[rdoc["id"]] = copy.deepcopy(rdoc)
                rule_meta[rdoc["id"]] = {
                    "origin": name,
                    "source": source,
                    "path": path,
                    "depth": depth,
                    "locked_by": name,
                }
                continue
            meta = rule_meta[rdoc["id"]]
            if base.get("locked"):
                problems.extend(
                    Problem(source, path, message)
                    for message in _loosening(base, rdoc, meta["locked_by"])
                )
            elif rdoc.get("locked"):
                meta.update(locked_by=name, depth=depth)
            combined = {**base, **copy.deepcopy(rdoc)}
            if "checks" in rdoc and "checks" in base:
                combined["checks"] = {**base["checks"], **rdoc["checks"]}
            rules_by_id[rdoc["id"]] = combined
            rule_meta[rdoc["id"]].update(source=source, path=path)
        labels = document.get("exemptions", {}).get("labels", [])
        exemption_labels.extend(label for label in labels if label not in exemption_labels)
        labels_known_at.append(len(exemption_labels))
        for index, wdoc in enumerate(document.get("waivers", [])):
            base = rules_by_id.get(wdoc["rule"])
            if base is None:
                problems.append(
                    Problem(source, f"waivers[{index}].rule", f"no rule {wdoc['rule']!r} to waive")
                )
            elif base.get("locked") and rule_meta[wdoc["rule"]]["locked_by"] != name:
                problems.append(
                    Problem(
                        source,
                        f"waivers[{index}].rule",
                        f"rule {wdoc['rule']!r} is locked by "
                        f"{rule_meta[wdoc['rule']]['locked_by']!r} and cannot be waived here",
                    )
                )
            else:
                waivers.append(wdoc)

    for rule_id, rdoc in rules_by_id.items():
        meta = rule_meta[rule_id]
        if not rdoc.get("require"):
            problems.append(
                Problem(meta["source"], f"{meta['path']}.require", "a rule must require a field")
            )
        for index, field_id in enumerate(rdoc.get("require", [])):
            if field_id not in fields_by_id:
                known = ", ".join(sorted(fields_by_id)) or "none defined"
                problems.append(
                    Problem(
                        meta["source"],
                        f"{meta['path']}.require[{index}]",
                        f"unknown field {field_id!r} (known: {known})",
                    )
                )
    if problems:
        raise RuleSetError(problems)

    outcome_fields = {fid: _field(fdoc) for fid, fdoc in fields_by_id.items()}
    resolved_rules = tuple(
        _rule(rdoc, rule_meta[rid], exemption_labels, labels_known_at[rule_meta[rid]["depth"]])
        for rid, rdoc in rules_by_id.items()
    )
    scope = merged.get("scope", {})
    merged["fields"] = list(fields_by_id.values())
    merged["rules"] = list(rules_by_id.values())
    merged["exemptions"] = {"labels": exemption_labels}
    merged["waivers"] = waivers
    return RuleSet(
        name=merged["name"],
        description=str(merged.get("description", "")),
        fields=outcome_fields,
        rules=resolved_rules,
        waivers=tuple(_waiver(w) for w in waivers),
        exemption_labels=tuple(exemption_labels),
        trackers=tuple(scope.get("trackers", ())),
        projects=tuple(scope.get("projects", ())),
        source=chain[-1][1],
        lineage=tuple(reversed(lineage[:-1])),
        document=merged,
        version=content_version(merged),
    )


def content_version(document: Mapping[str, Any]) -> str:
    """Hash a merged document; computed once per rule set because every evaluation records it."""
    canonical = json.dumps(document, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _loosening(base: Mapping[str, Any], override: Mapping[str, Any], origin: str) -> list[str]:
    """Say how an override would loosen a locked rule (empty when it only tightens)."""
    said = f"rule {base['id']!r} is locked by {origin!r}"
    problems: list[str] = []
    if "mode" in override and Mode(override["mode"]).rank < Mode(base.get("mode", "warn")).rank:
        problems.append(
            f"{said}: mode cannot go from {base.get('mode', 'warn')} to {override['mode']}"
        )
    if "severity" in override and (
        Severity(override["severity"]).rank < Severity(base.get("severity", "error")).rank
    ):
        problems.append(
            f"{said}: severity cannot go from {base.get('severity', 'error')} to "
            f"{override['severity']}"
        )
    if "require" in override and not set(base.get("require", [])) <= set(override["require"]):
        dropped = sorted(set(base.get("require", [])) - set(override["require"]))
        problems.append(f"{said}: it must still require {', '.join(dropped)}")
    if "when" in override and override["when"] != base.get("when"):
        problems.append(f"{said}: its scope (when) cannot change")
    if "locked" in override and not override["locked"]:
        problems.append(f"{said}: it cannot be unlocked")
    base_checks, new_checks = base.get("checks", {}), override.get("checks", {})
    for name, value in base_checks.items():
        if name not in new_checks or name == "severity":
            continue
        new = new_checks[name]
        weaker = (
            (value is True and new is False)
            or (name == "min_words" and new < value)
            or (name == "pattern" and new != value)
        )
        if weaker:
            problems.append(f"{said}: check {name} cannot be relaxed")
    if (
        "severity" in new_checks
        and Severity(new_checks["severity"]).rank
        < Severity(base_checks.get("severity", "warning")).rank
    ):
        problems.append(f"{said}: checks.severity cannot be lowered")
    return problems


def _field(doc: Mapping[str, Any]) -> OutcomeField:
    name = str(doc.get("name") or doc["id"].replace("_", " ").capitalize())
    names = [name, *doc.get("synonyms", [])]
    sources = doc.get("sources")
    if sources is None:
        sources = {"custom_fields": names, "headings": names}
    synonyms = list(doc.get("synonyms", ()))
    return OutcomeField(
        id=doc["id"],
        name=name,
        why=str(doc.get("why", "")),
        custom_fields=_unique([*sources.get("custom_fields", ()), *synonyms]),
        headings=_unique([*sources.get("headings", ()), *synonyms]),
        links=tuple(
            LinkSource(
                link_types=tuple(link.get("link_types", ())),
                relations=tuple(link.get("relations", ())),
                target_types=tuple(link.get("target_types", ())),
                target_project_types=tuple(link.get("target_project_types", ())),
            )
            for link in sources.get("links", ())
        ),
        customer_needs=bool(sources.get("customer_needs", False)),
    )


def _rule(
    doc: Mapping[str, Any], meta: Mapping[str, Any], labels: Sequence[str], known: int
) -> Rule:
    when = doc.get("when", {})
    checks = doc.get("checks", {})
    locked = bool(doc.get("locked", False))
    return Rule(
        id=doc["id"],
        require=tuple(doc.get("require", ())),
        description=str(doc.get("description", "")),
        why=str(doc.get("why", "")),
        when=When(
            trackers=tuple(when.get("trackers", ())),
            kinds=tuple(k.casefold() for k in when.get("kinds", ())),
            types=tuple(t.casefold() for t in when.get("types", ())),
            labels=tuple(when.get("labels", ())),
            projects=tuple(p.casefold() for p in when.get("projects", ())),
            status_categories=tuple(when.get("status_categories", ())),
        ),
        checks=Checks(
            non_empty=bool(checks.get("non_empty", True)),
            min_words=checks.get("min_words"),
            pattern=checks.get("pattern"),
            measurable=bool(checks.get("measurable", False)),
            hypothesis_form=bool(checks.get("hypothesis_form", False)),
            problem_not_solution=bool(checks.get("problem_not_solution", False)),
            severity=Severity(checks.get("severity", "warning")),
        ),
        severity=Severity(doc.get("severity", "error")),
        mode=Mode(doc.get("mode", "warn")),
        locked=locked,
        origin=str(meta["origin"]),
        # A project may add exemption labels, but only those known where a locked rule was
        # defined can take an item out of that rule.
        exempt_labels=tuple(labels[:known] if locked else labels),
    )


def _waiver(doc: Mapping[str, Any]) -> Waiver:
    return Waiver(
        rule=doc["rule"],
        owner=doc["owner"],
        expires=doc["expires"],
        items=tuple(doc.get("items", ())),
        reason=str(doc.get("reason", "")),
    )


def _unique(names: Sequence[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(normalize_name(name), name)
    return tuple(seen.values())


def _either(names: Sequence[str], *, quote: bool = True) -> str:
    shown = [f'"{n}"' if quote else n for n in names]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
