"""How names of fields and headings are compared: case, trailing colons, plurals."""

from __future__ import annotations

import re

_DECORATION = re.compile(r"[*_`~]+")
_SPACES = re.compile(r"\s+")


def normalize_name(name: str) -> str:
    """Fold a field name or heading for comparison (case, emphasis, trailing colon, spaces)."""
    text = _DECORATION.sub("", name)
    text = _SPACES.sub(" ", text).strip().rstrip(":").strip()
    return text.casefold()


def singular(name: str) -> str:
    """Return a normalised name without a plural ending (``metrics`` -> ``metric``)."""
    if name.endswith("ies") and len(name) > 4:
        return name[:-3] + "y"
    if name.endswith(("ses", "xes", "ches", "shes")):
        return name[:-2]
    if name.endswith("s") and not name.endswith("ss") and len(name) > 3:
        return name[:-1]
    return name


def names_match(candidate: str, wanted: str) -> bool:
    """Tell whether ``candidate`` names ``wanted``, ignoring case, colons and plurals."""
    a, b = normalize_name(candidate), normalize_name(wanted)
    return a == b or singular(a) == singular(b)
