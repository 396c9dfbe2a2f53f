"""The tracker-neutral event a verified delivery becomes, and helpers the parsers share."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from webhooks.errors import BadPayload


@dataclass(frozen=True, slots=True)
class ItemRef:
    """An item a delivery asks to (re)check."""

    tracker: str
    key: str
    kind: str = "issue"
    deleted: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {
            "tracker": self.tracker,
            "key": self.key,
            "kind": self.kind,
            "deleted": self.deleted,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ItemRef:
        """Rebuild a reference from :meth:`to_dict` output."""
        return cls(
            tracker=data["tracker"],
            key=data["key"],
            kind=data.get("kind", "issue"),
            deleted=bool(data.get("deleted", False)),
        )


@dataclass(frozen=True, slots=True)
class Change:
    """One field a delivery reports as changed, with its values as text."""

    field: str
    before: str | None
    after: str | None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {"field": self.field, "before": self.before, "after": self.after}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Change:
        """Rebuild a change from :meth:`to_dict` output."""
        return cls(field=data["field"], before=data.get("before"), after=data.get("after"))


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """A verified, parsed delivery from Jira or Linear."""

    tracker: str
    site: str
    delivery_id: str
    event_type: str
    needs_work: bool
    refs: tuple[ItemRef, ...]
    actor_id: str | None
    changes: tuple[Change, ...]
    occurred_at: datetime | None
    # The parsed body is a dict and so not hashable; leave it out of the hash.
    payload: Mapping[str, Any] = field(hash=False)
    via_connect: bool = False
    """Authenticated by an Atlassian Connect JWT: ``site`` is then the verified tenant's."""
    payload_json: bytes | None = field(default=None, compare=False, repr=False)
    """The payload as it was received, when that was UTF-8 JSON."""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict, payload included, for storage and job arguments."""
        return {**self._header(), "payload": dict(self.payload)}

    def to_json(self) -> bytes:
        """Return :meth:`to_dict` as UTF-8 JSON, the form the inbox stores."""
        if self.payload_json is None:
            return json.dumps(self.to_dict()).encode()
        # The received body parsed as a JSON object, so splicing it in gives the document that
        # encoding the parsed payload would, without encoding a large body once more. Kept as
        # bytes all the way to the database: a body with any character beyond Latin-1 makes a
        # Python string that costs more to decode and encode again than anything else stored.
        # The header holds only strings, booleans and lists of them, all within orjson's reach.
        return b"".join(
            (orjson.dumps(self._header())[:-1], b',"payload":', self.payload_json, b"}")
        )

    def _header(self) -> dict[str, Any]:
        return {
            "tracker": self.tracker,
            "site": self.site,
            "delivery_id": self.delivery_id,
            "event_type": self.event_type,
            "needs_work": self.needs_work,
            "refs": [ref.to_dict() for ref in self.refs],
            "actor_id": self.actor_id,
            "changes": [change.to_dict() for change in self.changes],
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
            "via_connect": self.via_connect,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InboundEvent:
        """Rebuild an event from :meth:`to_dict` output."""
        occurred_at = data.get("occurred_at")
        return cls(
            tracker=data["tracker"],
            site=data.get("site", ""),
            delivery_id=data["delivery_id"],
            event_type=data["event_type"],
            needs_work=bool(data["needs_work"]),
            refs=tuple(ItemRef.from_dict(ref) for ref in data.get("refs", ())),
            actor_id=data.get("actor_id"),
            changes=tuple(Change.from_dict(change) for change in data.get("changes", ())),
            occurred_at=datetime.fromisoformat(occurred_at) if occurred_at else None,
            payload=dict(data.get("payload", {})),
            via_connect=bool(data.get("via_connect", False)),
        )


# Helpers shared by the Jira and Linear parsers.

# Delivery ids are part of the storage key; bound them so a column can hold them.
MAX_DELIVERY_ID_LENGTH = 255


def _reject_constant(name: str) -> float:
    # NaN and Infinity are not JSON; accepting them would make the stored payload
    # impossible to serialise again (to_dict, JSON columns).
    raise ValueError(f"{name} is not valid JSON")


def load_object(body: bytes) -> tuple[dict[str, Any], bytes | None]:
    """Decode a JSON object body; return it and its UTF-8 JSON, or raise :class:`BadPayload`.

    The UTF-8 JSON is the body itself, or the body without its byte order mark; None when the
    body came in another encoding.
    """
    try:
        # orjson parses a webhook's UTF-8 JSON in well under half the time json does, and the
        # parse is a large part of what a webhook costs the web process. What it refuses goes
        # to json, which decides: orjson also refuses valid JSON that json reads (a byte order
        # mark, UTF-16). It reads integers beyond 64 bits as floats, which no tracker sends
        # and which the stored document keeps exactly: the inbox stores the body received.
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _load_object_slowly(body)
    if not isinstance(value, dict):
        raise BadPayload("The body is not a JSON object.")
    # orjson read the body, so it is valid UTF-8.
    return value, body


def _load_object_slowly(body: bytes) -> tuple[dict[str, Any], bytes | None]:
    """Decode what orjson refused with json, which reads every encoding JSON allows."""
    text: str | None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        # JSON may also come as UTF-16 or UTF-32, which json.loads detects from the bytes.
        text = None
    try:
        value = json.loads(body if text is None else text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        if text is None or not text.startswith("\ufeff"):
            # ValueError covers bad JSON and bad UTF-8; RecursionError covers absurd nesting.
            raise BadPayload("The body is not valid JSON.") from exc
        # A byte order mark before UTF-8 JSON: json.loads takes it from bytes only.
        return _load_object_slowly(body[3:])
    if not isinstance(value, dict):
        raise BadPayload("The body is not a JSON object.")
    return value, None if text is None else body


class RequestHeaders(Protocol):
    """A request's headers: werkzeug's (names matched in any case) or a plain mapping."""

    def get(self, key: str, /) -> str | None:
        """Return the value of header ``key``, or None."""
        ...

    def items(self) -> Iterable[tuple[str, str]]:
        """Return every header as a (name, value) pair."""
        ...


def header_value(headers: RequestHeaders, name: str) -> str | None:
    """Return a header's stripped value, matching the name case-insensitively."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    if value is None:
        return None
    return value.strip() or None


def delivery_id_from(headers: RequestHeaders, name: str, content: bytes) -> str:
    """Return the sender's delivery id from header ``name``, else a hash of ``content``."""
    value = header_value(headers, name)
    if value is None:
        return content_key(content)
    if len(value) > MAX_DELIVERY_ID_LENGTH:
        raise BadPayload(f"The {name} header is longer than {MAX_DELIVERY_ID_LENGTH} characters.")
    return value


def content_key(content: bytes) -> str:
    """Return the ``sha256:<hex>`` key used when the sender gives no delivery id."""
    return "sha256:" + hashlib.sha256(content).hexdigest()


def as_text(value: Any) -> str | None:
    """Render a payload value as text: scalars with ``str``, anything else as JSON."""
    if value is None:
        return None
    if isinstance(value, str | int | float | bool):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def non_empty_str(value: Any) -> str | None:
    """Return ``value`` if it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def utc_from_millis(value: Any) -> datetime | None:
    """Convert epoch milliseconds (a number or a numeric string) to UTC, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    try:
        seconds = value / 1000
        if not math.isfinite(seconds):
            return None
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        # Out of the platform's range: a value no real delivery carries.
        return None


def utc_from_iso(value: Any) -> datetime | None:
    """Parse an ISO 8601 timestamp (``Z`` allowed) to UTC, else None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        # Trackers send UTC; a naive value carries no offset to honour.
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        # An offset that pushes the year out of range: not a real event time.
        return None
