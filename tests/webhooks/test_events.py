"""Inbound events: the body as JSON text, and the stored form the inbox writes."""

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


def event(payload: dict[str, Any], payload_text: str | None) -> InboundEvent:
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
        payload_text=payload_text,
    )


class TestLoadObject:
    def test_utf8_json_comes_back_parsed_and_as_the_text_received(self) -> None:
        body = json.dumps(PAYLOAD, ensure_ascii=False, indent=1).encode()

        payload, text = load_object(body)

        assert payload == PAYLOAD
        assert text == body.decode()

    def test_a_byte_order_mark_is_dropped_from_the_text(self) -> None:
        body = "\ufeff".encode() + json.dumps(PAYLOAD).encode()

        payload, text = load_object(body)

        assert payload == PAYLOAD
        assert text == json.dumps(PAYLOAD)

    def test_utf16_json_is_parsed_without_a_text(self) -> None:
        payload, text = load_object(json.dumps(PAYLOAD).encode("utf-16"))

        assert payload == PAYLOAD
        assert text is None

    @pytest.mark.parametrize(
        "body",
        [b"", b"{", b"[1, 2]", b'{"a": NaN}', b"\xff\xfe\x00", "\ufeff[]".encode()],
        ids=["empty", "truncated", "array", "nan", "bad bytes", "bom array"],
    )
    def test_anything_but_a_json_object_is_refused(self, body: bytes) -> None:
        with pytest.raises(BadPayload):
            load_object(body)


class TestStoredForm:
    def test_the_received_text_is_spliced_in_as_the_payload(self) -> None:
        text = json.dumps(PAYLOAD, ensure_ascii=False, separators=(",", ":"))

        stored = event(PAYLOAD, text).to_json()

        assert text in stored
        assert json.loads(stored) == event(PAYLOAD, None).to_dict()

    def test_without_the_text_the_payload_is_encoded(self) -> None:
        stored = event(PAYLOAD, None).to_json()

        assert json.loads(stored) == event(PAYLOAD, None).to_dict()

    def test_the_stored_form_rebuilds_the_event(self) -> None:
        original = event(PAYLOAD, json.dumps(PAYLOAD))

        assert InboundEvent.from_dict(json.loads(original.to_json())) == original


scalars = st.none() | st.booleans() | st.integers() | st.text()
json_values = st.recursive(
    scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6), st.booleans())
def test_any_object_body_stores_the_document_it_parsed_to(
    payload: dict[str, Any], ascii_only: bool
) -> None:
    body = json.dumps(payload, ensure_ascii=ascii_only).encode()
    parsed, text = load_object(body)

    stored = json.loads(event(parsed, text).to_json())

    assert stored == event(parsed, None).to_dict()
