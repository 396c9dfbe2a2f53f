"""The one interface jobs use to write back to a tracker, whichever tracker it is."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from plugin.cards import BOT_NAME, Card

STATUS_PROPERTY_KEY = "leanguard"
"""The Jira issue property that holds :func:`plugin.cards.status_property`."""
CARD_MARKER = f"Checked by {BOT_NAME}"
"""The start of every card's footer (``plugin.cards.FOOTER_TEXT``): how a card is recognised."""


class TrackerClient(ABC):
    """Reads items from, and writes cards, labels and status to, one tracker site."""

    # ``kind`` is "issue" or "project" (Linear projects; Jira items are always issues). Every
    # method raises plugin.trackers.errors.TrackerError subclasses, so jobs can tell a retry
    # (``retryable``) from a dead end without knowing which tracker they talk to.

    tracker: ClassVar[str]

    @abstractmethod
    def identity(self) -> str:
        """Return the bot's own account id, cached after the first call."""

    @abstractmethod
    def fetch_item(self, key: str, kind: str) -> Mapping[str, Any] | None:
        """Return the raw tracker JSON of an item for the mappers; None when it no longer exists."""

    @abstractmethod
    def post_card(self, key: str, kind: str, card: Card) -> str:
        """Post the card as a new comment and return the comment's id."""

    @abstractmethod
    def find_card(self, key: str, kind: str) -> str | None:
        """Return the id of a card the bot already posted on the item (its oldest), if any.

        A card is a comment written by the bot's own account (:meth:`identity`) whose text
        holds :data:`CARD_MARKER`. Jobs ask when an earlier attempt may have posted the card
        without living to store its id, so a retry adopts that comment instead of posting a
        second one.
        """

    @abstractmethod
    def edit_card(self, key: str, kind: str, comment_id: str, card: Card) -> None:
        """Replace the card's comment; raise ``NotFound`` when a human deleted it."""

    @abstractmethod
    def delete_card(self, key: str, kind: str, comment_id: str) -> None:
        """Delete the card's comment; a comment that is already gone counts as deleted."""

    @abstractmethod
    def publish_status(self, key: str, kind: str, value: Mapping[str, Any]) -> None:
        """Store the machine-readable status on the item, where the tracker supports it."""

    @abstractmethod
    def set_label(self, key: str, kind: str, label: str, present: bool) -> None:
        """Add (``present``) or remove a label on the item."""
