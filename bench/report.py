"""Figures, budgets and the closing table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """A limit a figure must meet: ``value <op> limit``."""

    op: str
    """``>=``, ``<=`` or ``<``."""
    limit: float
    unit: str = ""

    def met(self, value: float) -> bool:
        """Tell whether ``value`` is within the budget."""
        if math.isnan(value):
            return False
        if self.op == ">=":
            return value >= self.limit
        if self.op == "<=":
            return value <= self.limit
        if self.op == "<":
            return value < self.limit
        raise ValueError(f"unknown budget operator {self.op!r}")

    def describe(self) -> str:
        """Render the budget for the table, e.g. ``>= 20,000 /s``."""
        return f"{self.op} {number(self.limit)}{_spaced(self.unit)}"


@dataclass(frozen=True)
class Figure:
    """One measured number, its baseline (measured in the same run) and its budget."""

    part: str
    name: str
    value: float
    unit: str = ""
    baseline: float | None = None
    baseline_name: str = ""
    budget: Budget | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        """``PASS`` or ``MISS`` against the budget, ``info`` when there is none."""
        if self.budget is None:
            return "info"
        return "PASS" if self.budget.met(self.value) else "MISS"

    def value_text(self) -> str:
        """The value with its unit."""
        return f"{number(self.value)}{_spaced(self.unit)}"

    def baseline_text(self) -> str:
        """The baseline with its name, or a dash."""
        if self.baseline is None:
            return "-"
        name = f" ({self.baseline_name})" if self.baseline_name else ""
        return f"{number(self.baseline)}{_spaced(self.unit)}{name}"


def number(value: float) -> str:
    """Format a figure: thousands separators for large numbers, 3 significant digits below."""
    if math.isnan(value):
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _spaced(unit: str) -> str:
    return f" {unit}" if unit else ""


def table(figures: Sequence[Figure]) -> str:
    """Render every figure with its baseline, budget and verdict as a plain-text table."""
    header = ("part", "figure", "value", "baseline (same run)", "budget", "verdict")
    rows = [
        (
            f.part,
            f.name,
            f.value_text(),
            f.baseline_text(),
            f.budget.describe() if f.budget else "-",
            f.verdict,
        )
        for f in figures
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    rule = "-+-".join("-" * width for width in widths)

    def line(cells: Sequence[str]) -> str:
        return " | ".join(
            cell.rjust(width) if 2 <= i <= 3 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(header), rule, *(line(row) for row in rows)]
    notes = [f"- {f.part}: {f.name}: {f.note}" for f in figures if f.note]
    if notes:
        out += ["", "Notes:", *notes]
    return "\n".join(out)


def percentile(samples: Sequence[float], pct: float) -> float:
    """Return the ``pct`` percentile (0-100) by linear interpolation; NaN when empty."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    below, above = ordered[low], ordered[min(low + 1, len(ordered) - 1)]
    if rank == low or below == above:
        return below  # also keeps inf (a sample that never arrived) from becoming NaN
    return below + (above - below) * (rank - low)
