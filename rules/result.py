"""The result tree: every node says what was looked for, where, what was found and how to fix it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum


class Status(StrEnum):
    """The outcome of a node; ``fail`` is the only one that asks for work."""

    PASS = "pass"
    FAIL = "fail"
    SKIPPED = "skipped"
    EXEMPT = "exempt"
    WAIVED = "waived"


class Severity(StrEnum):
    """How much a failure matters."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        """Order severities: info < warning < error."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


class Mode(StrEnum):
    """What a rule does when it fails."""

    OFF = "off"
    DRY_RUN = "dry-run"
    WARN = "warn"
    GATE = "gate"

    @property
    def rank(self) -> int:
        """Order modes from loosest to strictest."""
        return _MODE_RANK[self]

    @property
    def writes(self) -> bool:
        """Tell whether failures in this mode are shown on the ticket."""
        return self in (Mode.WARN, Mode.GATE)


_MODE_RANK = {Mode.OFF: 0, Mode.DRY_RUN: 1, Mode.WARN: 2, Mode.GATE: 3}


@dataclass(frozen=True, slots=True)
class Result:
    """One node of the tree: the item, a rule, an outcome field or a single check."""

    kind: str
    """``item``, ``rule``, ``field`` or ``check``."""
    name: str
    """The item key, rule id, field id or check name."""
    status: Status
    message: str
    """One sentence that says what happened."""
    looked_for: str = ""
    looked_in: tuple[str, ...] = ()
    found: str = ""
    fix: str = ""
    why: str = ""
    who: tuple[str, ...] = ()
    severity: Severity | None = None
    """Set on failures (and waived failures)."""
    field: str | None = None
    """The outcome field id this node is about, if any."""
    mode: Mode | None = None
    children: tuple[Result, ...] = ()

    def walk(self) -> Iterator[Result]:
        """Yield this node and every node below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def failures(self) -> list[Result]:
        """Return the rule-level nodes that fail."""
        return [node for node in self.walk() if node.kind == "rule" and node.status is Status.FAIL]

    def with_status(self, status: Status, message: str | None = None) -> Result:
        """Return a copy with another status (and message)."""
        return replace(
            self, status=status, message=message if message is not None else self.message
        )

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-safe dict of the tree."""
        return {
            "kind": self.kind,
            "name": self.name,
            "status": self.status.value,
            "message": self.message,
            "looked_for": self.looked_for,
            "looked_in": list(self.looked_in),
            "found": self.found,
            "fix": self.fix,
            "why": self.why,
            "who": list(self.who),
            "severity": self.severity.value if self.severity else None,
            "field": self.field,
            "mode": self.mode.value if self.mode else None,
            "children": [child.to_dict() for child in self.children],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Result:
        """Rebuild a tree from :meth:`to_dict` output."""
        severity = data.get("severity")
        mode = data.get("mode")
        children = data.get("children")
        looked_in = data.get("looked_in")
        who = data.get("who")
        return cls(
            kind=str(data["kind"]),
            name=str(data["name"]),
            status=Status(str(data["status"])),
            message=str(data.get("message") or ""),
            looked_for=str(data.get("looked_for") or ""),
            looked_in=tuple(str(x) for x in looked_in) if isinstance(looked_in, list) else (),
            found=str(data.get("found") or ""),
            fix=str(data.get("fix") or ""),
            why=str(data.get("why") or ""),
            who=tuple(str(x) for x in who) if isinstance(who, list) else (),
            severity=Severity(severity) if isinstance(severity, str) else None,
            field=str(data["field"]) if data.get("field") is not None else None,
            mode=Mode(mode) if isinstance(mode, str) else None,
            children=tuple(cls.from_dict(child) for child in children if isinstance(child, Mapping))
            if isinstance(children, list)
            else (),
        )


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The verdict on one item under one rule set."""

    item_key: str
    tracker: str
    ruleset: str
    ruleset_version: str
    tree: Result
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def status(self) -> Status:
        """The item's overall status."""
        return self.tree.status

    def failing_rules(self, *, visible_only: bool = True) -> list[Result]:
        """Return failing rule nodes; with ``visible_only``, only those a card shows."""
        return [
            node
            for node in self.tree.failures()
            if not visible_only or (node.mode is not None and node.mode.writes)
        ]

    @property
    def worst_severity(self) -> Severity | None:
        """The highest severity among visible failures."""
        severities = [node.severity for node in self.failing_rules() if node.severity]
        return max(severities, key=lambda s: s.rank) if severities else None

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-safe dict."""
        return {
            "item_key": self.item_key,
            "tracker": self.tracker,
            "ruleset": self.ruleset,
            "ruleset_version": self.ruleset_version,
            "status": self.status.value,
            "counts": dict(self.counts),
            "tree": self.tree.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Evaluation:
        """Rebuild an evaluation from :meth:`to_dict` output."""
        tree = data["tree"]
        counts = data.get("counts")
        if not isinstance(tree, Mapping):
            raise ValueError("evaluation has no tree")
        return cls(
            item_key=str(data["item_key"]),
            tracker=str(data["tracker"]),
            ruleset=str(data["ruleset"]),
            ruleset_version=str(data["ruleset_version"]),
            tree=Result.from_dict(tree),
            counts={str(k): int(str(v)) for k, v in counts.items()}
            if isinstance(counts, Mapping)
            else {},
        )
