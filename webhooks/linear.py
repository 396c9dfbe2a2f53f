"""Turn a Linear webhook delivery into an :class:`InboundEvent`."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from webhooks.errors import BadPayload, StaleDelivery
from webhooks.events import (
    Change,
    InboundEvent,
    ItemRef,
    RequestHeaders,
    as_text,
    delivery_id_from,
    load_object,
    non_empty_str,
    utc_from_iso,
    utc_from_millis,
)

TRACKER = "linear"
DELIVERY_HEADER = "Linear-Delivery"

# Resource types whose own fields are checked, and the kind of item each one is.
ITEM_KINDS: dict[str, str] = {"Issue": "issue", "Project": "project"}

# Ids end up in GraphQL variables and links; Linear ids are UUIDs, so a narrow alphabet is safe.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def parse_linear_delivery(
    body: bytes,
    headers: RequestHeaders,
    *,
    now: Callable[[], float] = time.time,
    tolerance_s: float = 60.0,
) -> InboundEvent:
    """Parse a verified Linear delivery; raise :class:`StaleDelivery` or :class:`BadPayload`."""
    payload, payload_json = load_object(body)
    sent_at_ms = _check_fresh(payload.get("webhookTimestamp"), now() * 1000, tolerance_s)

    resource = non_empty_str(payload.get("type"))
    if resource is None:
        raise BadPayload("The body has no type string.")
    action = non_empty_str(payload.get("action"))
    if action is None:
        raise BadPayload("The body has no action string.")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise BadPayload("The body has no data object.")
    updated_from = payload.get("updatedFrom")
    if updated_from is not None and not isinstance(updated_from, dict):
        raise BadPayload("The updatedFrom value is not an object.")

    refs: tuple[ItemRef, ...] = ()
    if resource in ITEM_KINDS:
        item_id = _id(data.get("id"))
        if item_id is None:
            raise BadPayload(f"The {resource} event has no data.id (a Linear id).")
        refs = (ItemRef(TRACKER, item_id, ITEM_KINDS[resource], deleted=action == "remove"),)
    elif resource == "CustomerNeed":
        refs = _customer_need_refs(data, updated_from or {})

    content_key = "|".join(
        [resource, _text_or_empty(data.get("id")), action, _text_or_empty(data.get("updatedAt"))]
    )
    return InboundEvent(
        tracker=TRACKER,
        site=non_empty_str(payload.get("organizationId")) or "",
        delivery_id=delivery_id_from(headers, DELIVERY_HEADER, content_key.encode("utf-8")),
        event_type=f"{resource}.{action}",
        # Comments and other resources never change a result; they are stored only.
        needs_work=bool(refs),
        refs=refs,
        actor_id=_actor_id(payload, resource, data),
        changes=tuple(
            Change(name, as_text(before), as_text(data.get(name)))
            for name, before in (updated_from or {}).items()
        ),
        # Prefer the event's own time: webhookTimestamp is when this attempt was sent,
        # so a retry of an old event would otherwise look newer than later events.
        occurred_at=utc_from_iso(payload.get("createdAt")) or utc_from_millis(sent_at_ms),
        payload=payload,
        payload_json=payload_json,
    )


def _check_fresh(value: Any, now_ms: float, tolerance_s: float) -> float:
    """Return the signed send time in ms, or raise if it is outside the replay window."""
    # The timestamp is inside the signed body, so checking it bounds how long a captured
    # delivery can be replayed. Booleans are ints in Python but not timestamps.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StaleDelivery("The body has no numeric webhookTimestamp.")
    try:
        skew_s = (now_ms - value) / 1000
    except OverflowError as exc:
        raise StaleDelivery("The webhookTimestamp is not a usable time.") from exc
    if not math.isfinite(skew_s):
        raise StaleDelivery("The webhookTimestamp is not a usable time.")
    if skew_s > tolerance_s:
        raise StaleDelivery(
            f"The delivery was sent {skew_s:.0f} s ago; the limit is {tolerance_s:.0f} s."
        )
    if -skew_s > tolerance_s:
        raise StaleDelivery(
            f"The delivery is dated {-skew_s:.0f} s in the future; the limit is "
            f"{tolerance_s:.0f} s."
        )
    return float(value)


def _customer_need_refs(
    data: Mapping[str, Any], updated_from: Mapping[str, Any]
) -> tuple[ItemRef, ...]:
    # A customer need counts as the customer problem of the issue or project it is
    # linked to, so re-check that item, and the one it was moved away from.
    refs: list[ItemRef] = []
    for source in (data, updated_from):
        for field, kind in (("issueId", "issue"), ("projectId", "project")):
            item_id = _id(source.get(field))
            if item_id is not None and (ref := ItemRef(TRACKER, item_id, kind)) not in refs:
                refs.append(ref)
    return tuple(refs)


def _actor_id(payload: Mapping[str, Any], resource: str, data: Mapping[str, Any]) -> str | None:
    actor = payload.get("actor")
    if isinstance(actor, dict) and (actor_id := non_empty_str(actor.get("id"))):
        return actor_id
    if resource == "Comment":
        # Older payloads have no actor; a comment's author is the one who acted.
        return non_empty_str(data.get("userId")) or non_empty_str(data.get("creatorId"))
    return None


def _id(value: Any) -> str | None:
    return value if isinstance(value, str) and _ID.fullmatch(value) else None


def _text_or_empty(value: Any) -> str:
    return as_text(value) or ""
