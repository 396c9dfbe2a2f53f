"""The report as text for the terminal, as CSV, and as server-rendered SVG charts."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from html import escape
from typing import Any

from plugin.reports import HealthReport

OUTPUT_FIGURES = ("epics_delivered", "child_issues_done")
OUTCOME_FIGURES = (
    "epics_started",
    "epics_started_lean_ready",
    "epics_started_lean_unknown",
    "epics_delivered_with_outcome_review",
    "reviews_awaited",
    "hypotheses_validated",
    "hypotheses_invalidated",
    "hypotheses_inconclusive",
    "epics_delivered_with_metric",
)
FLOW_FIGURES = ("epics_in_progress", "large_batches", "median_lead_time_days", "epics_canceled")
HYGIENE_FIGURES = (
    "open_violations",
    "items_failing",
    "waived",
    "violations_fixed",
    "median_days_to_fix",
)
GROUPS = (
    ("Output", OUTPUT_FIGURES),
    ("Outcome", OUTCOME_FIGURES),
    ("Flow", FLOW_FIGURES),
    ("Hygiene", HYGIENE_FIGURES),
)
WEEKLY_COLUMNS = (
    "week",
    "epics_started",
    "epics_started_lean_ready",
    "epics_started_lean_unknown",
    "epics_delivered",
    "child_issues_done",
    "epics_delivered_with_outcome_review",
    "hypotheses_invalidated",
    "epics_in_progress",
    "large_batches",
    "violations_fixed",
    "median_days_to_fix",
    "health_score",
)


def as_text(report: HealthReport) -> str:
    """Render the report for a terminal."""
    data = report.to_dict()
    scope = " / ".join(part for part in (data["tracker"], data["project"]) if part) or "everything"
    score = data["health_score"]
    lines = [
        f"Feature-factory health: {scope}, {data['from']} to {data['to']}",
        f"Health score: {_value(score)} / 100",
        "",
    ]
    for title, names in GROUPS:
        lines.append(f"{title}:")
        lines += [f"  {name:<40} {_value(data[name])}" for name in names]
        lines.append("")
    lines.append("Score components (weight, value, score):")
    for component in data["components"]:
        lines.append(
            f"  {component['name']:<24} {component['weight']:>3}  "
            f"{_value(component['value']):>6}  {_value(component['score']):>6}  "
            f"{component['explanation']}"
        )
    lines += ["", "Weekly:", "  " + "  ".join(f"{c:>10.10}" for c in WEEKLY_COLUMNS[:7])]
    for week in data["weekly"]:
        lines.append("  " + "  ".join(f"{_value(week[c]):>10.10}" for c in WEEKLY_COLUMNS[:7]))
    if data["offenders"]:
        lines += ["", "Worst offenders:"]
        lines += [
            f"  {o['tracker']} {o['key']:<12} {o['kind']:<10} {o['reason']}"
            for o in data["offenders"]
        ]
    if data["epics_started_lean_unknown"]:
        lines += [
            "",
            f"Readiness at start is unknown for {data['epics_started_lean_unknown']} epic(s): "
            "their history does not keep the text they started with.",
        ]
    return "\n".join(lines)


def as_csv(report: HealthReport) -> str:
    """Render the weekly series (and a total row) as CSV."""
    data = report.to_dict()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(WEEKLY_COLUMNS)
    for week in data["weekly"]:
        writer.writerow([_csv(week[c]) for c in WEEKLY_COLUMNS])
    writer.writerow(["total", *(_csv(data[c]) for c in WEEKLY_COLUMNS[1:])])
    return out.getvalue()


def _value(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _csv(value: Any) -> str:
    return "" if value is None else str(value)


# SVG -------------------------------------------------------------------------------------------

_WIDTH, _HEIGHT = 640, 180
_LEFT, _RIGHT, _TOP, _BOTTOM = 36, 12, 12, 28
_COLORS = ("#1f6feb", "#b54708", "#067647", "#b42318")


def line_chart(
    title: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]]
) -> str:
    """An accessible SVG line chart of weekly values (gaps where a value is missing)."""
    values = [v for _, points in series for v in points if v is not None]
    top = _nice_top(max(values) if values else 0.0)
    inner_w = _WIDTH - _LEFT - _RIGHT
    inner_h = _HEIGHT - _TOP - _BOTTOM
    count = max(len(labels), 1)
    step = inner_w / max(count - 1, 1)

    def x(index: int) -> float:
        return _LEFT + index * step

    def y(value: float) -> float:
        return _TOP + inner_h - (value / top) * inner_h if top else _TOP + inner_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" class="chart">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{_LEFT}" y1="{_TOP + inner_h}" x2="{_WIDTH - _RIGHT}" '
        f'y2="{_TOP + inner_h}" stroke="#8590a2"/>',
        f'<text x="{_LEFT - 4}" y="{_TOP + 4}" text-anchor="end" font-size="10">'
        f"{_value(top) if top != int(top) else int(top)}</text>",
        f'<text x="{_LEFT - 4}" y="{_TOP + inner_h}" text-anchor="end" font-size="10">0</text>',
    ]
    for index, label in enumerate(labels):
        if count <= 13 or index % max(count // 12, 1) == 0:
            parts.append(
                f'<text x="{x(index):.1f}" y="{_HEIGHT - 8}" text-anchor="middle" '
                f'font-size="10">{escape(label)}</text>'
            )
    for number, (name, points) in enumerate(series):
        color = _COLORS[number % len(_COLORS)]
        segment: list[str] = []
        segments: list[list[str]] = []
        for index, value in enumerate(points):
            if value is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{x(index):.1f},{y(value):.1f}")
            parts.append(
                f'<circle cx="{x(index):.1f}" cy="{y(value):.1f}" r="2.5" fill="{color}">'
                f"<title>{escape(name)} {escape(labels[index])}: {_value(value)}</title></circle>"
            )
        if segment:
            segments.append(segment)
        for seg in segments:
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                f'points="{" ".join(seg)}"/>'
            )
    parts.append("</svg>")
    legend = " ".join(
        f'<span class="key"><span class="swatch" style="background:{_COLORS[n % len(_COLORS)]}">'
        f"</span>{escape(name)}</span>"
        for n, (name, _) in enumerate(series)
    )
    return f'<figure class="chart"><figcaption>{escape(title)}</figcaption>{"".join(parts)}' + (
        f'<div class="legend">{legend}</div></figure>'
    )


def _nice_top(value: float) -> float:
    if value <= 0:
        return 1.0
    for top in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if value <= top:
            return float(top)
    magnitude = 10 ** (len(str(int(value))) - 1)
    return float(((int(value) // magnitude) + 1) * magnitude)


def charts(report: HealthReport) -> list[str]:
    """The report page's weekly charts: output against outcome, hygiene, and the score."""
    weekly = report.to_dict()["weekly"]
    labels = [week["week"][5:] for week in weekly]
    return [
        line_chart(
            "Output versus outcome per week",
            labels,
            [
                ("epics delivered", [w["epics_delivered"] for w in weekly]),
                (
                    "delivered with outcome review",
                    [w["epics_delivered_with_outcome_review"] for w in weekly],
                ),
                ("started lean-ready", [w["epics_started_lean_ready"] for w in weekly]),
                ("hypotheses invalidated", [w["hypotheses_invalidated"] for w in weekly]),
            ],
        ),
        line_chart(
            "Health score per week (0-100)",
            labels,
            [("health score", [w["health_score"] for w in weekly])],
        ),
        line_chart(
            "Flow and hygiene per week",
            labels,
            [
                ("epics in progress", [w["epics_in_progress"] for w in weekly]),
                ("large batches", [w["large_batches"] for w in weekly]),
                ("violations fixed", [w["violations_fixed"] for w in weekly]),
            ],
        ),
    ]
