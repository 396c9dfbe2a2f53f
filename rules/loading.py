"""Turning rule-set text into a resolved :class:`RuleSet`, presets at the base of inheritance."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from rules.presets import DEFAULT_PRESET, is_preset, preset_source, preset_text
from rules.ruleset import Problem, RuleSet, RuleSetError, build, parse_document

Resolve = Callable[[str], tuple[Mapping[str, Any], str]]
"""Given an ``extends`` value, return the parent's validated document and its source name."""


def resolve_preset(reference: str) -> tuple[Mapping[str, Any], str]:
    """Resolve an ``extends`` that names a built-in preset."""
    if not is_preset(reference):
        raise RuleSetError(
            [Problem("(rules)", "extends", f"unknown rule set {reference!r} (presets: lean)")]
        )
    return _preset_document(reference), preset_source(reference)


@cache
def _preset_document(name: str) -> dict[str, Any]:
    return parse_document(preset_text(name), source=preset_source(name))


def parse_ruleset(text: str, *, source: str = "(rules)", resolve: Resolve | None = None) -> RuleSet:
    """Validate rule-set text and resolve its inheritance; raise :class:`RuleSetError`."""
    document = parse_document(text, source=source)
    return build(document, source=source, resolve=_with_presets(resolve))


def _with_presets(resolve: Resolve | None) -> Resolve:
    def chained(reference: str) -> tuple[Mapping[str, Any], str]:
        if is_preset(reference) or resolve is None:
            return resolve_preset(reference)
        return resolve(reference)

    return chained


@cache
def preset(name: str = DEFAULT_PRESET) -> RuleSet:
    """Return a built-in preset, resolved."""
    return build(_preset_document(name), source=preset_source(name), resolve=resolve_preset)
