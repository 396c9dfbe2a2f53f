"""The warning card: one tracker-neutral summary of an evaluation, rendered per tracker."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from rules.result import Evaluation, Result, Severity, Status

CARD_FORMAT = 1
"""Part of the hash: bump it when the renderers change so existing cards are rewritten once."""

BOT_NAME = "leanguard"
FOOTER_TEXT = f"Checked by {BOT_NAME} — "
DETAILS_TEXT = "See details"

_SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}

# One marker per line status (and per severity for failures), in each tracker's own idiom.
_MARKDOWN_MARKERS = {
    "error": "❌",
    "warning": "⚠️",
    "info": "\u2139\ufe0f",  # escaped: the raw sign looks like a Latin "i" in most fonts
    "pass": "✅",
    "waived": "⏳",
}
_WIKI_MARKERS = {
    "error": "(x)",
    "warning": "(!)",
    "info": "(i)",
    "pass": "(/)",
    "waived": "(off)",
}
_ADF_EMOJI = {
    "error": (":x:", "❌"),
    "warning": (":warning:", "⚠️"),
    "info": (":information_source:", "\u2139\ufe0f"),
    "pass": (":white_check_mark:", "✅"),
    "waived": (":hourglass_flowing_sand:", "⏳"),
}

_MARKDOWN_SPECIAL = frozenset("\\`*_[]<>~|")
_WIKI_SPECIAL = frozenset("\\*_+^~{}[]|!?-")


@dataclass(frozen=True, slots=True)
class CardLine:
    """One rule on the card."""

    status: str
    """``fail``, ``pass`` or ``waived``."""
    rule: str
    severity: str | None
    text: str
    """What is missing or wrong, in one sentence (or why the rule is waived)."""
    fix: str = ""
    """Where to add it: the exact field name or heading."""
    why: str = ""
    who: tuple[str, ...] = ()

    @property
    def marker(self) -> str:
        """The key of the icon this line gets: a severity for failures, else the status."""
        if self.status == "fail":
            return self.severity or "warning"
        return self.status


@dataclass(frozen=True, slots=True)
class Card:
    """The whole comment: a status line, one line per rule and a link to the details page."""

    state: str
    """``failing`` or ``resolved``."""
    headline: str
    lines: tuple[CardLine, ...]
    details_url: str

    @property
    def failing(self) -> tuple[CardLine, ...]:
        """The lines that ask for work."""
        return tuple(line for line in self.lines if line.status == "fail")


def build_card(evaluation: Evaluation, *, details_url: str, show_passed: bool) -> Card:
    """Summarise an evaluation as a card; ``show_passed`` ticks passing rules (card exists)."""
    rules = [node for node in evaluation.tree.walk() if node.kind == "rule"]
    failing = sorted(evaluation.failing_rules(), key=_severity_order)
    waived = [node for node in rules if node.status is Status.WAIVED and _visible(node)]
    passed = [node for node in rules if node.status is Status.PASS and _visible(node)]

    lines = [_line("fail", node) for node in failing]
    lines += [_line("waived", node) for node in waived]
    if show_passed:
        lines += [_line("pass", node) for node in passed]
    return Card(
        state="failing" if failing else "resolved",
        headline=_headline(evaluation, failing, bool(waived)),
        lines=tuple(lines),
        details_url=details_url,
    )


def card_hash(card: Card) -> str:
    """Return a stable SHA-256 of the card's content, to skip edits that change nothing."""
    payload = {"format": CARD_FORMAT, **asdict(card)}
    encoded = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class _TextMarkup:
    """How one plain-text markup writes the few things a card needs."""

    markers: Mapping[str, str]
    bullet: str
    sub_bullet: str
    strong: Callable[[str], str]
    escape: Callable[[str], str]
    link: Callable[[str, str], str]


def _render_text(card: Card, markup: _TextMarkup) -> str:
    out = [markup.strong(markup.escape(card.headline)), ""]
    for line in card.lines:
        title = markup.escape(line.text)
        if line.status == "fail":
            title = markup.strong(title)
        out.append(f"{markup.bullet}{markup.markers[line.marker]} {title}")
        if line.status == "fail":
            out.extend(f"{markup.sub_bullet}{detail}" for detail in _details(line, markup))
    if card.lines:
        out.append("")
    out.append(FOOTER_TEXT + markup.link(DETAILS_TEXT, card.details_url))
    return "\n".join(out)


def _details(line: CardLine, markup: _TextMarkup) -> list[str]:
    details = []
    if line.fix:
        details.append(f"{markup.strong('Fix:')} {markup.escape(line.fix)}")
    if line.why:
        details.append(f"Why: {markup.escape(line.why)}")
    if line.who:
        details.append(f"Who can fix: {markup.escape(', '.join(line.who))}")
    return details


def render_markdown(card: Card) -> str:
    """Render the card as Markdown for a Linear comment."""
    return _render_text(card, _MARKDOWN)


def render_wiki(card: Card) -> str:
    """Render the card as Jira Data Center wiki markup."""
    return _render_text(card, _WIKI)


def render_adf(card: Card) -> dict[str, Any]:
    """Render the card as an Atlassian Document Format document for Jira Cloud (API v3)."""
    panel_content: list[dict[str, Any]] = [_paragraph([_text(card.headline, strong=True)])]
    if card.lines:
        panel_content.append(
            {"type": "bulletList", "content": [_adf_list_item(line) for line in card.lines]}
        )
    footer = _paragraph(
        [_text(FOOTER_TEXT), _text(DETAILS_TEXT, link=card.details_url)],
    )
    return {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "panel", "attrs": {"panelType": _panel_type(card)}, "content": panel_content},
            footer,
        ],
    }


def status_property(
    evaluation: Evaluation, *, details_url: str, evaluated_at: datetime
) -> dict[str, Any]:
    """Return the value of the ``leanguard`` Jira issue property (searchable with JQL)."""
    failing = evaluation.failing_rules()
    status = evaluation.status
    # Dry-run failures are invisible on the ticket, so the property must not call the item failing.
    if status is Status.FAIL and not failing:
        status = Status.PASS
    when = evaluated_at if evaluated_at.tzinfo else evaluated_at.replace(tzinfo=UTC)
    return {
        "status": status.value,
        "violations": len(failing),
        "failing": [node.name for node in failing],
        "evaluatedAt": when.astimezone(UTC).isoformat(timespec="seconds"),
        "detailsUrl": details_url,
    }


def _visible(node: Result) -> bool:
    # The same test Evaluation.failing_rules applies, so dry-run rules never reach the ticket.
    return node.mode is not None and node.mode.writes


def _severity_order(node: Result) -> int:
    return _SEVERITY_ORDER[node.severity] if node.severity else len(_SEVERITY_ORDER)


def _line(status: str, node: Result) -> CardLine:
    return CardLine(
        status=status,
        rule=node.name,
        severity=node.severity.value if node.severity else None,
        text=node.message or node.name,
        fix=node.fix if status == "fail" else "",
        why=node.why if status == "fail" else "",
        who=node.who if status == "fail" else (),
    )


def _headline(evaluation: Evaluation, failing: list[Result], any_waived: bool) -> str:
    if failing:
        counts = {severity: 0 for severity in _SEVERITY_ORDER}
        for node in failing:
            counts[node.severity or Severity.WARNING] += 1
        parts = [_plural(count, severity.value) for severity, count in counts.items() if count]
        checks = _plural(len(failing), "outcome check")
        return f"{BOT_NAME}: {checks} failing ({', '.join(parts)})"
    if evaluation.status in (Status.EXEMPT, Status.SKIPPED):
        reason = evaluation.tree.message.rstrip(".")
        suffix = f" — {reason}" if reason else ""
        return f"{BOT_NAME}: outcome checks no longer apply{suffix}"
    if any_waived:
        return f"{BOT_NAME}: all outcome checks pass or are waived — thanks!"
    return f"{BOT_NAME}: all outcome checks pass — thanks!"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _md(text: str) -> str:
    # Texts quote item content (headings, field names); escaping keeps them from restyling the card.
    return "".join(f"\\{char}" if char in _MARKDOWN_SPECIAL else char for char in _one_line(text))


def _wiki(text: str) -> str:
    return "".join(f"\\{char}" if char in _WIKI_SPECIAL else char for char in _one_line(text))


def _one_line(text: str) -> str:
    # A newline inside a line would end the list item and break the card's layout.
    return " ".join(text.split())


def _panel_type(card: Card) -> str:
    if not card.failing:
        return "success"
    severities = {line.severity for line in card.failing}
    if Severity.ERROR.value in severities:
        return "error"
    if severities <= {Severity.INFO.value}:
        return "info"
    return "warning"


def _adf_list_item(line: CardLine) -> dict[str, Any]:
    short_name, char = _ADF_EMOJI[line.marker]
    title: list[dict[str, Any]] = [
        {"type": "emoji", "attrs": {"shortName": short_name, "text": char}},
        _text(" "),
        _text(_one_line(line.text), strong=line.status == "fail"),
    ]
    content: list[dict[str, Any]] = [_paragraph(title)]
    details: list[list[dict[str, Any]]] = []
    if line.status == "fail":
        if line.fix:
            details.append([_text("Fix:", strong=True), _text(f" {_one_line(line.fix)}")])
        if line.why:
            details.append([_text(f"Why: {_one_line(line.why)}")])
        if line.who:
            details.append([_text(f"Who can fix: {_one_line(', '.join(line.who))}")])
    if details:
        content.append(
            {
                "type": "bulletList",
                "content": [
                    {"type": "listItem", "content": [_paragraph(detail)]} for detail in details
                ],
            }
        )
    return {"type": "listItem", "content": content}


def _paragraph(content: list[dict[str, Any]]) -> dict[str, Any]:
    # ADF rejects empty text nodes, so a blank piece is dropped rather than sent.
    kept = [node for node in content if node["type"] != "text" or node["text"]]
    return {"type": "paragraph", "content": kept}


def _text(text: str, *, strong: bool = False, link: str | None = None) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": text}
    marks: list[dict[str, Any]] = []
    if strong:
        marks.append({"type": "strong"})
    if link:
        marks.append({"type": "link", "attrs": {"href": link}})
    if marks:
        node["marks"] = marks
    return node


_MARKDOWN = _TextMarkup(
    markers=_MARKDOWN_MARKERS,
    bullet="- ",
    sub_bullet="  - ",
    strong=lambda text: f"**{text}**",
    escape=_md,
    link=lambda text, url: f"[{text}]({url})",
)
_WIKI = _TextMarkup(
    markers=_WIKI_MARKERS,
    bullet="* ",
    sub_bullet="** ",
    strong=lambda text: f"*{text}*",
    escape=_wiki,
    link=lambda text, url: f"[{text}|{url}]",
)
