"""Content-quality checks for outcome fields: hypothesis form, measurable metric, problem first."""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import islice
from types import MappingProxyType

MAX_CHARS = 4000
"""Only this many characters of a text are read, so that one huge description stays cheap."""

_QUOTE_WIDTH = 60


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one quality check on one text."""

    ok: bool
    found: str
    """What was recognised, human-readable."""
    problem: str
    """Empty when ok; otherwise one sentence saying what is missing."""
    hint: str
    """How to fix it, one sentence with a template; empty when nothing needs fixing."""


def _words(pattern: str) -> re.Pattern[str]:
    """Compile a lower-case pattern whose matches may only start where a word starts."""
    # The look-behind turns away positions inside words before any branch is tried; with the
    # text lower-cased once, this runs word lists several times faster than \b with IGNORECASE.
    return re.compile(rf"(?<![a-z0-9'])(?:{pattern})")


# --------------------------------------------------------------------------- text clean-up

_URL = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+\.\w+", re.I)
_LINK = re.compile(r"\[([^\]|\n]{0,200})(?:\]\([^)\n]{0,500}\)|\|[^\]\n]{0,500}\])")
_MENTION = re.compile(r"\[~[^\]\n]{0,200}\]")
_MACRO = re.compile(
    r"\{(?:color|quote|noformat|code|panel|info|note|tip|warning)(?::[^}\n]{0,100})?\}"
    r"|</?\w{1,10}[^>\n]{0,100}>",
    re.I,
)
_LINE_MARK = re.compile(
    r"^[ \t]*(?:(?:#{1,6}|h[1-6]\.|>|[-*+•◦▪‣\u2013]|\d{1,2}[.)]|\[[ xX]\]|\|\|?)[ \t]+)+", re.M
)
_EMPHASIS_CHARS = re.compile(r"[*_~`{}|]")
_EMPHASIS = re.compile(r"\*{1,3}|(?<![\w])_{1,2}|_{1,2}(?![\w])|~~|`+|\{\{|\}\}|\|\|?")
_CURLY = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " ", "\u2212": "-"}
)
# Only ASCII letters are folded, so the lower-case copy keeps every index of the original.
_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_BLANKS = re.compile(r"[ \t\r\f\v]{2,}|[\t\r\f\v]")
_BLANK_LINES = re.compile(r" ?\n\s*")
_FIELD_LABEL = re.compile(
    r"\s*(?:the\s+)?(?:(?:primary|main|key|north[- ]star|success)\s+)?"
    r"(?:hypothes[ie]s|success metrics?|metrics?|kpis?|measures? of success|"
    r"customer problems?|problem statements?|problems?|pain|the problem)"
    r"(?:\s*[:=]|\s+[-\u2013—])\s*",
    re.I,
)


@dataclass(frozen=True, slots=True)
class _Text:
    """A cleaned text and its lower-case twin; every pattern reads ``low``."""

    cleaned: str
    low: str

    def show(self, span: str) -> str:
        """Return ``span`` (cut from ``low``) quoted, with the writer's own capitals."""
        at = self.low.find(span)
        return _quote(self.cleaned[at : at + len(span)] if at >= 0 else span)


def _prepare(text: str) -> _Text:
    """Strip Markdown and Jira markup, URLs and a leading field label; keep line breaks."""
    text = text[:MAX_CHARS].translate(_CURLY)
    if "://" in text or "www." in text or "@" in text:
        text = _URL.sub(" ", text)
    if "[" in text:
        text = _MENTION.sub(" ", _LINK.sub(r"\1", text))
    if "{" in text or "<" in text:
        text = _MACRO.sub(" ", text)
    text = _LINE_MARK.sub("", text)
    if _EMPHASIS_CHARS.search(text):
        text = _EMPHASIS.sub("", text)
    text = _BLANK_LINES.sub("\n", _BLANKS.sub(" ", text)).strip()
    label = _FIELD_LABEL.match(text)
    if label:
        text = text[label.end() :]
    return _Text(cleaned=text, low=text.translate(_LOWER))


def _quote(span: str) -> str:
    """Render a recognised span for ``found``: one line, trimmed, quoted."""
    span = " ".join(span.split()).strip(" ,;:.-\u2013—(")
    if span.endswith(")") and span.count(")") > span.count("("):
        span = span[:-1].rstrip(" ,;:.")
    elif span.count("(") > span.count(")"):
        span += ")"
    if len(span) > _QUOTE_WIDTH:
        cut = span.rfind(" ", 0, _QUOTE_WIDTH)
        span = span[: cut if cut > _QUOTE_WIDTH // 2 else _QUOTE_WIDTH].rstrip(" ,;:") + "…"
    return f'"{span}"'


# Clause boundaries: line breaks, semicolons, sentence ends and spaced dashes; a dot inside a
# number ("1.4") or glued to the next word is no boundary.
_CLAUSE_SPLIT = re.compile(r"\n|;|[!?](?=\s|$)|\.(?=\s|$)|\s[—\u2013]\s|\s-{1,2}\s")
_WORD = re.compile(r"[a-z][a-z'-]*")
_DIGIT = re.compile(r"\d")


def _clauses(low: str) -> list[str]:
    """Split a lower-cased text into clauses that hold at least one word."""
    return [c.strip() for c in _CLAUSE_SPLIT.split(low) if _WORD.search(c)]


def _join(items: list[str]) -> str:
    """Join phrases as English: ``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# --------------------------------------------------------------------------- numbers and dates

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_ORDINAL = r"(?:st|nd|rd|th)"
_COUNT_WORD = (
    r"(?:a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|"
    r"thirty|sixty|ninety|a few|a couple of|several|\d+(?:\.\d+)?)"
)
_PERIOD = r"(?:days?|weeks?|months?|quarters?|years?|sprints?|releases?|cycles?)"
_EVENT = (
    r"(?:launch|release|rollout|roll-out|go-live|ga|shipping|kick-?off|start|sign-?up|"
    r"onboarding|migration|cut-?over)"
)
_DATE = _words(
    # 2026-03-31, 31/03/2026, 31.03.26
    r"\d{4}-\d{1,2}-\d{1,2}\b|\d{1,2}[/.]\d{1,2}[/.](?:\d{4}|\d{2})\b"
    # 31 March 2026, 1st of May
    rf"|\d{{1,2}}{_ORDINAL}?\s+(?:of\s+)?(?:{_MONTH}|may)\b\.?(?:,?\s+\d{{4}}\b)?"
    # March 31, 2026 / Sep 30 / March 2026 / March; "may" only with a day or a year (a verb)
    rf"|{_MONTH}\b\.?(?:\s+\d{{1,2}}{_ORDINAL}?\b)?(?:,?\s+\d{{4}}\b)?"
    rf"|may\s+\d{{1,2}}{_ORDINAL}?\b(?:,?\s+\d{{4}}\b)?|(?<=by |in )may\b|(?<=end of )may\b"
    # Q2, Q2 2026, H1, FY26, 2026 Q1
    r"|(?:q[1-4]|h[12])(?:\s*(?:fy)?\s*'?\d{2}(?:\d{2})?\b)?\b|fy\s*'?\d{2}(?:\d{2})?\b"
    r"|(?:19|20)\d{2}\s*(?:q[1-4]|h[12])\b"
    # end of Q2, end of the quarter, EOY
    r"|(?:end|start|beginning|middle|close)\s+of\s+(?:the\s+)?(?:next\s+|this\s+|current\s+)?"
    rf"(?:q[1-4]|h[12]|quarter|year|month|sprint|half|fy\s*'?\d*|week|season|{_MONTH}|may)\b"
    r"|(?:eoy|eoq|eom|year-end|quarter-end|month-end|end-of-year|end-of-quarter)\b"
    # next quarter, this year, the next two sprints
    r"|(?:next|this|coming|following|current)\s+(?:two\s+|three\s+|2\s+|3\s+)?"
    r"(?:week|month|quarter|year|sprint|half|fiscal year|release|planning cycle)s?\b"
    # within 6 weeks, in 30 days, over the next two quarters, in the first 7 days of signup
    r"|(?:within|in|over|during|after|for)\s+(?:the\s+)?(?:next\s+|first\s+|coming\s+|"
    rf"following\s+|last\s+)?{_COUNT_WORD}?\s*(?:business\s+|working\s+|calendar\s+)?{_PERIOD}\b"
    rf"(?:\s+(?:of|after|from|post|following)\s+(?:the\s+)?{_EVENT}\b)?"
    # 30 days after launch
    rf"|\d+\s*(?:days?|weeks?|months?)\s+(?:after|post|from|following)\s+(?:the\s+)?{_EVENT}\b"
    # by week 8, by day 30, by launch, before renewal
    r"|(?:(?<=by )|(?<=before ))(?:week|day|sprint|month)\s+\d+\b"
    r"|(?:(?<=by )|(?<=before ))(?:launch|ga|go-live|renewal|black friday|christmas|holidays)\b"
    # a year on its own: a (weak) deadline, never a target
    r"|(?:19|20)\d{2}\b(?![%.,]?\d)"
)
# Words without which no date can be present; a text with neither skips the date reader.
_DATE_KEYS = _words(
    rf"{_MONTH}|may|q[1-4]|h[12]|fy|end|eo[yqm]|next|this|coming|following|current|day|week|"
    r"month|quarter|year|sprint|release|cycle|launch|renewal|christmas|friday|holiday"
)
_DATE_LEAD = _words(
    r"(?:by|before|until|till|on|at|through|no later than|in|for|from)\s+(?:the\s+)?$"
)
# "in the first 7 days" defines the window of the metric; it is no deadline. "Activated within
# 7 days" may be a window too, so "by 2027-03-31" in the same text is the better deadline.
_WINDOW = re.compile(r"\bfirst\b")
_DEADLINE = re.compile(r"(?:by|before|until|till|no later than|end of|eo[yqm])\b")
_RELATIVE = re.compile(
    r"(?:within|in|over|during|after|for)\s+(?:the\s+)?(?!q[1-4]|h[12]|fy)[a-z\d]"
)
_NUM_TOKEN = re.compile(r"\d+(?:[.,:/]\d+)*([a-z%\u00d7]*)")
_UNITS = frozenset(
    {"%", "x", "\u00d7", "k", "m", "mm", "bn", "b", "ms", "s", "sec", "secs", "min", "mins", "h"}
    | {"hr", "hrs", "d", "pp", "pt", "pts", "kb", "mb", "gb", "tb", "w", "wk", "wks", "mo", "mos"}
    | {"y", "yr", "yrs"}
)
_ORDINALS = frozenset({"st", "nd", "rd", "th"})
# A number right after one of these words names a thing ("phase 2", "ticket 1234", "top 3").
_LABEL_BEFORE = _words(
    r"(?:v|ver|version|release|phase|step|stage|sprint|ticket|issue|bug|epic|story|pr|mr|"
    r"iteration|wave|round|part|milestone|tier|chapter|section|page|okr|kr|item|no\.|number|"
    r"build|ios|android|macos|windows|python|java|node|gen|series|dashboard|report|table|slide|"
    r"figure|fig\.|appendix|top|bottom|rank|ranked|priority|sev|severity|cohort|squad|room|rule|"
    r"option|scenario|variant|question|line|row|column|lane|region|zone|cluster|shard|port|"
    r"floor|week|day|month|year|quarter|grade|level|api|web|gate|pillar|theme|goal|objective)"
    r"\s?#?$|#$|[a-z][a-z0-9]*-$"
)
# A rate's denominator ("per 1,000 orders") says what is counted; it is no target.
_PER_BEFORE = _words(r"per\s+$")
_BASELINE_CUE = _words(
    r"(?:currently|today|now|baseline|base line|current|at the moment|right now|as of \w+|"
    r"was|were|from|vs\.?|versus|compared (?:to|with)|up from|down from|"
    r"last (?:year|quarter|month))"
    r"\s*(?:is|are|at|of|sits at|stands at|:|=|~|about|around|approx\.?|approximately|roughly)?"
    r"\s*(?:is|at|about|around|~)?\s*\(?\s*[~$€£¥]?\s*$"
)
_COMPARATOR = re.compile(
    r"(?:(?<![a-z])(?:by|to|under|below|over|above|at least|at most|less than|more than|"
    r"fewer than|no more than|no less than|up to|reach(?:es)?|hits?|exceeds?|of|within|beyond|"
    r"down to|up|down|lower|higher|max|min|minimum|maximum)\s*|[<>≤≥=+~]=?\s*)[$€£¥]?\s*$"
)
_STOP = (
    r"(?:per|for|by|in|within|on|at|of|and|or|to|from|vs|after|before|during|over|under|the|a|an|"
    r"with|than|as|is|are|was|were)\b"
)
_UNIT_AFTER = re.compile(rf"[ \t]?(?:/[ \t]?[a-z]+|(?!{_STOP})[a-z][a-z-]*(?:/[a-z]+)?)\b")
_NUMBER = (
    r"(?:[$€£¥]\s?)?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+(?:\.\d+)?)?"
    r"(?:\s?(?:%|percent|per cent|pp|pts?|points?|x|\u00d7|k|m|mm|bn|ms|s|secs?|mins?|h|hrs?|d)\b"
    r"|%)?"
)
_WORD_NUMBER = (
    r"(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|"
    r"thirty|forty|fifty|sixty|seventy|eighty|ninety|a hundred|hundred|a thousand|thousand)"
)
_FROM_TO = _words(
    rf"from\s+(?:about\s+|around\s+|~\s?)?(?:{_NUMBER}|{_WORD_NUMBER})(?:/[a-z]+)?"
    r"(?:[ \t]+[a-z/-]+){0,3}[ \t]*(?:to|down to|up to|→|->|=>|⟶)[ \t]*"
    r"(?:(?:about|around|under|below|above|over|less than|more than|at least|at most)[ \t]+"
    r"|[~<>≤≥][ \t]?)?"
    rf"(?:{_NUMBER}|{_WORD_NUMBER}\b)(?:[ \t]?/[ \t]?[a-z]+|[ \t]+(?!{_STOP})[a-z]+)?"
)
_ARROW_RANGE = re.compile(
    rf"(?<![\w.,])(?:{_NUMBER})(?:[ \t]+[a-z/]+){{0,2}}[ \t]*(?:→|->|=>|⟶)[ \t]*(?:{_NUMBER})"
    rf"(?:[ \t]?/[ \t]?[a-z]+|[ \t]+(?!{_STOP})[a-z]+)?"
)
_ARROWS = ("→", "->", "=>", "⟶")
_SPOKEN_AMOUNT = _words(
    rf"{_WORD_NUMBER}\s+(?:percent|per cent|percentage points|points|times|seconds?|minutes?|"
    r"hours?|days?|weeks?|months?|clicks?|steps?|screens?|customers|users|teams|accounts|deals|"
    r"signups|sign-ups|tickets|incidents|errors|calls)\b"
    r"|(?:double[sd]?|doubling|triple[sd]?|tripling|quadruple[sd]?|halve[sd]?|halving|"
    r"twice|three times|by half|in half|by a third|by a quarter|by two thirds|by a fifth|zero)\b"
)
_SPOKEN_KEYS = _words(
    r"zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|"
    r"forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|doubl|tripl|quadrupl|halv|half|"
    r"twice|third|quarter|fifth"
)
_VAGUE_AMOUNT = _words(
    r"significant(?:ly)?|substantial(?:ly)?|dramatic(?:ally)?|considerabl[ey]|noticeabl[ey]|"
    r"meaningful(?:ly)?|measurabl[ey]|a lot|greatly|massive(?:ly)?|drastic(?:ally)?|materially|"
    r"markedly|sharply|steadily|over time|as much as possible|"
    r"as (?:high|low|fast|soon) as possible|a bit|somewhat|slightly|further|overall"
)
_STRONG_TARGET = re.compile(
    r"%|percent|\bpp\b|points?\b|\d\s?[x\u00d7]\b|[$€£¥]|\d[kmb]\b"
    r"|\d\s?(?:ms|s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?|d|days?|weeks?)\b"
)


# A metric names a handful of numbers; reading more would only let a pasted table cost time.
_MAX_NUMBERS = 40


@dataclass(frozen=True, slots=True)
class _Numbers:
    """What the number reader recognised in one lower-cased text."""

    target: str
    date: str
    baseline: str
    labels: tuple[str, ...]
    vague: str


def _read_numbers(low: str, *, target_only: bool = False) -> _Numbers:
    """Find targets, dates, baselines and number-like labels in a lower-cased text."""
    has_digit = bool(_DIGIT.search(low))
    date = ""
    rest = low
    if has_digit or _DATE_KEYS.search(low):
        pieces: list[str] = []
        done = 0
        best_rank = 0
        for match in islice(_DATE.finditer(low), _MAX_NUMBERS):
            start, end = match.span()
            lead = _DATE_LEAD.search(low, max(0, start - 20), start)
            candidate = low[lead.start() if lead else start : end]
            rank = _date_rank(candidate)
            if rank > best_rank:
                best_rank, date = rank, candidate
            # Blank the date out, keeping every index, so no number inside it reads as a target.
            pieces += (low[done:start], "¦" * (end - start))
            done = end
        rest = "".join(pieces) + low[done:]
    target = ""
    span = _FROM_TO.search(rest) if "from" in rest else None
    if span is None and any(arrow in rest for arrow in _ARROWS):
        span = _ARROW_RANGE.search(rest)
    if span:
        target = span.group(0)
    baseline = ""
    labels: list[str] = []
    best = 0
    if has_digit:
        for number in islice(_NUM_TOKEN.finditer(rest), _MAX_NUMBERS):
            kind, rendered = _classify_number(rest, number)
            if kind == "label":
                labels.append(rendered)
            elif kind == "baseline" and not span:
                baseline = baseline or rendered
            elif kind == "target" and not span:
                score = _target_strength(rendered)
                if score > best:
                    best, target = score, rendered
    if not target and _SPOKEN_KEYS.search(rest):
        spoken = _SPOKEN_AMOUNT.search(rest)
        if spoken:
            target = spoken.group(0)
    vague = None if target_only else _VAGUE_AMOUNT.search(low)
    return _Numbers(
        target=target,
        date=date,
        baseline=baseline,
        labels=tuple(labels),
        vague=vague.group(0) if vague else "",
    )


def _date_rank(span: str) -> int:
    """Rank a date: a deadline beats a calendar date, which beats a span of time."""
    if _WINDOW.search(span):
        return 0
    if _DEADLINE.match(span):
        return 3
    return 1 if _RELATIVE.match(span) else 2


def _classify_number(rest: str, number: re.Match[str]) -> tuple[str, str]:
    """Tell whether one number is a ``target``, ``baseline``, ``label`` or ``qualifier``."""
    start, end = number.span()
    token, suffix = number.group(0), number.group(1)
    before_char = rest[start - 1] if start else " "
    after = rest[end : end + 2]
    if (
        before_char.isalpha()
        or before_char in "._#"
        or (before_char == "-" and start > 1 and rest[start - 2].isalpha())
    ):
        # Glued to a word: "v2", "q3", "p95", "plat-1234", "#112".
        word_start = start
        while word_start and (rest[word_start - 1].isalnum() or rest[word_start - 1] in "-#"):
            word_start -= 1
        return "label", rest[word_start:end]
    if ":" in token or token == "24/7" or token.count(".") >= 2 or after[:1] == "°":
        return "label", token
    if suffix in _ORDINALS or (after[:1] == "-" and after[1:2].isalpha()):
        # "1st", "7-day retention", "10-seat accounts" qualify what is counted.
        return "qualifier", token
    if suffix and suffix not in _UNITS:
        return "label", token
    before = rest[max(0, start - 30) : start]
    label = None if suffix else _LABEL_BEFORE.search(before)
    if label:
        return "label", before[label.start() :] + token
    if _PER_BEFORE.search(before):
        return "qualifier", token
    if _BASELINE_CUE.search(before):
        return "baseline", _render_number(rest, start, end, before)
    return "target", _render_number(rest, start, end, before)


def _target_strength(rendered: str) -> int:
    """Rank a candidate target: a percentage or a compared amount beats a bare count."""
    return 1 + bool(_STRONG_TARGET.search(rendered)) + (not rendered[:1].isdigit())


def _render_number(text: str, start: int, end: int, before: str) -> str:
    """Widen a number to the words that make it a target ("under 200 ms", "by 5 points")."""
    lead = _COMPARATOR.search(before) or _BASELINE_CUE.search(before)
    if lead:
        start -= len(before) - lead.start()
    unit = _UNIT_AFTER.match(text, end)
    # "2x" and "200ms" carry their unit; "under 2 s" and "$12k/month" take the next word.
    if (
        unit
        and "¦" not in unit.group(0)
        and (unit.group(0).lstrip().startswith("/") or not text[end - 1 : end].isalpha())
    ):
        end = unit.end()
    return text[start:end]


# --------------------------------------------------------------------------- hypothesis_form

_SIGNAL = _words(
    r"we(?:'ll| will| would| should| shall| can| could|'d)\s+(?:then\s+|also\s+)?"
    r"(?:know|tell|see|observe|notice|measure|track|confirm|validate|verify|detect)\b"
    r"|we(?:'ll| will| would)\s+have\s+(?:succeeded|been right|won|validated|proven)\b"
    r"|(?:we(?:'re| are)\s+right|we(?:'ve| have)\s+succeeded|it(?:'s| is)\s+working|"
    r"it\s+works|it\s+worked|this\s+(?:is\s+true|works|worked))\s+(?:when|if)\b"
    r"|we\s+(?:expect|hope)\s+to\s+see\b|to\s+(?:know|tell|confirm|validate|verify)\s+"
    r"(?:this|that|it|if|whether)\b"
    r"|(?:as\s+)?(?:measured|tracked|validated|confirmed|invalidated|proven|proved|evidenced|"
    r"monitored|verified)\s+(?:by|via|through|with|in|using|when|if|as|from|on)\b"
    r"|(?:as\s+)?(?:shown|indicated|seen|reflected|visible)\s+(?:by|in\s+(?:the\s+|our\s+)?"
    r"(?:data|funnel|dashboard|metrics?|numbers|amplitude|mixpanel|looker|analytics))\b"
    r"|success(?:ful)?\s+(?:looks like|means|is when|is if|would look like|will look like|"
    r"criteria|metrics?|measures?|if|when|is|will be|would be|=)"
    r"|(?:signals?|metrics?|kpis?|indicators?|measures?|north star|target|key result|"
    r"evidence|validation)\s*(?::|=|will be\b|is\b|are\b)"
    r"|(?P<marker>(?:a/b|ab|split)[ -]?test\w*\b:?|control group\b|holdout\b)"
    r"|we(?:'ll| will)\s+(?:look at|watch|monitor|compare)\b"
)
_PLACEHOLDER = re.compile(
    r"^\W*(?:tbd|tbc|todo|n/?a|none|\?+|-+|to be (?:defined|decided|agreed))\W*$"
)
_STRUCTURED = re.compile(
    r"(?P<label>change|the change|what we(?:'ll| will) (?:do|build|change|ship)|bet|our bet|"
    r"the bet|solution|intervention|action|experiment|expected outcomes?|outcomes?|"
    r"expected results?|results?|expected impact|impact|effect|signals?|measure|measures|"
    r"measured by|measurement|success looks like|success criteria|success|validation|"
    r"validated by|evidence|how we(?:'ll| will) (?:know|measure|tell)|we(?:'ll| will) know|"
    r"target)\s*[:=]\s*(?P<body>.*)$"
)
_SIGNAL_LABELS = ("signal", "measure", "success", "validat", "evidence", "how we", "we", "target")
_CHANGE_LABELS = frozenset(
    {"change", "the change", "bet", "our bet", "the bet", "solution", "intervention", "action"}
    | {"experiment"}
)
_LEAD_IN = re.compile(
    r".*(?<![a-z])(?:we(?:'re| are)?\s+(?:strongly\s+|firmly\s+|really\s+)?(?:believe|think|"
    r"expect|bet|betting|predict|hypothesi[sz]e|assume|suspect|anticipate|hope|guess|"
    r"are confident|'re confident|are betting|'re betting)|i\s+(?:believe|think|expect|bet|"
    r"predict)|(?:(?:our|the|my)\s+)?(?:hypothesis|bet|belief|assumption|prediction|thesis)"
    r"(?:\s+(?:is|was))?|predict)\b(?:\s*:)?(?:\s+that\b)?\s*"
)
_LEAD_IN_KEYS = re.compile(
    r"believ|think|expect|bet|predict|hypothes|assum|suspect|anticipat|hope|guess|confident|"
    r"belief|thesis"
)
_SEGMENT_PREFIX = re.compile(r"(?:that\s+)?(?:for|among|with)\s+[^,]{1,60},\s*|that\s+")
_IF_WE = _words(
    r"(?:if|when|once|after|as soon as)\s+we\s+(?P<change>(?:(?!\bthen\b)[^,]){3,}?)"
    r"\s*(?:,\s*(?:then\s+)?|\s+then\s+|$)"
)
_BY_DOING = re.compile(
    r"(?:.*?(?<![a-z]))?by\s+(?P<change>[a-z-]+ing\b[^,]{2,}),\s*(?P<outcome>.+)$"
)
_OUTCOME_VERB = (
    r"(?:increase|decrease|reduce|improve|raise|lower|lift|boost|grow|cut|double|triple|halve|"
    r"shorten|speed up|accelerate|drive|lead to|result in|cause|bring (?:down|up)|push|move|"
    r"prevent|eliminate|avoid|save|convert|retain|deflect|recover|unlock|generate|win|attract|"
    r"encourage|nudge|help|make|let|get|drop|minimi[sz]e|maximi[sz]e|stop)"
)
_CONNECTOR = _words(
    r"(?P<modal>(?:will|would|should|could|might|is going to|are going to|"
    r"(?:is|are)\s+(?:expected|likely|set)\s+to)\b)"
    r"|(?P<causal>(?:leads? to|led to|results? in|resulting in|causes|drives|increases|"
    r"decreases|reduces|improves|raises|lowers|lifts|boosts|cuts|doubles|halves|shortens|means|"
    r"translates? into|correlates with)\b)"
    rf"|(?P<purpose>(?:so that|so as to|in order to)\b|to\s+(?={_OUTCOME_VERB}\b)|"
    r"so\s+(?=(?:more|fewer|less|that|customers|users|teams|people)\b))"
    r"|(?P<expect>we(?:'d| would)?\s+(?:expect|anticipate|predict|should see)\s+"
    r"(?:to\s+see\s+)?(?=(?:more|fewer|less|higher|lower|faster|shorter|a|an|the)\b))"
    r"|(?P<then>then\b)"
)
# An arrow between words (not between two numbers) reads as "leads to": "free shipping → AOV".
_ARROW = re.compile(r"(?<![\d%)\s])\s*(?:→|->|=>|⟶)\s*(?![\s$€£]*\d)")
_MODAL_TAIL = re.compile(
    r"(?:we(?:'d| would)?\s+(?:expect|anticipate|predict)\s+(?:to\s+see\s+)?)?"
    r"(?:(?:also|help|helps|further|significantly|measurably|directly|likely|then|in turn|"
    r"ultimately|probably|definitely|eventually|noticeably)\s+(?:to\s+)?)*"
    r"(?:lead to|result in|cause|translate into|help(?: to)?)?\s*"
)
# "Dark mode will ship in Q3" is a plan, not an expected result.
_DELIVERY = re.compile(
    r"(?:build|add|implement|create|ship|develop|deliver|launch|release|roll out|migrate|deploy|"
    r"be (?:built|shipped|released|available|delivered|live|launched|done|ready|finished))\b"
)
_PLAN_SUBJECT = re.compile(r"(?<![a-z])(?:we|i|you|the team|our team|engineering|they)\s*$")
_SOLUTION_VERB = (
    r"(?:build|add|implement|create|integrate|migrate|support|enable|launch|redesign|refactor|"
    r"introduce|provide|allow|let|ship|develop|deliver|set up|setup|offer|extend|update|upgrade|"
    r"replace|rewrite|revamp|rebuild|automate|expose|deprecate|remove|move|switch|adopt|design|"
    r"roll out|rollout|release|connect|sync|give|show|display|send|generate|port|convert|"
    r"standardi[sz]e|unify|consolidate|centrali[sz]e|streamline|simplify|optimi[sz]e|expand|"
    r"include|deploy|configure|install|embed|surface|bundle|publish|locali[sz]e|translate|"
    r"restructure|make|write|prototype|pilot|test|try|run|pre-fill|prefill|cache|split|merge|"
    r"hide|open|turn on|turn off|change|fix|clean up|rename|document|track|instrument|notify|"
    r"email|remind|nudge|auto-\w+|personali[sz]e|recommend|suggest)"
)
_SOLUTION_GERUND = (
    r"(?:building|adding|implementing|creating|integrating|migrating|supporting|enabling|"
    r"launching|redesigning|refactoring|introducing|providing|allowing|letting|shipping|"
    r"developing|delivering|setting up|offering|extending|updating|upgrading|replacing|"
    r"rewriting|revamping|rebuilding|automating|exposing|deprecating|removing|moving|switching|"
    r"adopting|designing|rolling out|releasing|connecting|syncing|giving|showing|displaying|"
    r"sending|generating|porting|converting|standardi[sz]ing|unifying|consolidating|"
    r"centrali[sz]ing|streamlining|simplifying|optimi[sz]ing|expanding|including|deploying|"
    r"embedding|surfacing|bundling|publishing|locali[sz]ing|translating|making|prefilling|"
    r"pre-filling|caching|splitting|merging|hiding|changing|fixing|renaming|notifying|emailing|"
    r"reminding|nudging|auto-\w+ing|personali[sz]ing|recommending|suggesting|lowering|raising|"
    r"cutting|shortening|pushing|pricing|dropping)"
)
_WE_PLAN = (
    r"(?:'ll|'re|'m| will| are going to|'re going to| plan to| want to| intend to| should| "
    r"need to| must| are| am)"
)
_CHANGE_START = re.compile(
    rf"(?:we{_WE_PLAN}?\s+)?(?:{_SOLUTION_VERB}|{_SOLUTION_GERUND})\b|(?:(?:a|an|the|our)\s+)?new\b"
)
_CHANGE_ANYWHERE = _words(rf"(?:we|i){_WE_PLAN}\s+(?:{_SOLUTION_VERB}|{_SOLUTION_GERUND})\b.*")
_OUTCOME_START = re.compile(
    r"(?:increase|decrease|reduce|improve|raise|lower|lift|boost|grow|cut|double|triple|halve|"
    r"shorten|speed up|accelerate|drive|get|help|make)\b"
)
_PEOPLE = re.compile(
    r"(?![a-z]+ing\b)(?:[a-z0-9'-]+\s+){0,2}(?:users?|customers?|people|clients?|visitors?|"
    r"shoppers?|buyers?|admins?|administrators?|teams?|members?|everyone|everybody|they|we|you|"
    r"he|she|prospects?|accounts?|developers?|engineers?|analysts?|agents?|managers?|drivers?|"
    r"patients?|parents?|merchants?|sellers?|students?|employees?|staff|readers?|subscribers?|"
    r"players?|creators?|owners?|leads?|partners?|companies|businesses|organi[sz]ations?)"
)
_DEICTIC = re.compile(
    r"(?:it|this|that|these|those|(?:this|that|the)\s+(?:feature|change|epic|project|"
    r"initiative|work|effort|improvement|update|release|capability|functionality|story|ticket|"
    r"issue|solution|idea|thing))"
)
_METRIC_WORDS = (
    r"convert\w*|conversion|retain\w*|retention|churn\w*|adopt\w*|adoption|sign(?:s)? up|"
    r"signups?|upgrad\w*|renew\w*|return\w*|reorder\w*|repeat|complet\w*|finish\w*|activat\w*|"
    r"engag\w*|usage|invite\w*|open\w*|click\w*|buy\w*|purchas\w*|pay\w*|spend\w*|revenue|"
    r"tickets?|calls?|contacts?|errors?|time|minutes|hours|days|rate|volume|count|number of|"
    r"share|nps|csat|arr|mrr|aov|ltv|cac|dau|wau|mau|traffic|orders?|deals?|leads?|pipeline|"
    r"sessions?|visits?|views?|abandon\w*|drop-?offs?|bounce\w*|costs?|latency|load time|uptime|"
    r"incidents?|outages?|mttr|freshness|accuracy|win rate|stop\w*|try|tries|trial|close|"
    r"self-serve|deflect\w*"
)
_METRIC = _words(rf"(?:{_METRIC_WORDS})\b")
_OBSERVABLE = _words(
    r"(?:more|fewer|less|higher|lower|faster|quicker|slower|shorter|longer|sooner|earlier|"
    r"cheaper|increas\w*|decreas\w*|reduc\w*|rais(?:e|es|ed|ing)|lift|boost\w*|grow\w*|cut|"
    r"drop\w*|fall|falls|rise|rises|go (?:up|down)|goes (?:up|down)|doubl\w*|tripl\w*|halv\w*|"
    r"shorten\w*|speed up|prevent\w*|eliminat\w*|avoid\w*|sav(?:e|es|ed|ing)|"
    rf"{_METRIC_WORDS})\b"
)
_VAGUE_OUTCOME = _words(
    r"(?:love|loves|like it|like this|like the|enjoy\w*|happ(?:y|ier|iness)|delight\w*|"
    r"appreciate|satisf(?:ied|action)|user experience|customer experience|experience|ux|"
    r"better|nicer|easier|simpler|cleaner|smoother|great|good|amazing|awesome|intuitive|"
    r"modern|cool|excited|wow|value|valuable|benefit|beneficial|positive|impact)\b"
)
_QUESTION_START = re.compile(
    r"(?:will|would|can|could|does|do|did|should|is|are|how|what|why|which|who|where|when)\b"
)
_USER_STORY = re.compile(r"as an?\s+[^,\n]{1,80}?,?\s+i\s+(?:want|need|would like|wish|can)\b")

_HYPOTHESIS_TEMPLATE = (
    "Write it as: We believe <change> will result in <outcome>; we will know when <signal>."
)
_SIGNAL_HINT = (
    'Add the signal: end with "we will know we are right when <metric> moves from <now> to '
    '<target> by <date>".'
)


@dataclass(slots=True)
class _Parts:
    """The pieces of a hypothesis recognised so far (lower-case spans)."""

    change: str = ""
    deictic: str = ""
    outcome: str = ""
    signal: str = ""
    numeric_signal: str = ""


def _strip_lead_in(text: str) -> str:
    """Drop everything up to the last "we believe (that)" and similar openers."""
    if _LEAD_IN_KEYS.search(text):
        lead = _LEAD_IN.match(text)
        if lead:
            return text[lead.end() :]
    return text


def _subject_change(subject: str, parts: _Parts) -> None:
    """Record the subject in front of a connector as the change, unless it names none."""
    subject = _strip_lead_in(subject).strip(" ,:")
    segment = _SEGMENT_PREFIX.match(subject)
    if segment:
        subject = subject[segment.end() :].strip(" ,:")
    if not subject:
        return
    if _DEICTIC.fullmatch(subject):
        parts.deictic = parts.deictic or subject
    elif not _PEOPLE.fullmatch(subject) and not parts.change:
        parts.change = subject


def _strip_modal(outcome: str) -> str:
    """Drop filler words at the start of an outcome ("also help to", "result in")."""
    outcome = outcome.strip(" ,")
    filler = _MODAL_TAIL.match(outcome)
    return outcome[filler.end() :].strip() if filler else outcome


def _read_claim(clause: str, parts: _Parts) -> None:
    """Find the change and the outcome in one clause that is not a signal."""
    labelled = _STRUCTURED.match(clause)
    if labelled:
        _read_labelled(labelled.group("label"), labelled.group("body").strip(), parts)
        return
    if "we" in clause:
        if_we = _IF_WE.search(clause)
        if if_we:
            parts.change = parts.change or if_we.group("change")
            after = clause[if_we.end() :].strip(" ,")
            before = _strip_lead_in(clause[: if_we.start()]).strip(" ,")
            outcome = after if len(after.split()) >= 2 else before
            if outcome and not parts.outcome:
                parts.outcome = _strip_modal(outcome)
            return
    if "by " in clause:
        by_doing = _BY_DOING.match(clause)
        if by_doing:
            parts.change = parts.change or by_doing.group("change")
            parts.outcome = parts.outcome or _strip_modal(by_doing.group("outcome"))
            return
    if _read_connector(clause, parts):
        return
    if not parts.change:
        start = _strip_lead_in(clause).strip()
        if _CHANGE_START.match(start):
            parts.change = start
            return
        anywhere = _CHANGE_ANYWHERE.search(clause)
        if anywhere:
            parts.change = anywhere.group(0)
            return
    if not parts.outcome and _OUTCOME_START.match(clause):
        parts.outcome = clause


def _read_labelled(label: str, body: str, parts: _Parts) -> None:
    """Read a labelled line of a template ("Change: ...", "Expected outcome: ...")."""
    if not body or _PLACEHOLDER.match(body):
        return
    if label not in _CHANGE_LABELS:
        parts.outcome = parts.outcome or body
        return
    inner = _Parts()
    _read_claim(body, inner)
    if inner.change and inner.outcome:
        # "Our bet: <change> will <outcome>" holds a whole claim behind the label.
        parts.change = parts.change or inner.change
        parts.outcome = parts.outcome or inner.outcome
    else:
        parts.change = parts.change or body


# A claim that has not split at its first few connectors is no "<change> will <outcome>".
_MAX_CONNECTORS = 6


def _read_connector(clause: str, parts: _Parts) -> bool:
    """Split a clause at its first "will", "leads to", "so that" ...; tell whether it did."""
    for connector in islice(_CONNECTOR.finditer(clause), _MAX_CONNECTORS):
        subject = clause[: connector.start()]
        tail = clause[connector.end() :].strip(" ,")
        if connector.group("modal") or connector.group("causal"):
            if _PLAN_SUBJECT.search(subject[-24:]) or not _WORD.search(subject):
                continue
            if connector.group("modal") and _DELIVERY.match(tail):
                continue
        if not _WORD.search(tail):
            continue
        _subject_change(subject, parts)
        if connector.group("causal"):
            tail = connector.group("causal") + " " + tail
        if not parts.outcome:
            parts.outcome = _strip_modal(tail)
        return True
    arrow = _ARROW.search(clause) if any(a in clause for a in _ARROWS) else None
    if arrow and _WORD.search(clause[: arrow.start()]) and _WORD.search(clause[arrow.end() :]):
        _subject_change(clause[: arrow.start()], parts)
        parts.outcome = parts.outcome or clause[arrow.end() :].strip()
        return True
    return False


def _split_signal(clause: str) -> tuple[str, str]:
    """Split a clause into its claim and its signal (the signal phrase to the clause end)."""
    labelled = _STRUCTURED.match(clause)
    if labelled and labelled.group("label").startswith(_SIGNAL_LABELS):
        return "", clause if _has_content(labelled.group("body")) else ""
    match = _SIGNAL.search(clause)
    if not match:
        return clause, ""
    if match.group("marker"):
        # "A/B test: <claim>" says how we will tell and leaves the claim whole.
        return (clause[: match.start()] + " " + clause[match.end() :]).strip(), match.group(0)
    claim = clause[: match.start()].rstrip(" ,(")
    return claim, clause[match.start() :] if _has_content(clause[match.end() :]) else ""


def _has_content(body: str) -> bool:
    """Tell whether a labelled body says something ("TBD" and "n/a" do not)."""
    return bool(_WORD.search(body)) and not _PLACEHOLDER.match(body.strip())


def _outcome_state(parts: _Parts) -> str:
    """Classify the outcome: ``observable``, ``vague`` or ``none``."""
    if not parts.outcome:
        return "none"
    # A feeling ("happier", "easier") is no result unless a metric or a number comes with it.
    if (
        _VAGUE_OUTCOME.search(parts.outcome)
        and not _METRIC.search(parts.outcome)
        and not parts.numeric_signal
    ):
        return "vague"
    return "observable"


def hypothesis_form(text: str) -> Verdict:
    """Check that a hypothesis names a change, an expected outcome and a signal."""
    source = _prepare(text)
    clauses = _clauses(source.low)
    if not clauses:
        return Verdict(
            ok=False,
            found="nothing",
            problem="It is empty: it names no change, no outcome and no signal.",
            hint=_HYPOTHESIS_TEMPLATE,
        )
    parts = _Parts()
    claims: list[str] = []
    for clause in clauses:
        claim, signal = _split_signal(clause)
        if signal and not parts.signal:
            parts.signal = signal
        if _WORD.search(claim):
            claims.append(claim)
            _read_claim(claim, parts)
    if not parts.outcome and parts.signal and _OBSERVABLE.search(parts.signal):
        parts.outcome = parts.signal
    if parts.outcome or parts.change:
        # A number counts as the signal only outside the change: "a reminder 24 hours before
        # the trial ends" is part of what we do, not how we will tell.
        remainder = " ¦ ".join(claims)
        if parts.change:
            remainder = remainder.replace(parts.change, " ¦ ", 1)
        parts.numeric_signal = _read_numbers(remainder, target_only=True).target
    state = _outcome_state(parts)
    has_signal = bool(parts.signal or parts.numeric_signal)
    found = _hypothesis_found(source, parts, state)
    if parts.change and state == "observable" and has_signal:
        return Verdict(ok=True, found=found, problem="", hint="")
    if _USER_STORY.match(source.low):
        found = f"user story {source.show(clauses[0])}"
        problem = (
            "It is a user story: it says what someone wants, not which change we make, "
            "what outcome we expect and how we will tell."
        )
    elif source.low.endswith("?") or (
        _QUESTION_START.match(source.low) and "?" in source.low and not has_signal
    ):
        problem = (
            "It asks a question instead of stating what we expect to happen and how we will tell."
        )
    else:
        problem = _hypothesis_problem(source, parts, state, has_signal)
    only_signal_missing = bool(parts.change) and state == "observable"
    return Verdict(
        ok=False,
        found=found,
        problem=problem,
        hint=_SIGNAL_HINT if only_signal_missing else _HYPOTHESIS_TEMPLATE,
    )


def _hypothesis_found(source: _Text, parts: _Parts, state: str) -> str:
    """Describe the recognised change, outcome and signal."""
    pieces = []
    if parts.change:
        pieces.append(f"change {source.show(parts.change)}")
    elif parts.deictic:
        pieces.append(f"no change named (only {source.show(parts.deictic)})")
    else:
        pieces.append("no change")
    if state == "none":
        pieces.append("no outcome")
    elif state == "vague":
        pieces.append(f"outcome {source.show(parts.outcome)} (not observable)")
    else:
        pieces.append(f"outcome {source.show(parts.outcome)}")
    if parts.signal:
        pieces.append(f"signal {source.show(parts.signal)}")
    elif parts.numeric_signal:
        pieces.append(f"signal {source.show(parts.numeric_signal)} (a number in the outcome)")
    else:
        pieces.append("no signal")
    return "; ".join(pieces)


def _hypothesis_problem(source: _Text, parts: _Parts, state: str, has_signal: bool) -> str:
    """Say in one sentence which of change, outcome and signal are missing."""
    named: list[str] = []
    missing: list[str] = []
    if parts.change:
        named.append("a change")
    elif parts.deictic:
        missing.append(
            f"no change we make ({source.show(parts.deictic)} does not say what we will do)"
        )
    else:
        missing.append("no change we make")
    if state == "observable":
        named.append("an outcome")
    elif state == "vague":
        missing.append(
            f"no observable outcome ({source.show(parts.outcome)} is a hope, not a result)"
        )
    else:
        missing.append("no expected outcome")
    if has_signal:
        named.append("a signal")
    else:
        missing.append("no signal that would tell")
    if named:
        return f"It names {_join(named)} but {_join(missing)}."
    return f"It names {_join(missing)}."


# --------------------------------------------------------------------------- measurable

_METRIC_TEMPLATE = (
    'Write it as: <metric> from <baseline> to <target> by <date>, e.g. "Trial-to-paid '
    'conversion from 9% to 12% by 2026-06-30".'
)
_DATE_HINT = 'Add a date or timeframe, e.g. "by 2026-06-30" or "within 8 weeks of launch".'


def measurable(text: str) -> Verdict:
    """Check that a success metric has a number or a from-to target, ideally with a date."""
    source = _prepare(text)
    if not _WORD.search(source.low) and not _DIGIT.search(source.low):
        return Verdict(
            ok=False,
            found="nothing",
            problem="It is empty: there is no metric and no target.",
            hint=_METRIC_TEMPLATE,
        )
    numbers = _read_numbers(source.low)
    pieces = [
        f"target {source.show(numbers.target)}" if numbers.target else "no target",
        f"date {source.show(numbers.date)}" if numbers.date else "no date",
    ]
    if numbers.baseline:
        pieces.append(f"baseline {source.show(numbers.baseline)}")
    if numbers.labels and not numbers.target:
        shown = ", ".join(source.show(label) for label in numbers.labels[:3])
        pieces.append(f"ignored {shown} (labels, not targets)")
    if numbers.vague and not numbers.target:
        pieces.append(f"vague {source.show(numbers.vague)}")
    found = "; ".join(pieces)
    if numbers.target:
        return Verdict(ok=True, found=found, problem="", hint="" if numbers.date else _DATE_HINT)
    if numbers.baseline:
        problem = f"It gives a baseline ({source.show(numbers.baseline)}) but no target to reach."
    elif numbers.vague:
        problem = f"It says {source.show(numbers.vague)} but gives no number or target to reach."
    elif numbers.labels:
        problem = (
            f"Its only numbers are labels ({source.show(numbers.labels[0])}), "
            "not a target to reach."
        )
    elif numbers.date:
        problem = (
            f"It has a date ({source.show(numbers.date)}) but no number or target to reach by then."
        )
    else:
        problem = "It names what should change but no number or target to reach."
    return Verdict(ok=False, found=found, problem=problem, hint=_METRIC_TEMPLATE)


# --------------------------------------------------------------------------- problem_not_solution

_PAIN = _words(
    # cannot, does not, never: something that should work does not
    r"(?:can't|cannot|can not|couldn't|could not|unable to|not able to|inability|"
    r"don't|do not|doesn't|does not|didn't|did not|won't|isn't|aren't|wasn't|weren't|never|"
    r"no way|no easy way|no longer|no one|nobody|nothing tells|without being able|"
    r"is not possible|impossible|have no|has no|lack\w*)\b"
    # effort: having to, spending time, manual work
    r"|(?:have to|has to|had to|having to|forced to|end up|ends up|ended up|rely on|relies on|"
    r"depend on|depends on|only way|workarounds?|by hand|manual(?:ly)?|copy(?:ing)?[- ]past\w*|"
    r"re-?enter\w*|re-?typ\w*|double[- ]entry|double-\w+|spreadsheets?|spend\w*|spent|wast\w*|"
    r"takes?|took|taking|time-consuming|tedious|cumbersome|repetitive|chas(?:e|es|ing)|"
    r"(?<!we )need(?:s)? to|need a way)\b"
    # struggle, friction and what it costs
    r"|(?:struggl\w*|hard to|hard for|difficult\w*|confus\w*|frustrat\w*|annoy\w*|overwhelm\w*|"
    r"stuck|blocked|blocks|blocking|unclear|unusable|unreliable|inconsistent|broken|break|breaks|"
    r"crash\w*|bugs|buggy|errors|error-prone|mistakes?|wrong|incorrect|inaccurate|mismatch\w*|"
    r"differs?|slow|slowly|sluggish|laggy|painful|pain|pain points?|friction|bottlenecks?|"
    r"too (?:long|slow|many|much|hard|complex|complicated|expensive|late|often|few)|"
    r"fail(?:s|ed|ing|ures?)?|miss(?:es|ed|ing)?|forget\w*|forgot|lose|loses|losing|lost|loss|"
    r"leak\w*|churn\w*|cancel\w*|abandon\w*|drop(?:s|ped|ping)?\s+(?:off|out)|drop-?offs?|"
    r"give up|gives up|gave up|bounce\w*|leave|leaves|leaving|complain\w*|tickets?|escalat\w*|"
    r"angry|upset|unhappy|dissatisf\w*|delay\w*|late|wait\w*|risk\w*|penalt\w*|exposed|"
    r"out of date|outdated|stale|duplicat\w*|surpris\w*|distrust|worr\w*|afraid|fear\w*|"
    r"burden\w*|interrupt\w*|paged|noisy|noise|flaky|guess\w*|accidental\w*|by mistake|"
    r"expensive|costly|costs? (?:us|them|\$|€|£)|overpa\w*|no visibility|blind spots?|unaware|"
    r"not sure|unsure|keep asking|asking (?:how|why|whether|if|support)|"
    r"ask (?:how|why|whether|if|support)|problems? (?:with|is|are)|issues? (?:with|is|are)|"
    r"hurts?|hurting|suffer\w*|detractors|bad reviews|"
    r"low (?:adoption|conversion|retention|usage)|rebuild\w* .{0,20}(?:in|by) )"
)
_SOLUTION_START = re.compile(
    r"(?:(?:let's|lets|please|we\s+(?:need|want|should|must|will|plan|are going|'re going|'ll)"
    r"(?:\s+to)?|the goal (?:is|of this epic is) to|goal:|this epic (?:will|is to)|"
    r"i want to|i'd like to|we'd like to)\s+)?"
    rf"{_SOLUTION_VERB}\b"
    r"|(?:feature|solution|scope|deliverables?|epic|task|proposal|idea)\s*:"
    r"|we\s+(?:need|want|should have|must have|require)\s+(?:a|an|the|some|more|better)\b"
)
_GOAL_START = re.compile(
    r"(?:improve|increase|reduce|grow|boost|optimi[sz]e|enhance|maximi[sz]e|minimi[sz]e|"
    r"drive|raise|lower|cut|modernize|modernise)\b"
)
_REQUEST = _words(
    r"(?:want|wants|wanted|would like|asked for|ask for|asks for|asking for|requested|"
    r"requesting|requests|request|expect|expects|demand\w*|wish\w*|need|needs)\s+(?!to\b)\S.*"
    r"|(?:should|must|need to|needs to|want to|wants to) be able to\b.*"
)
_SHORT_NAME_WORDS = 8
_PROBLEM_TEMPLATE = (
    "Write it as: <who> can't <do what> because <cause>, which costs them <consequence>; "
    "keep the solution for the hypothesis."
)
_WHO_WHAT_COST = "who struggles, with what, at what cost"
_NO_PAIN = "no pain, need or consequence"


def problem_not_solution(text: str) -> Verdict:
    """Check that a customer problem states a pain or need rather than a solution."""
    source = _prepare(text)
    clauses = _clauses(source.low)
    if not clauses:
        return Verdict(
            ok=False,
            found="nothing",
            problem="It is empty: it says nothing about who struggles with what.",
            hint=_PROBLEM_TEMPLATE,
        )
    solution = next((c for c in clauses if _SOLUTION_START.match(c)), "")
    pain = next((c for c in clauses if _PAIN.search(c)), "")
    if pain:
        pieces = [f"pain {source.show(pain)}"]
        if solution and solution != pain:
            pieces.insert(0, f"solution {source.show(solution)}")
        return Verdict(ok=True, found="; ".join(pieces), problem="", hint="")
    request = next((m for m in map(_REQUEST.search, clauses) if m), None)
    if solution:
        found = f"solution {source.show(solution)}"
        problem = (
            f"It describes a solution ({source.show(solution)}) rather than the problem it "
            f"solves: {_WHO_WHAT_COST}."
        )
    elif request:
        found = f"request {source.show(request.group(0))}"
        problem = (
            f"It reports a request ({source.show(request.group(0))}) but not the problem "
            f"behind it: {_WHO_WHAT_COST}."
        )
    elif _GOAL_START.match(clauses[0]):
        found = f"goal {source.show(clauses[0])}"
        problem = (
            f"It states a goal ({source.show(clauses[0])}), not the problem behind it: "
            f"{_WHO_WHAT_COST}."
        )
    elif all(len(c.split()) <= _SHORT_NAME_WORDS for c in clauses):
        names = ", ".join(source.show(c) for c in clauses[:3])
        found = f"name {names}"
        problem = f"It is a name ({names}), not a problem: it says nothing about {_WHO_WHAT_COST}."
    else:
        found = ""
        problem = f"It does not say what goes wrong: {_WHO_WHAT_COST}."
    return Verdict(
        ok=False,
        found=f"{found}; {_NO_PAIN}" if found else _NO_PAIN,
        problem=problem,
        hint=_PROBLEM_TEMPLATE,
    )


CHECKS: Mapping[str, Callable[[str], Verdict]] = MappingProxyType(
    {
        "hypothesis_form": hypothesis_form,
        "measurable": measurable,
        "problem_not_solution": problem_not_solution,
    }
)
"""The quality checks by the name a rule set uses for them."""
