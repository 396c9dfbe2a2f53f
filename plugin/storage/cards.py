"""Cards: the one warning comment per work item, and whether its label is on."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from plugin.storage.dialects import upsert_insert
from plugin.storage.models import CardRow

CARD_POSTING = "posting"
"""The content hash of a card whose comment is being posted: the tracker may hold the comment
while its id is not stored yet, so whoever finds this looks for the comment before posting."""


def get_card(session: Session, *, work_item_id: int) -> CardRow | None:
    """Return the item's card, if one was ever saved."""
    return session.scalars(select(CardRow).where(CardRow.work_item_id == work_item_id)).first()


def save_card(
    session: Session,
    *,
    work_item_id: int,
    comment_id: str | None,
    content_hash: str,
    state: str,
    label_applied: bool,
    now: datetime,
) -> CardRow:
    """Create or replace the item's card."""
    changes = {
        "comment_id": comment_id,
        "content_hash": content_hash,
        "state": state,
        "label_applied": label_applied,
        "updated_at": now,
    }
    insert = upsert_insert(session, CardRow)
    # One statement whichever way it goes, so two workers saving the same card cannot both
    # insert; created_at keeps the first save's time.
    return session.scalars(
        insert.values(work_item_id=work_item_id, created_at=now, **changes)
        .on_conflict_do_update(index_elements=[CardRow.work_item_id], set_=changes)
        .returning(CardRow),
        execution_options={"populate_existing": True},
    ).one()


def forget_card(session: Session, *, work_item_id: int) -> None:
    """Remove the item's card row (a post the tracker refused leaves nothing to remember)."""
    session.execute(delete(CardRow).where(CardRow.work_item_id == work_item_id))
