"""Rules in plain words for the admin page, and the form that writes YAML for common changes."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import yaml

from plugin.rules_store import dump_yaml
from rules import RuleSet
from rules.result import Mode, Severity
from rules.ruleset import OutcomeField, Rule

KINDS = ("epic", "story", "task", "bug", "subtask", "project", "idea", "issue")
MODES = tuple(mode.value for mode in Mode)
SEVERITIES = tuple(severity.value for severity in Severity)

MODE_WORDS = {
    "off": "switched off",
    "dry-run": "dry run: checked and recorded on the details page, never shown on the ticket",
    "warn": "warns: failures show on the card",
    "gate": "gate: failures show on the card and block",
}
CHECK_WORDS = {
    "hypothesis_form": "names a change, an expected outcome and a signal",
    "measurable": "is measurable (a number or a from-to, ideally with a date)",
    "problem_not_solution": "describes a problem, not a solution",
}


@dataclass(frozen=True)
class FieldView:
    """An outcome field and where it may be written, in words."""

    id: str
    name: str
    where: tuple[str, ...]


@dataclass(frozen=True)
class RuleView:
    """A rule in plain words, with where it was defined."""

    id: str
    origin: str
    changed_here: bool
    locked: bool
    mode: str
    severity: str
    check_severity: str
    kinds: tuple[str, ...]
    require: tuple[str, ...]
    summary: str
    checks: tuple[str, ...]
    mode_words: str


@dataclass(frozen=True)
class WaiverView:
    """A waiver in words."""

    rule: str
    items: tuple[str, ...]
    owner: str
    expires: date
    reason: str
    expired: bool
    inherited: bool


@dataclass(frozen=True)
class RulesetView:
    """A whole rule set as the admin page shows it."""

    name: str
    version: str
    lineage: tuple[str, ...]
    fields: tuple[FieldView, ...]
    rules: tuple[RuleView, ...]
    exemption_labels: tuple[str, ...]
    inherited_labels: tuple[str, ...]
    waivers: tuple[WaiverView, ...]


def describe(
    ruleset: RuleSet,
    own: Mapping[str, Any] | None,
    parent: RuleSet | None,
    *,
    today: date | None = None,
) -> RulesetView:
    """Describe a rule set; ``own`` is the scope's own document, ``parent`` what it extends."""
    today = today or date.today()
    own_rules = {
        str(entry.get("id")): entry
        for entry in (own or {}).get("rules") or []
        if isinstance(entry, Mapping)
    }
    parent_labels = parent.exemption_labels if parent is not None else ()
    parent_waivers = (
        {(w.rule, w.items, w.owner, w.expires) for w in parent.waivers} if parent else set()
    )
    return RulesetView(
        name=ruleset.name,
        version=ruleset.version,
        lineage=ruleset.lineage,
        fields=tuple(_field(f) for f in ruleset.fields.values()),
        rules=tuple(_rule(rule, ruleset, rule.id in own_rules) for rule in ruleset.rules),
        exemption_labels=ruleset.exemption_labels,
        inherited_labels=tuple(
            label for label in ruleset.exemption_labels if label in parent_labels
        ),
        waivers=tuple(
            WaiverView(
                rule=w.rule,
                items=w.items,
                owner=w.owner,
                expires=w.expires,
                reason=w.reason,
                expired=w.expires < today,
                inherited=(w.rule, w.items, w.owner, w.expires) in parent_waivers,
            )
            for w in ruleset.waivers
        ),
    )


def _field(outcome: OutcomeField) -> FieldView:
    where: list[str] = []
    if outcome.custom_fields:
        where.append("a custom field named " + _either(outcome.custom_fields))
    if outcome.headings:
        where.append("a description section headed " + _either(outcome.headings))
    where.extend(link.describe() for link in outcome.links)
    if outcome.customer_needs:
        where.append("a Linear customer request")
    return FieldView(outcome.id, outcome.name, tuple(where))


def _rule(rule: Rule, ruleset: RuleSet, changed_here: bool) -> RuleView:
    names = [ruleset.fields[f].name.lower() for f in rule.require if f in ruleset.fields]
    who = _and([kind + "s" for kind in rule.when.kinds]) if rule.when.kinds else "all items"
    scope = []
    if rule.when.trackers:
        scope.append("in " + _and(list(rule.when.trackers)))
    if rule.when.types:
        scope.append("of type " + _either(rule.when.types))
    if rule.when.projects:
        scope.append("in projects " + ", ".join(p.upper() for p in rule.when.projects))
    if rule.when.labels:
        scope.append("labelled " + _either(rule.when.labels))
    if rule.when.status_categories:
        scope.append(
            "while " + " or ".join(c.replace("_", " ") for c in rule.when.status_categories)
        )
    subject = " ".join([who[:1].upper() + who[1:], *scope])
    summary = f"{subject} need {_and([_article(n) for n in names]) or 'nothing'}."
    checks: list[str] = []
    for name in rule.checks.enabled():
        if name == "min_words":
            checks.append(f"has at least {rule.checks.min_words} words")
        elif name == "pattern":
            checks.append(f"matches /{rule.checks.pattern}/")
        else:
            checks.append(CHECK_WORDS.get(name, name.replace("_", " ")))
    return RuleView(
        id=rule.id,
        origin=rule.origin,
        changed_here=changed_here,
        locked=rule.locked,
        mode=rule.mode.value,
        severity=rule.severity.value,
        check_severity=rule.checks.severity.value,
        kinds=rule.when.kinds,
        require=rule.require,
        summary=summary,
        checks=tuple(checks),
        mode_words=MODE_WORDS[rule.mode.value],
    )


# The form for common changes -----------------------------------------------------------------


@dataclass(frozen=True)
class RuleChoice:
    """What the form says about one rule."""

    id: str
    mode: str
    severity: str
    kinds: tuple[str, ...]
    require: tuple[str, ...]


@dataclass(frozen=True)
class WaiverChoice:
    """One waiver row of the form."""

    rule: str
    items: tuple[str, ...]
    owner: str
    expires: str
    reason: str


@dataclass
class Choices:
    """Everything the form says."""

    rules: list[RuleChoice] = field(default_factory=list)
    exemption_labels: list[str] = field(default_factory=list)
    waivers: list[WaiverChoice] = field(default_factory=list)


def parse_form(form: Mapping[str, Any], get_list: Any) -> Choices:
    """Read the form's fields (``get_list(name)`` returns every value of a repeated field)."""
    choices = Choices()
    for rule_id in get_list("rule_ids"):
        choices.rules.append(
            RuleChoice(
                id=rule_id,
                mode=_one_of(form.get(f"rule-{rule_id}-mode"), MODES, "warn"),
                severity=_one_of(form.get(f"rule-{rule_id}-severity"), SEVERITIES, "error"),
                kinds=tuple(k for k in get_list(f"rule-{rule_id}-kinds") if k in KINDS),
                require=tuple(get_list(f"rule-{rule_id}-require")),
            )
        )
    choices.exemption_labels = _words(form.get("exemption_labels"))
    for index in range(_count(form.get("waiver_count"))):
        row = {
            name: str(form.get(f"waiver-{index}-{name}") or "").strip()
            for name in ("rule", "items", "owner", "expires", "reason")
        }
        if not any(row.values()) or form.get(f"waiver-{index}-remove"):
            continue
        choices.waivers.append(
            WaiverChoice(
                rule=row["rule"],
                items=tuple(_words(row["items"])),
                owner=row["owner"],
                expires=row["expires"],
                reason=row["reason"],
            )
        )
    return choices


def apply_choices(text: str, parent: RuleSet | None, choices: Choices) -> str:
    """Rewrite a scope's YAML so that it says what the form says, changing nothing else."""
    loaded = yaml.safe_load(text) if text.strip() else None
    document: dict[str, Any] = dict(loaded) if isinstance(loaded, dict) else {"version": 1}
    inherited = {
        str(entry["id"]): entry
        for entry in (parent.document.get("rules", []) if parent is not None else [])
    }
    entries: list[Any] = list(document.get("rules") or [])
    by_id = {
        str(entry.get("id")): entry
        for entry in entries
        if isinstance(entry, dict) and entry.get("id") is not None
    }
    for choice in choices.rules:
        base = inherited.get(choice.id)
        entry = by_id.get(choice.id)
        if entry is None:
            entry = {"id": choice.id}
            by_id[choice.id] = entry
            entries.append(entry)
        _set(entry, "mode", choice.mode, base, "warn")
        _set(entry, "severity", choice.severity, base, "error")
        _set(entry, "require", list(choice.require), base, [])
        base_when = dict(base.get("when") or {}) if base is not None else {}
        when = dict(entry.get("when") or base_when)
        when.pop("kinds", None)
        if choice.kinds:
            when["kinds"] = list(choice.kinds)
        if base is not None and _same_when(when, base_when):
            entry.pop("when", None)
        elif when or "when" in entry or base is not None:
            entry["when"] = when
    # An override that says nothing but its id is noise.
    entries = [e for e in entries if not (isinstance(e, dict) and set(e) == {"id"})]
    _put(document, "rules", entries)
    parent_labels = set(parent.exemption_labels) if parent is not None else set()
    own_labels = [label for label in choices.exemption_labels if label not in parent_labels]
    exemptions = dict(document.get("exemptions") or {})
    exemptions.pop("labels", None)
    if own_labels:
        exemptions["labels"] = own_labels
    _put(document, "exemptions", exemptions)
    _put(document, "waivers", [_waiver(w) for w in choices.waivers])
    return dump_yaml(document)


def _set(
    entry: dict[str, Any], key: str, value: Any, base: Mapping[str, Any] | None, default: Any
) -> None:
    if base is not None and base.get(key, default) == value:
        entry.pop(key, None)
    elif value != default or key in entry or base is not None:
        entry[key] = copy.deepcopy(value)


def _same_when(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    def norm(when: Mapping[str, Any]) -> dict[str, Any]:
        return {k: sorted(v) if isinstance(v, list) else v for k, v in when.items() if v}

    return norm(a) == norm(b)


def _put(document: dict[str, Any], key: str, value: Any) -> None:
    if value:
        document[key] = value
    else:
        document.pop(key, None)


def _waiver(choice: WaiverChoice) -> dict[str, Any]:
    waiver: dict[str, Any] = {"rule": choice.rule}
    if choice.items:
        waiver["items"] = list(choice.items)
    waiver["owner"] = choice.owner
    try:
        waiver["expires"] = date.fromisoformat(choice.expires)
    except ValueError:
        # Kept as written, so validation names the bad date at its path.
        waiver["expires"] = choice.expires
    if choice.reason:
        waiver["reason"] = choice.reason
    return waiver


def _one_of(value: Any, allowed: Sequence[str], default: str) -> str:
    return str(value) if value in allowed else default


def _words(value: Any) -> list[str]:
    return [part.strip() for part in str(value or "").replace("\n", ",").split(",") if part.strip()]


def _count(value: Any) -> int:
    try:
        return max(0, min(100, int(str(value))))
    except ValueError:
        return 0


def _either(names: Sequence[str]) -> str:
    shown = [f'"{n}"' for n in names]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


def _and(names: Sequence[str]) -> str:
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word
