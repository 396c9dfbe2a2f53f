"""Built-in rule sets shipped with leanguard."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

PRESETS = ("lean",)
DEFAULT_PRESET = "lean"


@cache
def preset_text(name: str) -> str:
    """Return a preset's YAML as shipped in the package."""
    if name not in PRESETS:
        raise KeyError(name)
    return files(__name__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")


def preset_source(name: str) -> str:
    """Return the name a preset is known by in messages and lineage."""
    return f"preset:{name}"


def is_preset(reference: Any) -> bool:
    """Tell whether an ``extends`` value names a built-in preset."""
    return isinstance(reference, str) and reference in PRESETS
