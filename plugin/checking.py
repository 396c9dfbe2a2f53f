"""``leanguard check``: evaluate items from JSON files and report what to fix."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from plugin.mappers import UnknownFormat, items_from_document
from plugin.rulesets import RuleCatalog
from rules import Evaluation, Result, Severity, Status, WorkItem, evaluate


class InputError(ValueError):
    """A file given to ``check`` that cannot be read as items."""


@dataclass(frozen=True)
class Checked:
    """One item and its evaluation."""

    item: WorkItem
    evaluation: Evaluation
    source: str


def check_files(
    paths: Sequence[Path], catalog: RuleCatalog, *, on: date | None = None
) -> list[Checked]:
    """Read every file, map its items and evaluate each under the rule set that applies."""
    checked: list[Checked] = []
    for path in paths:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot be read: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not JSON: {exc.msg} (line {exc.lineno})") from exc
        try:
            items = items_from_document(document, source=str(path))
        except UnknownFormat as exc:
            raise InputError(str(exc)) from exc
        for item in items:
            ruleset = catalog.select(item.tracker, item.project)
            checked.append(Checked(item, evaluate(item, ruleset, on=on), str(path)))
    return checked


def has_errors(checked: Iterable[Checked]) -> bool:
    """Tell whether any item fails a rule at error severity."""
    return any(
        node.severity is Severity.ERROR
        for entry in checked
        for node in entry.evaluation.failing_rules()
    )


def as_json(checked: Sequence[Checked]) -> dict[str, Any]:
    """Return the documented JSON report: items with one result per rule and field."""
    return {
        "items": [
            {
                "key": entry.item.key,
                "tracker": entry.item.tracker,
                "kind": entry.item.kind,
                "status": entry.evaluation.status.value,
                "results": [row for rule in entry.evaluation.tree.children for row in _rows(rule)],
            }
            for entry in checked
        ]
    }


def _rows(rule: Result) -> list[dict[str, Any]]:
    fields = [child for child in rule.children if child.kind == "field"]
    if not fields or (rule.status is not Status.PASS and rule.status is not Status.FAIL):
        return [_row(rule, None, rule)]
    return [_row(rule, field.name, field) for field in fields]


def _row(rule: Result, field_id: str | None, node: Result) -> dict[str, Any]:
    failed = node.status is Status.FAIL
    status = rule.status.value if rule.status is Status.WAIVED else node.status.value
    return {
        "rule": rule.name,
        "field": field_id,
        "status": status,
        "severity": node.severity.value if failed and node.severity else None,
        "message": node.message,
        "fix": node.fix if failed else "",
    }


def as_text(checked: Sequence[Checked]) -> str:
    """Return the report people read: failing items with what to fix, then a summary line."""
    lines: list[str] = []
    for entry in checked:
        failures = entry.evaluation.failing_rules()
        if not failures:
            continue
        item = entry.item
        lines.append(f"{item.key} ({item.tracker} {item.kind}) {item.title}")
        if item.url:
            lines.append(f"  {item.url}")
        for node in failures:
            severity = node.severity.value if node.severity else "info"
            lines.append(f"  [{severity}] {node.name}: {node.message}")
            if node.fix:
                lines.append(f"      fix: {node.fix}")
            if node.why:
                lines.append(f"      why: {node.why}")
            lines.append(f"      who: {', '.join(node.who)}")
        lines.append("")
    counts: dict[str, int] = {}
    for entry in checked:
        counts[entry.evaluation.status.value] = counts.get(entry.evaluation.status.value, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    noun = "item" if len(checked) == 1 else "items"
    lines.append(f"{len(checked)} {noun} checked" + (f": {summary}" if summary else ""))
    return "\n".join(lines)
