"""The SQL inbox behind the webhook endpoints: store first, then hand the delivery to the queue."""

from __future__ import annotations

from datetime import UTC, datetime

from plugin.queue import WorkQueue
from plugin.runtime import Runtime
from plugin.storage import accept_delivery, get_or_create_tenant
from webhooks.events import InboundEvent


class SqlInbox:
    """Stores each delivery once per tenant, then enqueues it; implements ``webhooks.Inbox``."""

    def __init__(self, runtime: Runtime, queue: WorkQueue) -> None:
        self.runtime = runtime
        self.queue = queue

    def accept(self, event: InboundEvent) -> bool:
        """Store the delivery (idempotently) and enqueue it; True if it was new."""
        site = self.runtime.site_for(event.tracker, event.site)
        with self.runtime.database.session() as session:
            tenant = get_or_create_tenant(session, tracker=event.tracker, site=site)
            delivery, new = accept_delivery(
                session, tenant_id=tenant.id, event=event, now=datetime.now(UTC)
            )
            delivery_pk = delivery.id
        # The commit above happened before this line: a lost enqueue (Redis down) delays the
        # work until the sweeper finds the delivery; it never loses it.
        if new and event.needs_work:
            self.queue.submit(delivery_pk)
        return new
