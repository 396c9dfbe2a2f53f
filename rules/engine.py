"""Evaluate a work item against a rule set and explain every verdict."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from datetime import date
from functools import lru_cache

from rules import quality
from rules.locate import ItemIndex, Search, find
from rules.model import WorkItem
from rules.result import Evaluation, Mode, Result, Severity, Status
from rules.ruleset import Checks, OutcomeField, Rule, RuleSet, When

NOBODY = "a project admin"
"""Who can fix an item that has no assignee, lead or reporter."""


def evaluate(item: WorkItem, ruleset: RuleSet, *, on: date | None = None) -> Evaluation:
    """Return the verdict on ``item`` under ``ruleset``; deterministic for a given ``on``."""
    today = on or date.today()
    index = ItemIndex(item)
    who = tuple(person.name for person in item.who_can_fix() if person.name) or (NOBODY,)
    nodes = tuple(_rule(rule, item, index, ruleset, who, today) for rule in ruleset.rules)
    counts = Counter(node.status.value for node in nodes)
    for node in nodes:
        if node.status is Status.FAIL and node.mode is not None and node.mode.writes:
            counts["errors" if node.severity is Severity.ERROR else "warnings"] += 1
    status, message = _roll_up(item, nodes, counts)
    tree = Result(
        kind="item",
        name=item.key,
        status=status,
        message=message,
        looked_for=f"the {len(ruleset.rules)} rules of rule set {ruleset.name!r}",
        who=who,
        children=nodes,
    )
    return Evaluation(
        item_key=item.key,
        tracker=item.tracker,
        ruleset=ruleset.name,
        ruleset_version=ruleset.version,
        tree=tree,
        counts=dict(counts),
    )


def _roll_up(item: WorkItem, nodes: tuple[Result, ...], counts: Counter[str]) -> tuple[Status, str]:
    visible_failures = [
        n for n in nodes if n.status is Status.FAIL and n.mode is not None and n.mode.writes
    ]
    applicable = [n for n in nodes if n.status is not Status.SKIPPED]
    if visible_failures:
        return Status.FAIL, f"{len(visible_failures)} of {len(applicable)} rules fail."
    if counts[Status.WAIVED.value]:
        return Status.WAIVED, "Failing rules are waived."
    if applicable and all(n.status is Status.EXEMPT for n in applicable):
        return Status.EXEMPT, "Exempt from every rule that applies."
    if not applicable:
        return Status.SKIPPED, f"No rule applies to this {item.kind}."
    return Status.PASS, f"All {len(applicable)} rules that apply pass."


def _rule(
    rule: Rule,
    item: WorkItem,
    index: ItemIndex,
    ruleset: RuleSet,
    who: tuple[str, ...],
    today: date,
) -> Result:
    looked_for = rule.description or _looked_for(rule, ruleset)
    why = rule.why or _first_why(rule, ruleset)
    field = rule.require[0] if len(rule.require) == 1 else None
    reason_skipped = ""
    status = Status.SKIPPED
    if rule.mode is Mode.OFF:
        reason_skipped = "Switched off in this rule set."
    elif out_of_scope := _out_of_scope(rule.when, item, index.labels):
        reason_skipped = f"Does not apply: {out_of_scope}."
    elif exempt_by := next((lb for lb in rule.exempt_labels if lb.casefold() in index.labels), ""):
        reason_skipped = f'Exempt: the item is labelled "{exempt_by}".'
        status = Status.EXEMPT
    if reason_skipped:
        return Result(
            kind="rule",
            name=rule.id,
            status=status,
            message=reason_skipped,
            looked_for=looked_for,
            why=why,
            mode=rule.mode,
            field=field,
        )

    field_nodes = tuple(
        _field(ruleset.fields[field_id], rule, index, who) for field_id in rule.require
    )
    if all(n.status is Status.PASS for n in field_nodes):
        return Result(
            kind="rule",
            name=rule.id,
            status=Status.PASS,
            message=_sentence_join(n.message for n in field_nodes),
            looked_for=looked_for,
            why=why,
            mode=rule.mode,
            field=field,
            children=field_nodes,
        )
    missing = [n for n in field_nodes if n.status is Status.FAIL and not n.children]
    severity = rule.severity if missing else rule.checks.severity
    failing = missing or [n for n in field_nodes if n.status is Status.FAIL]
    failed = Result(
        kind="rule",
        name=rule.id,
        status=Status.FAIL,
        message=_sentence_join(n.message for n in failing),
        looked_for=looked_for,
        looked_in=tuple(place for n in failing for place in n.looked_in),
        found=_sentence_join(n.found for n in failing if n.found),
        fix=_sentence_join(n.fix for n in failing),
        why=why,
        who=who,
        severity=severity,
        field=field,
        mode=rule.mode,
        children=field_nodes,
    )
    waiver = next((w for w in ruleset.waivers if w.covers(rule.id, item.key, today)), None)
    if waiver is None:
        return failed
    reason = f": {waiver.reason.rstrip('.')}" if waiver.reason else ""
    return failed.with_status(
        Status.WAIVED,
        f"Waived until {waiver.expires.isoformat()} by {waiver.owner}{reason}.",
    )


def _field(outcome: OutcomeField, rule: Rule, index: ItemIndex, who: tuple[str, ...]) -> Result:
    return _field_node(outcome, rule, find(index, outcome), who, index.item.tracker)


@lru_cache(maxsize=8192)
def _field_node(
    outcome: OutcomeField, rule: Rule, search: Search, who: tuple[str, ...], tracker: str
) -> Result:
    # Everything the node says follows from what was found; the same findings recur on every
    # re-evaluation of an item, so the node (with its checks) is built once.
    evidence = search.evidence
    if evidence is None:
        return Result(
            kind="field",
            name=outcome.id,
            status=Status.FAIL,
            message=f"No {outcome.name.lower()} found.",
            looked_for=outcome.article_name,
            looked_in=search.looked_in,
            found=_capitalized("; ".join(search.empty)) if search.empty else "Nothing.",
            fix=_how_to_add(outcome, tracker),
            why=outcome.why,
            who=who,
            severity=rule.severity,
            field=outcome.id,
        )
    checks = _checks(outcome, rule.checks, evidence.text) if evidence.text else ()
    failing = [c for c in checks if c.status is Status.FAIL]
    if not failing:
        return Result(
            kind="field",
            name=outcome.id,
            status=Status.PASS,
            message=f"{outcome.name} found in {evidence.where}.",
            looked_for=outcome.article_name,
            looked_in=search.looked_in,
            found=evidence.where,
            field=outcome.id,
            children=checks,
        )
    return Result(
        kind="field",
        name=outcome.id,
        status=Status.FAIL,
        message=f"The {outcome.name.lower()} in {evidence.where} needs work: "
        + _sentence_join(c.message for c in failing),
        looked_for=outcome.article_name,
        looked_in=search.looked_in,
        found=evidence.where,
        fix=_sentence_join(c.fix for c in failing),
        why=outcome.why,
        who=who,
        severity=rule.checks.severity,
        field=outcome.id,
        children=checks,
    )


@lru_cache(maxsize=8192)
def _checks(outcome: OutcomeField, checks: Checks, text: str) -> tuple[Result, ...]:
    # The quality checks cost far more than the rest of an evaluation and are pure; an item
    # is re-evaluated on every change to it, mostly with its outcome texts unchanged.
    results: list[Result] = []
    for name in _enabled(checks):
        if name == "min_words":
            words = len(text.split())
            wanted = checks.min_words or 0
            ok = words >= wanted
            results.append(
                _check(
                    name,
                    ok,
                    outcome,
                    checks.severity,
                    message=f"It has {words} words; at least {wanted} are expected."
                    if not ok
                    else f"{words} words.",
                    found=f"{words} words",
                    fix=f"Say more in the {outcome.name.lower()}: at least {wanted} words.",
                )
            )
        elif name == "pattern":
            pattern = checks.pattern or ""
            ok = _compiled(pattern).search(text) is not None
            results.append(
                _check(
                    name,
                    ok,
                    outcome,
                    checks.severity,
                    message="It does not have the expected form." if not ok else "Matches.",
                    found="matches" if ok else "no match",
                    fix=f"Write the {outcome.name.lower()} so that it matches /{pattern}/.",
                )
            )
        else:
            verdict = _verdict(name, text)
            results.append(
                _check(
                    name,
                    verdict.ok,
                    outcome,
                    checks.severity,
                    message=verdict.problem or "Looks right.",
                    found=verdict.found,
                    fix=verdict.hint,
                )
            )
    return tuple(results)


def _check(
    name: str,
    ok: bool,
    outcome: OutcomeField,
    severity: Severity,
    *,
    message: str,
    found: str,
    fix: str,
) -> Result:
    return Result(
        kind="check",
        name=name,
        status=Status.PASS if ok else Status.FAIL,
        message=message,
        looked_for=f"{name.replace('_', ' ')} of the {outcome.name.lower()}",
        found=found,
        fix="" if ok else fix,
        severity=None if ok else severity,
        field=outcome.id,
    )


@lru_cache(maxsize=1024)
def _enabled(checks: Checks) -> tuple[str, ...]:
    return tuple(checks.enabled())


def _verdict(name: str, text: str) -> quality.Verdict:
    return quality.CHECKS[name](text)


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE | re.MULTILINE)


def _out_of_scope(when: When, item: WorkItem, labels: frozenset[str]) -> str:
    """Say why an item is outside a rule's ``when`` (empty when it is inside)."""
    if when.trackers and item.tracker not in when.trackers:
        return f"only for {', '.join(when.trackers)}"
    if when.kinds and item.kind.casefold() not in when.kinds:
        return f"only for {_plural_list(when.kinds)}, and this is {_article(item.kind)}"
    if when.types and item.type_name.casefold() not in when.types:
        return f"only for issue types {', '.join(when.types)}"
    if when.projects and item.project.casefold() not in when.projects:
        return f"only for projects {', '.join(p.upper() for p in when.projects)}"
    if when.labels and not any(label.casefold() in labels for label in when.labels):
        return f"only for items labelled {', '.join(when.labels)}"
    if when.status_categories and (
        item.status_category is None or item.status_category.value not in when.status_categories
    ):
        return f"only while {' or '.join(c.replace('_', ' ') for c in when.status_categories)}"
    return ""


def _how_to_add(outcome: OutcomeField, tracker: str) -> str:
    # Issue links are a Jira notion and customer requests a Linear one; only offer what the
    # item's own tracker has.
    options: list[str] = []
    if outcome.headings:
        options.append(f'add a description section headed "{outcome.headings[0]}"')
    if outcome.custom_fields:
        options.append(f'fill in the custom field "{outcome.custom_fields[0]}"')
    if outcome.links and tracker != "linear":
        options.append("add " + outcome.links[0].describe())
    if outcome.customer_needs and tracker != "jira":
        options.append("link a customer request")
    if not options:
        return f"Add {outcome.article_name}."
    text = options[0] if len(options) == 1 else ", ".join(options[:-1]) + " or " + options[-1]
    return _capitalized(text) + "."


def _looked_for(rule: Rule, ruleset: RuleSet) -> str:
    names = [ruleset.fields[f].article_name for f in rule.require if f in ruleset.fields]
    return _and(names) or "nothing"


def _first_why(rule: Rule, ruleset: RuleSet) -> str:
    for field_id in rule.require:
        outcome = ruleset.fields.get(field_id)
        if outcome is not None and outcome.why:
            return outcome.why
    return ""


def _sentence_join(parts: Iterable[str]) -> str:
    # Every part is a sentence the engine or a check wrote, already trimmed.
    return " ".join([part for part in parts if part])


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _and(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _plural_list(kinds: tuple[str, ...]) -> str:
    return ", ".join(kind + "s" for kind in kinds)


def _article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word
