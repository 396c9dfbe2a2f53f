"""The link to an item's details page that cards, reports and pages give."""

from __future__ import annotations

from urllib.parse import urlencode


def item_path(tracker: str, key: str, site: str = "") -> str:
    """Return the path of an item's details page; with ``site``, of that site's item only."""
    path = f"/items/{tracker}/{key}"
    # Many sites can have an item of one key (KAN-1 is the first issue of every new Jira Cloud
    # site), so a link that knows the item's site names it.
    return f"{path}?{urlencode({'site': site})}" if site else path
