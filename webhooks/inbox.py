"""Where the views hand a verified delivery: the durable store in front of the queue."""

from __future__ import annotations

from typing import Protocol

from webhooks.events import InboundEvent


class Inbox(Protocol):
    """Durable store of deliveries; ``accept`` raises when it cannot store, so senders retry."""

    def accept(self, event: InboundEvent) -> bool:
        """Store ``event`` once per (tracker, site, delivery_id), queue it; True if new."""
        ...
