"""What a section of a description is, in Markdown, Jira wiki markup and ADF."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.model import Section
from rules.naming import names_match
from rules.sections import adf_to_text, parse_description, parse_sections

FIXTURES = Path(__file__).parent / "fixtures" / "descriptions"


def headings(sections: tuple[Section, ...]) -> list[str]:
    return [section.heading for section in sections]


def by_heading(sections: tuple[Section, ...]) -> dict[str, Section]:
    return {section.heading: section for section in sections}


def text(value: str, *marks: str) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": value}
    if marks:
        node["marks"] = [{"type": mark} for mark in marks]
    return node


def paragraph(*content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "paragraph", "content": list(content)}


def heading(level: int, title: str) -> dict[str, Any]:
    return {"type": "heading", "attrs": {"level": level}, "content": [text(title)]}


def doc(*content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "doc", "version": 1, "content": list(content)}


# Markdown headings


@pytest.mark.parametrize("level", [1, 2, 3, 4, 5, 6])
def test_markdown_headings_of_any_level_start_sections(level: int) -> None:
    sections = parse_sections(f"{'#' * level} Hypothesis\nWe believe X will result in Y.")

    assert sections == (Section("Hypothesis", "We believe X will result in Y.", level),)


@pytest.mark.parametrize(
    "line", ["####### Seven is too many", "#hashtag", "    # indented code", "#"]
)
def test_lines_that_only_look_like_headings_start_no_named_section(line: str) -> None:
    assert parse_sections(f"{line}\nbody") == ()


def test_closing_hashes_and_emphasis_are_not_part_of_the_heading() -> None:
    sections = parse_sections("## **Success metric** ##\n5% more\n### C# ports\nnone")

    assert headings(sections) == ["Success metric", "C# ports"]


def test_setext_underlines_make_headings() -> None:
    sections = parse_sections("Hypothesis\n==========\nWe believe.\n\nSuccess metric\n---\n5%")

    assert sections == (
        Section("Hypothesis", "We believe.", 1),
        Section("Success metric", "5%", 2),
    )


def test_a_rule_under_a_running_paragraph_is_not_a_setext_heading() -> None:
    sections = parse_sections("## Notes\nfirst line\nsecond line\n---\nafter the rule")

    assert sections == (Section("Notes", "first line\nsecond line\n---\nafter the rule", 2),)


def test_heading_inside_code_fence_is_ignored() -> None:
    description = (
        "## Hypothesis\nWe believe.\n```\n## Success metric\nSuccess metric: 5%\n```\n"
        "~~~~\n# Customer problem\n~~~\nstill code\n~~~~\n## Next"
    )

    sections = parse_sections(description)

    assert headings(sections) == ["Hypothesis", "Next"]
    assert sections[0].body.endswith("still code\n~~~~")


def test_an_unclosed_fence_hides_the_rest() -> None:
    assert headings(parse_sections("## Before\n```\n## After")) == ["Before"]


# Label lines


def test_label_line_is_a_section() -> None:
    sections = parse_sections("Hypothesis: We believe X will result in Y.")

    assert sections == (Section("Hypothesis", "We believe X will result in Y.", 0),)


@pytest.mark.parametrize(
    "line",
    [
        "**Hypothesis:** We believe.",
        "**Hypothesis**: We believe.",
        "__Hypothesis:__ We believe.",
        "__Hypothesis__: We believe.",
        "*Hypothesis:* We believe.",
        "_Hypothesis_: We believe.",
        "**Hypothesis:**We believe.",
        "**Hypothesis: We believe.**",
    ],
)
def test_bold_label_line_is_a_section(line: str) -> None:
    assert parse_sections(line) == (Section("Hypothesis", "We believe.", 0),)


@pytest.mark.parametrize(
    "line",
    [
        "- Success metric: 5% more",
        "* **Success metric:** 5% more",
        "+ Success metric: 5% more",
        "1. Success metric: 5% more",
        "2) Success metric: 5% more",
        "  - Success metric: 5% more",
        "- [x] Success metric: 5% more",
    ],
)
def test_list_item_label_line_is_a_section(line: str) -> None:
    assert parse_sections(line) == (Section("Success metric", "5% more", 0),)


def test_label_body_runs_over_the_following_lines() -> None:
    sections = parse_sections("Hypothesis:\n\nWe believe X\nwill result in Y.\n\n## Next")

    assert sections[0] == Section("Hypothesis", "We believe X\nwill result in Y.", 0)


def test_label_section_runs_to_next_label_line() -> None:
    sections = parse_sections("Hypothesis: We believe.\nSuccess metric: 5% more\nin Q3")

    assert sections == (
        Section("Hypothesis", "We believe.", 0),
        Section("Success metric", "5% more\nin Q3", 0),
    )


def test_empty_label_before_another_label_stays_empty() -> None:
    sections = parse_sections("Hypothesis:\nSuccess metric: 5%\nCustomer problem:")

    assert [section.body for section in sections] == ["", "5%", ""]


def test_bold_label_keeps_the_plain_and_list_labels_below_it() -> None:
    description = "**Success metrics:**\nBefore: 2.1%\nAfter: 2.6%\n**Hypothesis:** We believe."

    sections = by_heading(parse_sections(description))

    assert sections["Success metrics"].body == "Before: 2.1%\nAfter: 2.6%"
    assert sections["Before"].body == "2.1%"
    assert sections["After"].body == "2.6%"
    assert sections["Hypothesis"].body == "We believe."


def test_nested_list_labels_stay_inside_their_parent_item() -> None:
    description = (
        "- **Success metrics:**\n"
        "  - Conversion: 2% to 3%\n"
        "  - Checkout time: under 30 s\n"
        "- Hypothesis:\n"
        "- Design review done\n"
        "\n"
        "Text after the list."
    )

    sections = by_heading(parse_sections(description))

    assert sections["Success metrics"].body == (
        "- Conversion: 2% to 3%\n  - Checkout time: under 30 s"
    )
    assert sections["Conversion"].body == "2% to 3%"
    assert sections["Checkout time"].body == "under 30 s"
    assert sections["Hypothesis"].body == ""


def test_text_leaving_a_list_ends_the_list_label() -> None:
    sections = parse_sections("- Risk: carrier limits\n\nUnrelated paragraph.")

    assert sections == (Section("Risk", "carrier limits", 0),)


@pytest.mark.parametrize(
    "line",
    [
        "https://example.com/roadmap: see there",
        "See http://example.com: ok",
        "mailto: pm@example.com",
        "10:30 weekly sync",
        "Standup at 10:30: agenda",
        "env:prod is where it runs",
        "std::vector is a container",
        ":rocket: launch",
    ],
)
def test_url_and_time_are_not_labels(line: str) -> None:
    assert parse_sections(line) == ()


@pytest.mark.parametrize(
    "line",
    [
        "We believe that this one change will: help",
        "A name that is far too long to be a label at all: x",
        "2024 goals: ship",
        "- 3 things: a, b, c",
        "The goals are: faster, cheaper",
        "Depends on: PLAT-412",
        "We need the following: a, b",
        "| Hypothesis | We believe |",
        "> Hypothesis: quoted",
    ],
)
def test_sentences_and_long_names_are_not_labels(line: str) -> None:
    assert parse_sections(line) == ()


def test_label_names_may_carry_punctuation_and_non_english_letters() -> None:
    description = "Payment-step drop-off: 25%\nKPI & target (Q3): 3%\nHypothèse: nous croyons"

    assert headings(parse_sections(description)) == [
        "Payment-step drop-off",
        "KPI & target (Q3)",
        "Hypothèse",
    ]


# Sections and their bodies


def test_section_runs_to_next_heading() -> None:
    description = "# Epic\n## Hypothesis\nWe believe.\n\nMore.\n### Details\nSmall print."

    assert parse_sections(description) == (
        Section("Epic", "", 1),
        Section("Hypothesis", "We believe.\n\nMore.", 2),
        Section("Details", "Small print.", 3),
    )


def test_label_lines_stay_inside_a_heading_section() -> None:
    description = "## Success metric\nConversion: from 2.1% to 2.6%\n## Hypothesis\nWe believe."

    assert parse_sections(description) == (
        Section("Success metric", "Conversion: from 2.1% to 2.6%", 2),
        Section("Conversion", "from 2.1% to 2.6%", 0),
        Section("Hypothesis", "We believe.", 2),
    )


def test_a_heading_ends_a_label_section() -> None:
    sections = parse_sections("Hypothesis: We believe.\n## Notes\nnone")

    assert sections[0] == Section("Hypothesis", "We believe.", 0)


def test_empty_section_has_empty_body() -> None:
    sections = parse_sections("## Hypothesis\n\n   \n## Success metric\n**Customer problem:**  ")

    assert [section.body for section in sections] == ["", "**Customer problem:**", ""]


def test_text_before_the_first_section_belongs_to_none() -> None:
    sections = parse_sections("Intro paragraph.\n\n## Hypothesis\nWe believe.")

    assert sections == (Section("Hypothesis", "We believe.", 2),)


def test_heading_with_a_label_splits_name_and_text() -> None:
    sections = parse_sections("## Hypothesis: faster checkout sells more\nBecause mobile.")

    assert sections == (Section("Hypothesis", "faster checkout sells more\nBecause mobile.", 2),)


def test_markup_emoji_and_colons_are_stripped_from_headings() -> None:
    description = (
        "## 🎯 Success metric\n1\n"
        "## :bulb: **Hypothesis:**\n2\n"
        "### [Customer problem](https://example.com/research) 🔥\n3\n"
        "#### The *real* problem ::\n4"
    )

    assert headings(parse_sections(description)) == [
        "Success metric",
        "Hypothesis",
        "Customer problem",
        "The real problem",
    ]


def test_long_headings_are_only_trimmed() -> None:
    title = " ".join(["word"] * 60)

    assert headings(parse_sections(f"## {title} :*:\nbody")) == [title]


def test_plural_and_case_are_kept_as_written() -> None:
    sections = parse_sections("SUCCESS METRICS: 5% more\n## customer problems\nslow")

    assert headings(sections) == ["SUCCESS METRICS", "customer problems"]
    assert names_match(sections[0].heading, "Success metric")
    assert names_match(sections[1].heading, "Customer problem")


def test_windows_line_endings() -> None:
    sections = parse_sections("## Hypothesis\r\nWe believe.\r\nSuccess metric: 5%\r\n")

    assert sections == (
        Section("Hypothesis", "We believe.\nSuccess metric: 5%", 2),
        Section("Success metric", "5%", 0),
    )


def test_empty_text_has_no_sections() -> None:
    assert parse_sections("") == ()
    assert parse_sections("\n\n  \n") == ()


# Jira wiki markup


def test_wiki_h2_heading() -> None:
    sections = parse_sections("h2. Hypothesis\nWe believe.\nh2. Success metric", "wiki")

    assert sections == (Section("Hypothesis", "We believe.", 2), Section("Success metric", "", 2))


@pytest.mark.parametrize("level", [1, 2, 3, 4, 5, 6])
def test_wiki_headings_of_any_level(level: int) -> None:
    assert parse_sections(f"h{level}. Hypothesis\nx", "wiki") == (
        Section("Hypothesis", "x", level),
    )


@pytest.mark.parametrize(
    "line", ["*Hypothesis:* We believe.", "*Hypothesis*: We believe.", "Hypothesis: We believe."]
)
def test_wiki_bold_label(line: str) -> None:
    assert parse_sections(line, "wiki") == (Section("Hypothesis", "We believe.", 0),)


@pytest.mark.parametrize("bullet", ["*", "**", "#", "##", "-"])
def test_wiki_list_bullets_are_decoration(bullet: str) -> None:
    sections = parse_sections(f"{bullet} *Success metric:* 5% more", "wiki")

    assert sections == (Section("Success metric", "5% more", 0),)


def test_wiki_code_and_noformat_blocks_are_ignored() -> None:
    description = (
        "h2. Notes\n{code:java}\nh2. Not a heading\nHypothesis: in code\n{code}\n"
        "{noformat}\n{code}\nh3. Still hidden\n{noformat}\nh2. Next"
    )

    assert headings(parse_sections(description, "wiki")) == ["Notes", "Next"]


def test_wiki_colour_and_monospace_are_stripped_from_headings() -> None:
    description = "h2. {color:#0052cc}*Hypothesis*{color}\nx\nh2. {{Success metric}}:\ny"

    assert headings(parse_sections(description, "wiki")) == ["Hypothesis", "Success metric"]


def test_wiki_heading_with_a_label_splits_name_and_text() -> None:
    sections = parse_sections("h3. {color:red}*Hypothesis:*{color} We believe.\nmore", "wiki")

    assert sections == (Section("Hypothesis", "We believe.\nmore", 3),)


def test_markdown_headings_are_text_in_wiki() -> None:
    assert parse_sections("## Hypothesis\nh2.no space\nh7. Nope", "wiki") == ()


# Atlassian Document Format


def test_adf_heading_nodes() -> None:
    sections = parse_description(
        doc(
            heading(2, "Hypothesis"),
            paragraph(text("We believe.")),
            heading(4, "Success metric"),
            {"type": "heading", "content": [text("Customer problem")]},
            paragraph(text("Slow checkout.")),
        )
    )[1]

    assert sections == (
        Section("Hypothesis", "We believe.", 2),
        Section("Success metric", "", 4),
        Section("Customer problem", "Slow checkout.", 1),
    )


def test_adf_strong_label_paragraph() -> None:
    description = doc(
        paragraph(text("Hypothesis:", "strong"), text(" We believe.")),
        paragraph(text("Success metric", "strong"), text(": 5% more")),
        paragraph(text("Customer ", "strong"), text("problem: ", "strong", "em"), text("slow")),
    )

    flat, sections = parse_description(description)

    assert flat == (
        "**Hypothesis:** We believe.\n\n**Success metric**: 5% more\n\n**Customer problem:** slow"
    )
    assert sections == (
        Section("Hypothesis", "We believe.", 0),
        Section("Success metric", "5% more", 0),
        Section("Customer problem", "slow", 0),
    )


def test_adf_flattens_to_markdown_like_text() -> None:
    description = doc(
        heading(1, "Epic"),
        paragraph(
            text("Owner "),
            {"type": "mention", "attrs": {"id": "5b10ac8d", "text": "@Priya"}},
            text(", reviewer "),
            {"type": "mention", "attrs": {"id": "70121:d1"}},
            {"type": "hardBreak"},
            {"type": "emoji", "attrs": {"shortName": ":rocket:", "text": "🚀"}},
            text(" "),
            {"type": "status", "attrs": {"text": "IN PROGRESS"}},
            text(" due "),
            {"type": "date", "attrs": {"timestamp": "1790726400000"}},
            text(" "),
            {"type": "inlineCard", "attrs": {"url": "https://example.com/a"}},
        ),
        {
            "type": "bulletList",
            "content": [
                {"type": "listItem", "content": [paragraph(text("one"))]},
                {
                    "type": "listItem",
                    "content": [
                        paragraph(text("two")),
                        {
                            "type": "orderedList",
                            "attrs": {"order": 3},
                            "content": [
                                {"type": "listItem", "content": [paragraph(text("three"))]},
                                {"type": "listItem", "content": [paragraph(text("four"))]},
                            ],
                        },
                    ],
                },
            ],
        },
        {"type": "codeBlock", "attrs": {"language": "python"}, "content": [text("x = 1")]},
        {"type": "blockquote", "content": [paragraph(text("q1")), paragraph(text("q2"))]},
        {"type": "rule"},
        {"type": "blockCard", "attrs": {"url": "https://example.com/b"}},
        {
            "type": "panel",
            "attrs": {"panelType": "note"},
            "content": [paragraph(text("in a panel"))],
        },
        {"type": "expand", "attrs": {"title": "Details"}, "content": [paragraph(text("hidden"))]},
        {
            "type": "table",
            "content": [
                {
                    "type": "tableRow",
                    "content": [
                        {"type": "tableHeader", "content": [paragraph(text("Metric"))]},
                        {"type": "tableCell", "content": [paragraph(text("Target"))]},
                    ],
                }
            ],
        },
    )

    assert adf_to_text(description) == (
        "# Epic\n\n"
        "Owner @Priya, reviewer @70121:d1\n:rocket: IN PROGRESS due 2026-09-30 https://example.com/a\n\n"
        "- one\n- two\n  3. three\n  4. four\n\n"
        "```python\nx = 1\n```\n\n"
        "> q1\n>\n> q2\n\n"
        "---\n\n"
        "https://example.com/b\n\n"
        "in a panel\n\n"
        "Details\n\nhidden\n\n"
        "Metric\n\nTarget"
    )


def test_adf_ordered_list_may_start_at_zero() -> None:
    item = {"type": "listItem", "content": [paragraph(text("x"))]}

    assert (
        adf_to_text(doc({"type": "orderedList", "attrs": {"order": 0}, "content": [item, item]}))
        == "0. x\n1. x"
    )


def test_adf_task_items_hold_text_directly() -> None:
    description = doc(
        {
            "type": "taskList",
            "content": [
                {"type": "taskItem", "content": [text("Success metric: "), text("5% more")]},
                {"type": "taskItem", "content": [text("Design review")]},
            ],
        }
    )

    flat, sections = parse_description(description)

    assert flat == "- Success metric: 5% more\n- Design review"
    assert sections == (Section("Success metric", "5% more", 0),)


def test_adf_code_block_is_never_a_section() -> None:
    code = "## Hypothesis\nHypothesis: in code\n```\n## Still code"
    description = doc(
        {"type": "codeBlock", "content": [text(code)]},
        heading(2, "After"),
    )

    flat, sections = parse_description(description)

    assert flat.startswith("````\n## Hypothesis")
    assert headings(sections) == ["After"]


def test_adf_placeholder_text_is_not_content() -> None:
    description = doc(
        heading(2, "Hypothesis"),
        paragraph({"type": "placeholder", "attrs": {"text": "We believe <change> will ..."}}),
    )

    assert parse_description(description) == ("## Hypothesis", (Section("Hypothesis", "", 2),))


def test_adf_empty_heading_ends_nothing() -> None:
    description = doc(heading(2, "Hypothesis"), heading(3, "  "), paragraph(text("We believe.")))

    assert parse_description(description)[1] == (Section("Hypothesis", "We believe.", 2),)


def test_adf_quoted_text_is_not_a_section() -> None:
    description = doc(
        {"type": "blockquote", "content": [heading(2, "Hypothesis"), paragraph(text("A: b"))]}
    )

    assert parse_description(description) == ("> ## Hypothesis\n>\n> A: b", ())


def test_adf_malformed_parts_are_skipped() -> None:
    description = {
        "type": "doc",
        "content": [
            "not a node",
            None,
            {"type": "paragraph", "content": "not a list"},
            {"type": ["not", "a", "string"], "content": [paragraph(text("kept"))]},
            {"type": "heading", "attrs": {"level": "two"}, "content": [text("Hypothesis")]},
            {"type": "heading", "attrs": {"level": 9}, "content": [text("Deep")]},
            paragraph({"type": "text", "text": 42}, text("ok"), {"type": "text", "marks": 7}),
            {"type": "mention", "attrs": "broken"},
            {"type": "date", "attrs": {"timestamp": "soon"}},
            {"type": "date", "attrs": {"timestamp": 10**400}},
            {"type": "orderedList", "attrs": {"order": True}, "content": [{"type": "listItem"}]},
            {"type": "unknownBlock", "text": "plain text of an unknown node"},
        ],
    }

    assert adf_to_text(description) == (
        "kept\n\n# Hypothesis\n\n###### Deep\n\nok\n\nsoon\n\nplain text of an unknown node"
    )


def test_adf_deep_nesting_is_cut_off() -> None:
    node: dict[str, Any] = paragraph(text("deep"))
    for _ in range(500):
        node = {"type": "blockquote", "content": [node]}

    assert adf_to_text(doc(paragraph(text("shallow")), node)) == "shallow"


@pytest.mark.parametrize("value", [None, 42, ["a"], b"bytes", 3.5])
def test_adf_to_text_of_something_else_is_empty(value: object) -> None:
    assert adf_to_text(value) == ""


# Descriptions in any format


def test_description_of_nothing_is_empty() -> None:
    assert parse_description(None) == ("", ())
    assert parse_description(12) == ("", ())


def test_description_strings_are_stripped_and_parsed_in_their_markup() -> None:
    assert parse_description("\n  h2. Hypothesis\nx  \n", "wiki") == (
        "h2. Hypothesis\nx",
        (Section("Hypothesis", "x", 2),),
    )
    assert parse_description("  ## Hypothesis\nx\n") == (
        "## Hypothesis\nx",
        (Section("Hypothesis", "x", 2),),
    )


def test_adf_markup_argument_is_ignored() -> None:
    description = doc(heading(2, "Hypothesis"), paragraph(text("x")))

    assert parse_description(description, "wiki") == parse_description(description)


def test_json_in_a_string_stays_text() -> None:
    raw = json.dumps(doc(heading(2, "Hypothesis")))

    assert parse_description(raw) == (raw, ())


# Realistic epics


def test_markdown_epic() -> None:
    flat, sections = parse_description((FIXTURES / "epic.md").read_text(encoding="utf-8"))
    found = by_heading(sections)

    assert flat.startswith("# Faster checkout") and flat.endswith("10:30 sync.")
    assert headings(sections) == [
        "Faster checkout for returning customers",
        "Owner",
        "Customer problem",
        "Hypothesis",
        "Success metrics",
        "Mobile checkout completion",
        "Payment-step drop-off",
        "Scope",
        "Out of scope",
    ]
    assert found["Hypothesis"].body.startswith("We believe that offering saved cards")
    assert found["Success metrics"].body == (
        "- Mobile checkout completion: from 62% to 70% by 2026-09-30\n"
        "- Payment-step drop-off: below 25%"
    )
    assert found["Scope"].body.endswith("not a section\n```")


def test_wiki_epic() -> None:
    flat, sections = parse_description((FIXTURES / "epic.wiki").read_text(encoding="utf-8"), "wiki")
    found = by_heading(sections)

    assert flat.startswith("h1. Self-serve") and flat.endswith("h2. Open questions")
    assert headings(sections) == [
        "Self-serve plan upgrades",
        "Customer problem",
        "Hypothesis",
        "Success metric",
        "Notes",
        "Risk",
        "Open questions",
    ]
    assert found["Customer problem"].body == (
        "Admins on the Team plan cannot upgrade without talking to sales;\n"
        "about 120 requests a month wait two days for an answer."
    )
    assert found["Success metric"].body == (
        "self-serve share of upgrades from 0% to 60% by 2026-12-31"
    )
    assert found["Risk"].body == "invoices for mid-cycle upgrades"
    assert found["Open questions"].body == ""


def test_adf_epic() -> None:
    value = json.loads((FIXTURES / "epic.adf.json").read_text(encoding="utf-8"))

    flat, sections = parse_description(value)
    found = by_heading(sections)

    assert flat.startswith("**Epic owner:** @Priya Raman · status IN DISCOVERY\n\n")
    assert headings(sections) == [
        "Epic owner",
        "Customer problem",
        "Hypothesis",
        "Success metric",
        "Risks",
        "Carrier API limits",
        "Fallback",
        "Out of scope",
    ]
    assert found["Customer problem"].body.startswith("Warehouse leads re-enter")
    assert found["Success metric"].body == (
        "manual edits per delayed shipment from 4.2 to under 1 by 2026-09-30"
    )
    assert found["Risks"].level == 3
    assert "## not a heading" in found["Risks"].body
    assert found["Carrier API limits"].body == "500 calls a minute"
    assert found["Out of scope"].body == ""


# Properties: any input, no exception, well-formed sections

_json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["type", "content", "text", "attrs", "marks", "level", "order"])
            | st.text(max_size=5),
            children,
            max_size=4,
        )
    ),
    max_leaves=30,
)

_ADF_TYPES = [
    "doc",
    "paragraph",
    "heading",
    "text",
    "bulletList",
    "orderedList",
    "listItem",
    "taskList",
    "taskItem",
    "codeBlock",
    "blockquote",
    "panel",
    "expand",
    "table",
    "tableRow",
    "tableCell",
    "hardBreak",
    "mention",
    "emoji",
    "inlineCard",
    "blockCard",
    "status",
    "date",
    "placeholder",
    "rule",
    "mystery",
]
_adf_leaf = st.fixed_dictionaries(
    {"type": st.just("text"), "text": st.text(max_size=30)},
    optional={
        "marks": st.lists(st.fixed_dictionaries({"type": st.sampled_from(["strong", "em"])}))
    },
)
_adf_node = st.recursive(
    _adf_leaf,
    lambda children: st.fixed_dictionaries(
        {"type": st.sampled_from(_ADF_TYPES), "content": st.lists(children, max_size=4)},
        optional={
            "attrs": st.dictionaries(
                st.sampled_from(["level", "order", "text", "id", "url", "timestamp", "title"]),
                st.none() | st.integers() | st.text(max_size=12),
                max_size=3,
            )
        },
    ),
    max_leaves=40,
)
_line_pieces = st.sampled_from(
    [
        "#",
        "## ",
        "h2. ",
        "*",
        "**",
        "_",
        "- ",
        "1. ",
        ":",
        ": ",
        "```",
        "~~~",
        "{code}",
        "{noformat}",
        "===",
        "---",
        "\n",
        "\r\n",
        " ",
        "\t",
        "Hypothesis",
        "🎯",
        ":dart:",
        "http://x",
        "10:30",
    ]
)
_markupish = st.lists(_line_pieces | st.text(max_size=8), max_size=40).map("".join)


def assert_well_formed(sections: tuple[Section, ...]) -> None:
    for section in sections:
        assert section.heading
        assert section.heading == section.heading.strip()
        assert not section.heading.endswith(":")
        assert "\n" not in section.heading
        assert section.body == section.body.strip()
        assert 0 <= section.level <= 6


@given(st.text() | _markupish, st.sampled_from(["markdown", "wiki", "other"]))
def test_any_text_parses_into_well_formed_sections(value: str, markup: str) -> None:
    assert_well_formed(parse_sections(value, markup))


@given(_json_like)
def test_any_json_value_flattens_without_error(value: object) -> None:
    assert isinstance(adf_to_text(value), str)
    flat, sections = parse_description(value)
    assert flat == flat.strip()
    assert_well_formed(sections)


@given(_adf_node)
def test_any_adf_shaped_document_parses_into_well_formed_sections(node: dict[str, Any]) -> None:
    flat, sections = parse_description({"type": "doc", "version": 1, "content": [node]})

    assert flat == flat.strip()
    assert_well_formed(sections)
