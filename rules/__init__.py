"""The rule engine: tracker-neutral items, rule sets, and self-explaining evaluation."""

from rules.engine import evaluate
from rules.loading import parse_ruleset, preset
from rules.model import Link, Person, Section, StatusCategory, Tracker, WorkItem
from rules.result import Evaluation, Mode, Result, Severity, Status
from rules.ruleset import Problem, RuleSet, RuleSetError

__all__ = [
    "Evaluation",
    "Link",
    "Mode",
    "Person",
    "Problem",
    "Result",
    "RuleSet",
    "RuleSetError",
    "Section",
    "Severity",
    "Status",
    "StatusCategory",
    "Tracker",
    "WorkItem",
    "evaluate",
    "parse_ruleset",
    "preset",
]
