"""Tenants: the tracker sites leanguard serves."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.storage.dialects import upsert_insert
from plugin.storage.models import Tenant


def get_or_create_tenant(session: Session, *, tracker: str, site: str, name: str = "") -> Tenant:
    """Return the tenant for a tracker site, creating it if it is new."""
    # Insert-or-ignore first: two web processes seeing a new site at once both succeed.
    session.execute(
        upsert_insert(session, Tenant)
        .values(tracker=tracker, site=site, name=name, settings={})
        .on_conflict_do_nothing(index_elements=[Tenant.tracker, Tenant.site])
    )
    return session.scalars(
        select(Tenant).where(Tenant.tracker == tracker, Tenant.site == site)
    ).one()
