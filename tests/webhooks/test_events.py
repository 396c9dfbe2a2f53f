"""Inbound events: the body as received JSON, and the stored form the inbox writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhooks.errors import BadPayload
from webhooks.events import InboundEvent, ItemRef, load_object

PAYLOAD: dict[str, Any] = {
    "webhookEvent": "jira:issue_updated",
    "issue": {"key": "PROD-7", "fields": {"summary": "Sprachsuche für Händler ✓"}},
    "timestamp": 1767225600000,
}


def event(payload: dict[str, Any], payload_json: bytes | None) -> InboundEvent:
    return InboundEvent(
        tracker="jira",
        site="https://acme.atlassian.net",
        delivery_id="d-1",
        event_type="jira:issue_updated",
        needs_work=True,
        refs=(ItemRef("jira", "PROD-7"),),
        actor_id="557058:abc",
        changes=(),
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        payload=payload,
        payload_json=payload_json,
    )


class TestLoadObject:
    def test_utf8_json_comes_back_parsed_and_as_received(self) -> None:
        body = json.dumps(PAYLOAD, ensure_ascii=False, indent=1).encode()

        payload, received = load_object(body)

        assert payload == PAYLOAD
        assert received == body

    def test_a_byte_order_mark_is_dropped_from_the_received_json(self) -> None:
        body = "\ufeff".encode() + json.dumps(PAYLOAD).encode()

        payload, received = load_object(body)

        assert payload == PAYLOAD
        assert received == json.dumps(PAYLOAD).encode()

    def test_utf16_json_is_parsed_without_the_received_json(self) -> None:
        payload, received = load_object(json.dumps(PAYLOAD).encode("utf-16"))

        assert payload == PAYLOAD
        assert received is None

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            (b'{"text": "\\ud800"}', {"text": "\ud800"}),
            (b'{"a": 1, "a": 2}', {"a": 2}),
        ],
        ids=["lone surrogate escape", "repeated name"],
    )
    def test_valid_json_is_read_as_the_json_module_reads_it(
        self, body: bytes, expected: dict[str, Any]
    ) -> None:
        payload, received = load_object(body)

        assert payload == expected == json.loads(body)
        assert received == body

    def test_an_integer_beyond_64_bits_is_stored_exactly_as_received(self) -> None:
        # The parsed copy holds it as a float (orjson); no tracker sends such numbers, and
        # the stored document is the body received.
        body = b'{"id": 123456789012345678901234567890}'
        payload, received = load_object(body)

        stored = json.loads(event(payload, received).to_json())

        assert stored["payload"] == {"id": 123456789012345678901234567890}

    @pytest.mark.parametrize(
        "body",
        [b"", b"{", b"[1, 2]", b'{"a": NaN}', b"\xff\xfe\x00", "\ufeff[]".encode()],
        ids=["empty", "truncated", "array", "nan", "bad bytes", "bom array"],
    )
    def test_anything_but_a_json_object_is_refused(self, body: bytes) -> None:
        with pytest.raises(BadPayload):
            load_object(body)


class TestStoredForm:
    def test_the_received_json_is_spliced_in_as_the_payload(self) -> None:
        received = json.dumps(PAYLOAD, ensure_ascii=False, separators=(",", ":")).encode()

        stored = event(PAYLOAD, received).to_json()

        assert received in stored
        assert json.loads(stored) == event(PAYLOAD, None).to_dict()

    def test_without_the_received_json_the_payload_is_encoded(self) -> None:
        stored = event(PAYLOAD, None).to_json()

        assert json.loads(stored) == event(PAYLOAD, None).to_dict()

    def test_the_stored_form_rebuilds_the_event(self) -> None:
        original = event(PAYLOAD, json.dumps(PAYLOAD).encode())

        assert InboundEvent.from_dict(json.loads(original.to_json())) == original


def json_values(integers: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    """Any JSON value, with integers drawn from ``integers``."""
    scalars = st.none() | st.booleans() | integers | st.text()
    return st.recursive(
        scalars | st.floats(allow_nan=False, allow_infinity=False),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=20,
    )


any_json = json_values(st.integers())
json_in_64_bits = json_values(st.integers(min_value=-(2**63), max_value=2**64 - 1))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8), any_json, max_size=6), st.booleans())
def test_any_object_body_is_stored_as_the_document_received(
    payload: dict[str, Any], ascii_only: bool
) -> None:
    body = json.dumps(payload, ensure_ascii=ascii_only).encode()
    parsed, received = load_object(body)

    stored = json.loads(event(parsed, received).to_json())

    assert stored == {**event(parsed, None).to_dict(), "payload": json.loads(body)}


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_in_64_bits, max_size=6), st.booleans())
def test_any_object_body_parses_to_what_the_json_module_gives(
    payload: dict[str, Any], ascii_only: bool
) -> None:
    body = json.dumps(payload, ensure_ascii=ascii_only).encode()

    parsed, _ = load_object(body)

    assert parsed == json.loads(body)
