"""Marshmallow schemas for rule-set documents: strict, so a typo is an error, not a no-op."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from rules.result import Mode, Severity

TRACKERS = ("jira", "linear")
STATUS_CATEGORIES = ("todo", "in_progress", "done")
FORMAT_VERSION = 1

_ID = validate.Regexp(
    r"^[a-z][a-z0-9_-]{0,63}$",
    error="must be lower-case letters, digits, '-' or '_', starting with a letter (at most 64)",
)


def _names(**kwargs: Any) -> fields.List[Any]:
    return fields.List(fields.String(validate=validate.Length(min=1, max=200)), **kwargs)


def _regex(value: str) -> None:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValidationError(f"is not a valid regular expression: {exc}") from exc


class StrictSchema(Schema):
    """A schema that rejects unknown keys."""

    class Meta:
        unknown = RAISE


class LinkSourceSchema(StrictSchema):
    """Which issue links count as evidence for a field."""

    link_types = _names()
    relations = _names()
    target_types = _names()
    target_project_types = _names()

    @validates_schema
    def _not_empty(self, data: dict[str, Any], **_: Any) -> None:
        if not any(data.get(key) for key in data):
            raise ValidationError(
                "a link source needs at least one of link_types, relations, target_types, "
                "target_project_types"
            )


class SourcesSchema(StrictSchema):
    """Where an outcome field may be found."""

    custom_fields = _names()
    headings = _names()
    links = fields.List(fields.Nested(LinkSourceSchema))
    customer_needs = fields.Boolean()


class FieldSchema(StrictSchema):
    """An outcome field: what it is called and where it may live."""

    id = fields.String(required=True, validate=_ID)
    name = fields.String(validate=validate.Length(min=1, max=200))
    synonyms = _names()
    why = fields.String(validate=validate.Length(max=300))
    sources = fields.Nested(SourcesSchema)


class WhenSchema(StrictSchema):
    """Which items a rule applies to; every condition given must hold."""

    trackers = fields.List(fields.String(validate=validate.OneOf(TRACKERS)))
    kinds = _names()
    types = _names()
    labels = _names()
    projects = _names()
    status_categories = fields.List(fields.String(validate=validate.OneOf(STATUS_CATEGORIES)))


class ChecksSchema(StrictSchema):
    """Content checks run on the text of each required field that is present."""

    non_empty = fields.Boolean()
    min_words = fields.Integer(strict=True, validate=validate.Range(min=1, max=1000))
    pattern = fields.String(validate=[validate.Length(min=1, max=500), _regex])
    measurable = fields.Boolean()
    hypothesis_form = fields.Boolean()
    problem_not_solution = fields.Boolean()
    severity = fields.String(validate=validate.OneOf([s.value for s in Severity]))


class RuleSchema(StrictSchema):
    """One rule; in a rule set that extends another only ``id`` is required (partial override)."""

    id = fields.String(required=True, validate=_ID)
    description = fields.String(validate=validate.Length(max=500))
    when = fields.Nested(WhenSchema)
    require = fields.List(fields.String(validate=_ID))
    checks = fields.Nested(ChecksSchema)
    severity = fields.String(validate=validate.OneOf([s.value for s in Severity]))
    mode = fields.String(validate=validate.OneOf([m.value for m in Mode]))
    locked = fields.Boolean()
    why = fields.String(validate=validate.Length(max=300))


class ScopeSchema(StrictSchema):
    """Which items a whole rule set is for."""

    trackers = fields.List(fields.String(validate=validate.OneOf(TRACKERS)))
    projects = _names()


class ExemptionsSchema(StrictSchema):
    """Labels that take an item out of scope on purpose."""

    labels = _names()


class WaiverSchema(StrictSchema):
    """A time-boxed, owned exception to a rule."""

    rule = fields.String(required=True, validate=_ID)
    items = _names()
    owner = fields.String(required=True, validate=validate.Length(min=1, max=200))
    expires = fields.Date(required=True)
    reason = fields.String(validate=validate.Length(max=500))


class RuleSetSchema(StrictSchema):
    """A whole rule-set document."""

    version = fields.Integer(
        required=True, strict=True, validate=validate.Equal(FORMAT_VERSION, error="must be 1")
    )
    name = fields.String(validate=_ID)
    description = fields.String(validate=validate.Length(max=1000))
    extends = fields.String(validate=validate.Length(min=1, max=500), allow_none=True)
    scope = fields.Nested(ScopeSchema)
    fields_ = fields.List(fields.Nested(FieldSchema), data_key="fields")
    rules = fields.List(fields.Nested(RuleSchema))
    exemptions = fields.Nested(ExemptionsSchema)
    waivers = fields.List(fields.Nested(WaiverSchema))


def flatten_errors(messages: object, prefix: str = "") -> list[tuple[str, str]]:
    """Turn marshmallow's nested messages into ``(path, message)`` pairs (``rules[2].checks``)."""
    pairs: list[tuple[str, str]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key == "_schema":
                path = prefix
            elif isinstance(key, int):
                path = f"{prefix}[{key}]"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            pairs.extend(flatten_errors(value, path))
    elif isinstance(messages, list):
        for entry in messages:
            if isinstance(entry, dict | list):
                pairs.extend(flatten_errors(entry, prefix))
            else:
                pairs.append((prefix or "(document)", _phrase(str(entry))))
    else:
        pairs.append((prefix or "(document)", _phrase(str(messages))))
    return pairs


def _phrase(message: str) -> str:
    # marshmallow says "Unknown field." for a typo; say what to do about it.
    if message == "Unknown field.":
        return "unknown key (check the spelling; see the rules format in the README)"
    return message.rstrip(".")
