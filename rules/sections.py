"""Split descriptions (Markdown, Jira wiki markup, Atlassian Document Format) into sections.

A section starts at a heading or at a label line and runs to the next start of the same or
a higher rank. Headings (Markdown ``#``..``######`` and setext, wiki ``h1.``..``h6.``, ADF
heading nodes) rank highest, and any heading ends every open section. Label lines do not end
a heading's section: ``## Success metric`` over ``Conversion: 2% to 3%`` is not empty.

A label line is ``Name: text``, the name optionally bold or italic (``**Name:**``,
``**Name**:``, ``*Name:*`` in wiki) and optionally after a list bullet. The name has one to
five words and at most 40 characters, starts with a letter and holds only letters, digits,
spaces and ``' / & ( ) + -``. A plain (not bold) name needs whitespace or the end of the line
after its colon, which rules out URLs, times and ``key:value``, and must not end in a word
that runs a sentence on (``The goals are:``, ``Depends on:``). Bold labels rank above plain
ones, and both above labels in list items, the deeper the lower; a list item's label ends at
the next item as deep or shallower, or where text leaves the list. So ``**Success
metrics:**`` keeps the ``Before: 2%`` lines under it, while a bare ``Hypothesis:`` directly
over ``Success metric: 5%`` stays empty.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import NamedTuple

from rules.model import Section

# Editors never nest this deep; past it the input is malformed, so stop rather than recurse.
_MAX_DEPTH = 64
_MAX_LABEL_WORDS = 5
# Deeper list indentation ranks the same; this bounds how many sections can overlap.
_MAX_LIST_DEPTH = 16
# Names longer than this name nothing a rule looks for, so they are only trimmed; this keeps
# the backtracking patterns that clean names off long lines.
_MAX_CLEANED_CHARS = 200
# Jira caps descriptions at 32,767 characters; longer text is parsed but not remembered.
_MAX_CACHED_CHARS = 32_768

_RANK_HEADING = 0
_RANK_BOLD_LABEL = 1
_RANK_PLAIN_LABEL = 2
_RANK_LIST_LABEL = 3

_MARKERS = r"\*\*|__|\*|_"
_LABEL = re.compile(
    rf"(?P<open>{_MARKERS})?"
    r"(?P<name>[^\W\d_][\w \t'\u2019/&()+\-]{0,39}?)[ \t]*"
    rf"(?P<close>{_MARKERS})?[ \t]*:(?P<after>{_MARKERS})?"
    r"(?P<rest>.*)"
)
_MD_BULLET = re.compile(r"(?:[-*+]|\d{1,9}[.)])[ \t]+(?:\[[ xX]\][ \t]+)?")
_MD_BULLET_FIRST = frozenset("-*+0123456789")
_WIKI_BULLET = re.compile(r"[*#-]+[ \t]+")
_WIKI_BLOCK = re.compile(r"\{(code|noformat)(?::[^}]*)?\}")
_WIKI_MACRO = re.compile(r"\{\{|\}\}|\{[A-Za-z]+(?::[^{}]*)?\}")
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(?<![\w*])(\*\*|__|\*|_)(?=\S)(.+?)(?<=\S)\1(?![\w*])")
_SHORTCODE = re.compile(r"(?::[A-Za-z0-9_+\-]+:\s*)+")
_TRAILING_SHORTCODE = re.compile(r"(?:\s+:[A-Za-z0-9_+\-]+:)+$")
_DECORATION = "*_`~"
_TRAILING = _DECORATION + ":"
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\ufe0e\ufe0f")
_URL_SCHEMES = frozenset({"http", "https", "mailto", "ftp", "file"})
# A plain "Name:" ending in one of these is a sentence running on ("The goals are: ..."),
# not a label; bold text is taken at its word.
_RUN_ON_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "because",
        "but",
        "by",
        "for",
        "from",
        "if",
        "in",
        "include",
        "includes",
        "including",
        "is",
        "of",
        "on",
        "or",
        "so",
        "than",
        "that",
        "the",
        "then",
        "these",
        "this",
        "those",
        "to",
        "was",
        "were",
        "when",
        "where",
        "which",
        "while",
        "with",
        "follows",
        "following",
    }
)


class _Start(NamedTuple):
    """Where a section starts: its name, level, the text after the label, its rank."""

    heading: str
    level: int
    rest: str
    rank: int
    skip: int = 1
    """Lines the start itself takes up: two for a setext heading and its underline."""


def adf_to_text(doc: object) -> str:
    """Flatten an Atlassian Document Format document to Markdown-like text."""
    if isinstance(doc, Mapping):
        lines = _block(doc if isinstance(doc, dict) else dict(doc), 0)
    elif isinstance(doc, list):
        lines = _blocks(doc, 0, loose=True)
    else:
        return ""
    return "\n".join(lines).strip()


def parse_sections(text: str, markup: str = "markdown") -> tuple[Section, ...]:
    """Split a description into sections."""
    if not isinstance(text, str) or not text:
        return ()
    wiki = markup == "wiki"
    if len(text) <= _MAX_CACHED_CHARS:
        return _parse_cached(text, wiki)
    return _parse(text, wiki)


def parse_description(value: object, markup: str = "markdown") -> tuple[str, tuple[Section, ...]]:
    """Return the plain text and the sections of a description in any supported format."""
    if isinstance(value, Mapping):
        text = adf_to_text(value)
        return text, parse_sections(text, "markdown")
    if isinstance(value, str):
        text = value.strip()
        return text, parse_sections(text, markup)
    return "", ()


# Sections from classified lines.


# The same description is parsed again and again (each webhook, rule set and preview),
# and the result is immutable, so small descriptions are worth remembering.
@functools.lru_cache(maxsize=256)
def _parse_cached(text: str, wiki: bool) -> tuple[Section, ...]:
    return _parse(text, wiki)


def _parse(text: str, wiki: bool) -> tuple[Section, ...]:
    lines = text.splitlines()
    return _build(lines, _wiki_starts(lines) if wiki else _markdown_starts(lines))


def _build(lines: list[str], starts: list[tuple[int, _Start]]) -> tuple[Section, ...]:
    ends = [len(lines)] * len(starts)
    open_: list[int] = []  # indexes into starts, ranks strictly increasing
    for index, (line_no, start) in enumerate(starts):
        while open_ and starts[open_[-1]][1].rank >= start.rank:
            ends[open_.pop()] = line_no
        open_.append(index)
    sections: list[Section] = []
    for index, (line_no, start) in enumerate(starts):
        if not start.heading:
            continue  # an empty heading or the end of a list item only ends sections
        below = lines[line_no + start.skip : ends[index]]
        body = "\n".join([start.rest, *below] if start.rest else below).strip()
        sections.append(Section(heading=start.heading, body=body, level=start.level))
    return tuple(sections)


def _markdown_starts(lines: list[str]) -> list[tuple[int, _Start]]:
    starts: list[tuple[int, _Start]] = []
    fence = ""
    fence_len = 0
    after_blank = True
    after_break = True  # the previous line was blank, a heading or nothing
    title_ok = False  # the previous line may be underlined into a setext heading
    in_list = False  # a list item's label section may be open
    for number, line in enumerate(lines):
        stripped = line.lstrip()
        if fence:
            if stripped.startswith(fence):
                run = len(stripped) - len(stripped.lstrip(fence[0]))
                if run >= fence_len and not stripped[run:].strip():
                    fence = ""
            after_blank = title_ok = False
            after_break = not fence
            continue
        if not stripped:
            after_blank = after_break = True
            title_ok = False
            continue
        first = stripped[0]
        indent = len(line) - len(stripped)
        bullet = _MD_BULLET.match(stripped) if first in _MD_BULLET_FIRST else None
        if in_list and (bullet is not None or (after_blank and indent < 2)):
            # A list item ends at the next item as deep or shallower, or where text leaves the list.
            depth = 0 if bullet is None else indent
            starts.append((number, _list_end(depth)))
            in_list = depth > 0
        after_blank = False
        if first in "`~":
            run = len(stripped) - len(stripped.lstrip(first))
            if run >= 3 and (first == "~" or "`" not in stripped[run:]):
                fence, fence_len = first * 3, run
                after_break = title_ok = False
                continue
        elif first == "#" and indent <= 3:
            heading = _atx_heading(stripped)
            if heading is not None:
                starts.append((number, heading))
                after_break, title_ok = True, False
                continue
        elif first in "=-" and title_ok and _is_underline(stripped):
            level = 1 if first == "=" else 2
            starts.append((number - 1, _heading(lines[number - 1].strip(), level, False, 2)))
            after_break, title_ok = True, False
            continue
        label = _label(line, stripped, bullet, False) if ":" in stripped else None
        if label is not None:
            starts.append((number, label))
            in_list = in_list or label.rank >= _RANK_LIST_LABEL
            after_break = title_ok = False
            continue
        title_ok = after_break and indent <= 3 and first not in "><|" and bullet is None
        after_break = False
    return starts


def _wiki_starts(lines: list[str]) -> list[tuple[int, _Start]]:
    starts: list[tuple[int, _Start]] = []
    block = ""  # the {code} or {noformat} block the line starts in
    after_blank = True
    in_list = False  # a list item's label section may be open
    for number, line in enumerate(lines):
        inside = bool(block)
        if block or "{" in line:
            for tag in _WIKI_BLOCK.finditer(line):
                if not block:
                    block = tag[1]
                elif tag[1] == block:
                    block = ""
        if inside:
            after_blank = False
            continue
        stripped = line.lstrip()
        if not stripped:
            after_blank = True
            continue
        bullet = _WIKI_BULLET.match(stripped) if stripped[0] in "*#-" else None
        if in_list and (bullet is not None or after_blank):
            depth = 0
            if bullet is not None:
                depth = 2 * (len(bullet[0].rstrip()) - 1) + len(line) - len(stripped)
            starts.append((number, _list_end(depth)))
            in_list = depth > 0
        after_blank = False
        if (
            stripped[0] == "h"
            and stripped[1:2] in ("1", "2", "3", "4", "5", "6")
            and stripped[2:3] == "."
            and (len(stripped) == 3 or stripped[3] in " \t")
        ):
            starts.append((number, _heading(stripped[3:].strip(), int(stripped[1]), True, 1)))
            continue
        if ":" in stripped:
            label = _label(line, stripped, bullet, True)
            if label is not None:
                starts.append((number, label))
                in_list = in_list or label.rank >= _RANK_LIST_LABEL
    return starts


def _list_end(depth: int) -> _Start:
    """Mark where list items at ``depth`` and deeper end; it starts no section of its own."""
    return _Start("", 0, "", _RANK_LIST_LABEL + 2 * min(depth, _MAX_LIST_DEPTH))


def _atx_heading(stripped: str) -> _Start | None:
    hashes = len(stripped) - len(stripped.lstrip("#"))
    if hashes > 6 or (len(stripped) > hashes and stripped[hashes] not in " \t"):
        return None
    title = stripped[hashes:].strip()
    if title.endswith("#"):
        # A closing run of '#' is decoration only when a space sets it apart.
        bare = title.rstrip("#")
        if not bare or bare[-1] in " \t":
            title = bare.rstrip()
    return _heading(title, hashes, False, 1)


def _is_underline(stripped: str) -> bool:
    underline = stripped.rstrip()
    return len(underline) >= 2 and not underline.strip(underline[0])


def _heading(title: str, level: int, wiki: bool, skip: int) -> _Start:
    rest = ""
    if wiki and "{" in title:
        title = _WIKI_MACRO.sub("", title)
    if ":" in title:
        found = _split_label(_strip_symbols(title, trailing=False))
        if found is not None and found[1]:
            title, rest = found[0], found[1]
    return _Start(_clean_name(title, wiki), level, rest, _RANK_HEADING, skip)


def _label(line: str, stripped: str, bullet: re.Match[str] | None, wiki: bool) -> _Start | None:
    """Read a label line; ``bullet`` is the list bullet that opens it, if any."""
    rank_base = _RANK_PLAIN_LABEL
    text = stripped
    if bullet is not None:
        indent = len(line) - len(stripped)
        depth = 2 * (len(bullet[0].rstrip()) - 1) + indent if wiki else indent
        rank_base = _RANK_LIST_LABEL + 2 * min(depth, _MAX_LIST_DEPTH)
        text = stripped[bullet.end() :]
    if text[:1] == ":" or (text and not text[0].isascii()):
        text = _strip_symbols(text, trailing=False)
    found = _split_label(text)
    if found is None:
        return None
    name, rest, bold = found
    # The name pattern admits no markup but underscores, so most names are clean already.
    heading = _clean_name(name, wiki) if "_" in name else name
    if not heading:
        return None
    if bullet is not None:
        rank = rank_base + (0 if bold else 1)
    else:
        rank = _RANK_BOLD_LABEL if bold else _RANK_PLAIN_LABEL
    return _Start(heading, 0, rest, rank)


def _split_label(text: str) -> tuple[str, str, bool] | None:
    """Split ``Name: rest`` into the name, the rest and whether the name is bold."""
    match = _LABEL.match(text)
    if match is None:
        return None
    opening, name, closing, after, tail = match.groups()
    name = name.rstrip()
    words = name.split()
    if len(words) > _MAX_LABEL_WORDS or (len(words) == 1 and name.casefold() in _URL_SCHEMES):
        return None
    rest = tail.strip()
    bold = opening is not None and (closing is not None or after is not None)
    if opening is not None and not bold and rest.endswith(opening):
        bold, rest = True, rest[: -len(opening)].rstrip()
    if not bold:
        # Plain text needs a space after the colon: that rules out URLs, times and keys.
        if tail and not tail[0].isspace():
            return None
        if words[-1].casefold() in _RUN_ON_WORDS:
            return None
    return name, rest, bold


def _clean_name(text: str, wiki: bool) -> str:
    if len(text) > _MAX_CLEANED_CHARS:
        return _trim(text)
    if wiki and "{" in text:
        text = _WIKI_MACRO.sub("", text)
    if "](" in text:
        text = _MD_LINK.sub(r"\1", text)
    if "*" in text or "_" in text:
        text = _EMPHASIS.sub(r"\2", text)
    previous = None
    while text != previous:
        previous = text
        text = _strip_symbols(text).rstrip(":").strip().strip(_DECORATION)
    return text


def _trim(text: str) -> str:
    """Trim whitespace, markers and trailing colons in one pass, for names too long to clean."""
    start, end = 0, len(text)
    while start < end and (text[start] in _DECORATION or text[start].isspace()):
        start += 1
    while end > start and (text[end - 1] in _TRAILING or text[end - 1].isspace()):
        end -= 1
    return text[start:end]


def _strip_symbols(text: str, trailing: bool = True) -> str:
    """Strip whitespace, emoji and ``:shortcode:`` emoji from the ends of a name."""
    text = text.strip()
    if text[:1] == ":":
        match = _SHORTCODE.match(text)
        if match is not None:
            text = text[match.end() :]
    start, end = 0, len(text)
    while start < end and _is_symbol(text[start]):
        start += 1
    if trailing:
        while end > start and _is_symbol(text[end - 1]):
            end -= 1
        if text.endswith(":", start, end):
            match = _TRAILING_SHORTCODE.search(text, start, end)
            if match is not None:
                end = match.start()
    return text[start:end].strip()


def _is_symbol(char: str) -> bool:
    if char.isascii():
        return char.isspace()
    return char.isspace() or char in _ZERO_WIDTH or unicodedata.category(char)[0] == "S"


# Atlassian Document Format.


def _blocks(nodes: object, depth: int, loose: bool) -> list[str]:
    """Render block nodes, a blank line between them when ``loose``."""
    lines: list[str] = []
    if not isinstance(nodes, list) or depth > _MAX_DEPTH:
        return lines
    for node in nodes:
        rendered = _block(node, depth)
        if rendered:
            if loose and lines:
                lines.append("")
            lines.extend(rendered)
    return lines


def _block(node: object, depth: int) -> list[str]:
    if not isinstance(node, dict) or depth > _MAX_DEPTH:
        return []
    kind = node.get("type")
    if not isinstance(kind, str):
        kind = ""  # still render what it holds; the type only picks how
    content = node.get("content")
    if kind == "paragraph":
        text = _inline(content, depth + 1, True).strip()
        return text.split("\n") if text else []
    if kind == "heading":
        title = " ".join(_inline(content, depth + 1, False).split())
        if not title:
            return []  # an empty heading is invisible in Jira, so it ends nothing
        return ["#" * _heading_level(_attrs(node).get("level")) + " " + title]
    if kind in _LIST_KINDS:
        return _list(node, depth)
    if kind == "codeBlock":
        return _code_block(node, depth)
    if kind == "blockquote":
        return ["> " + line if line else ">" for line in _blocks(content, depth + 1, True)]
    if kind == "rule":
        return ["---"]
    if kind == "blockCard" or kind == "embedCard":
        url = _first_str(_attrs(node).get("url"))
        return [url] if url else []
    if kind in _INLINE_KINDS:
        text = _inline([node], depth, True).strip()
        return text.split("\n") if text else []
    return _container(node, kind, content, depth)


def _container(node: dict[object, object], kind: str, content: object, depth: int) -> list[str]:
    """Render a node this module has no rule for: panels, expands, tables and the unknown."""
    title: list[str] = []
    if kind == "expand" or kind == "nestedExpand":
        name = _attrs(node).get("title")
        if isinstance(name, str) and name.strip():
            title = [name.strip()]
    if isinstance(content, list):
        inner = _children(content, depth + 1, True)
        return [*title, "", *inner] if title and inner else title or inner
    value = node.get("text")
    if isinstance(value, str) and value.strip():
        return value.strip().split("\n")
    return title


def _children(content: list[object], depth: int, loose: bool) -> list[str]:
    """Render a node's content, which holds blocks or, in task items and the unknown, text."""
    first = content[0] if content else None
    kind = first.get("type") if isinstance(first, dict) else None
    if isinstance(kind, str) and kind in _INLINE_KINDS:
        text = _inline(content, depth, True).strip()
        return text.split("\n") if text else []
    return _blocks(content, depth, loose)


def _list(node: dict[object, object], depth: int) -> list[str]:
    items = node.get("content")
    if not isinstance(items, list):
        return []
    number = None
    if node.get("type") == "orderedList":
        order = _attrs(node).get("order")
        number = order if type(order) is int and 0 <= order < 10**9 else 1
    lines: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        content = item.get("content")
        if not isinstance(content, list):
            continue
        inner = _children(content, depth + 2, False)
        if not inner:
            continue
        marker = "- " if number is None else f"{number}. "
        pad = " " * len(marker)
        lines.append(marker + inner[0])
        lines.extend(pad + line if line else line for line in inner[1:])
        if number is not None:
            number += 1
    return lines


def _code_block(node: dict[object, object], depth: int) -> list[str]:
    text = _inline(node.get("content"), depth + 1, False).strip("\n")
    if not text.strip():
        return []
    code = text.split("\n")
    fence = "```"
    # A fence must be longer than any backtick run that opens a line inside the block.
    for line in code:
        stripped = line.lstrip()
        if stripped.startswith("```"):
            fence = "`" * max(len(fence), len(stripped) - len(stripped.lstrip("`")) + 1)
    language = _attrs(node).get("language")
    info = language if isinstance(language, str) and language.isidentifier() else ""
    return [fence + info, *code, fence]


def _inline(nodes: object, depth: int, marks: bool) -> str:
    """Render inline nodes; with ``marks``, strong runs as ``**bold**``."""
    if not isinstance(nodes, list) or depth > _MAX_DEPTH:
        return ""
    parts: list[str] = []
    strong_from = -1  # where the current run of strong text starts in parts
    for node in nodes:
        if not isinstance(node, dict):
            continue
        kind = node.get("type")
        if kind == "text":
            text = node.get("text")
            if not isinstance(text, str):
                continue
            if marks and _is_strong(node.get("marks")):
                if strong_from < 0:
                    strong_from = len(parts)
                parts.append(text)
                continue
        elif kind == "hardBreak":
            text = "\n"
        elif kind == "placeholder":
            continue  # template hint text, not something anybody wrote
        else:
            text = _inline_node(node, kind, depth)
        if strong_from >= 0:
            parts[strong_from:] = [_bold("".join(parts[strong_from:]))]
            strong_from = -1
        parts.append(text)
    if strong_from >= 0:
        parts[strong_from:] = [_bold("".join(parts[strong_from:]))]
    return "".join(parts)


def _inline_node(node: dict[object, object], kind: object, depth: int) -> str:
    attrs = _attrs(node)
    if kind == "mention":
        text = _first_str(attrs.get("text"), attrs.get("id"))
        return text if not text or text.startswith("@") else "@" + text
    if kind == "emoji":
        return _first_str(attrs.get("shortName"), attrs.get("text"))
    if kind in ("inlineCard", "blockCard", "embedCard"):
        return _first_str(attrs.get("url"))
    if kind == "status":
        return _first_str(attrs.get("text"))
    if kind == "date":
        return _date(attrs.get("timestamp"))
    value = node.get("text")
    if isinstance(value, str):
        return value
    return _inline(node.get("content"), depth + 1, True)


def _bold(text: str) -> str:
    core = text.strip()
    if not core or "\n" in core:
        return text
    # Keep spaces outside the markers, where Markdown expects them.
    start = len(text) - len(text.lstrip())
    return f"{text[:start]}**{core}**{text[start + len(core) :]}"


def _is_strong(marks: object) -> bool:
    if not marks or not isinstance(marks, list):
        return False
    return any(isinstance(mark, dict) and mark.get("type") == "strong" for mark in marks)


def _date(timestamp: object) -> str:
    """Render an ADF date (milliseconds since the epoch) as an ISO date."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | str):
        return ""
    try:
        moment = datetime.fromtimestamp(int(timestamp) / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return timestamp if isinstance(timestamp, str) else ""
    return moment.date().isoformat()


def _heading_level(level: object) -> int:
    if type(level) is not int:
        return 1
    return min(max(level, 1), 6)


def _attrs(node: dict[object, object]) -> dict[object, object]:
    attrs = node.get("attrs")
    return attrs if isinstance(attrs, dict) else {}


def _first_str(*values: object) -> str:
    for value in values:
        if isinstance(value, str) and value:
            return value
    return ""


_LIST_KINDS = frozenset({"bulletList", "orderedList", "taskList", "decisionList"})
_INLINE_KINDS = frozenset(
    {
        "text",
        "hardBreak",
        "mention",
        "emoji",
        "inlineCard",
        "status",
        "date",
        "placeholder",
        "mediaInline",
        "inlineExtension",
    }
)
