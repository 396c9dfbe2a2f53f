"""Tolerant readers for tracker JSON: a wrong-typed value reads as empty, never as an error."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

_EMPTY: Mapping[str, Any] = {}


def as_map(value: object) -> Mapping[str, Any]:
    """Return ``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, Mapping) else _EMPTY


def as_list(value: object) -> list[Any]:
    """Return ``value`` as a list if it is a JSON array, else an empty list."""
    return list(value) if isinstance(value, list | tuple) else []


def maps_in(value: object) -> list[Mapping[str, Any]]:
    """Return the objects of a JSON array, skipping anything else."""
    return [entry for entry in as_list(value) if isinstance(entry, Mapping)]


def nodes_of(value: object) -> list[Mapping[str, Any]]:
    """Return the objects of a plain array or a GraphQL connection (``nodes`` or ``edges``)."""
    if isinstance(value, list | tuple):
        return maps_in(value)
    connection = as_map(value)
    if "nodes" in connection:
        return maps_in(connection["nodes"])
    edges = maps_in(connection.get("edges"))
    return [edge["node"] for edge in edges if isinstance(edge.get("node"), Mapping)]


def get_in(value: object, *path: str) -> object:
    """Follow object keys along ``path``; ``None`` where the path breaks."""
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def text(value: object) -> str:
    """Return a string or an integral identifier as text, anything else as ``""``."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def text_in(value: object, *path: str) -> str:
    """Return the text at ``path`` (see :func:`get_in` and :func:`text`)."""
    return text(get_in(value, *path))


def number_text(value: float) -> str:
    """Write a number without a spurious ``.0`` (story points arrive as ``5.0``)."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)


def whole_number(value: object) -> int | None:
    """Return an integral JSON number as an int, else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def timestamp(value: object) -> datetime | None:
    """Parse an ISO 8601 timestamp (``Z``, ``+05:30`` or Jira's ``+0530``); else ``None``."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    # Trackers send UTC when they omit the offset; an aware value keeps comparisons possible.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
