"""The SQL inbox behind the webhook endpoints: store first, then hand the delivery to the queue."""

from __future__ import annotations

from plugin.queue import WorkQueue
from plugin.runtime import Runtime
from plugin.storage import get_or_create_tenant
from plugin.storage.deliveries import NewDelivery
from plugin.storage.delivery_writer import DeliveryWriter
from webhooks.events import InboundEvent


class SqlInbox:
    """Stores each delivery once per tenant, then enqueues it; implements ``webhooks.Inbox``."""

    def __init__(self, runtime: Runtime, queue: WorkQueue) -> None:
        self.runtime = runtime
        self.queue = queue
        self.writer = DeliveryWriter(runtime.database)
        # Tenants are created once and never renumbered; remembering their ids saves two
        # statements on every webhook.
        self._tenant_ids: dict[tuple[str, str], int] = {}

    def accept(self, event: InboundEvent) -> bool:
        """Store the delivery (idempotently) and enqueue it; True if it was new."""
        site = self.runtime.site_for(event)
        tenant_id = self._tenant_ids.get((event.tracker, site))
        if tenant_id is None:
            with self.runtime.database.session() as session:
                tenant_id = get_or_create_tenant(session, tracker=event.tracker, site=site).id
            # Remembered only once committed: another thread using the id of a tenant row
            # that is not committed yet would break the deliveries' foreign key (and get a 503).
            self._tenant_ids[(event.tracker, site)] = tenant_id
        delivery_pk, new = self.writer.store(NewDelivery(tenant_id, event))
        # The delivery is committed by now: a lost enqueue (Redis down) delays the
        # work until the sweeper finds the delivery; it never loses it.
        if new and event.needs_work:
            self.queue.submit(delivery_pk)
        return new
