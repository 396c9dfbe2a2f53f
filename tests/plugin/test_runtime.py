"""Which tenant a verified delivery belongs to."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin.runtime import Runtime
from plugin.settings import Settings
from webhooks.events import InboundEvent

CONFIGURED = "https://acme.atlassian.net"
CONNECT_SITE = "https://globex.atlassian.net"


def event(site: str, *, via_connect: bool = False, tracker: str = "jira") -> InboundEvent:
    return InboundEvent(
        tracker=tracker,
        site=site,
        delivery_id="d-1",
        event_type="jira:issue_updated",
        needs_work=True,
        refs=(),
        actor_id=None,
        changes=(),
        occurred_at=None,
        payload={},
        via_connect=via_connect,
    )


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", jira_url=CONFIGURED + "/")
    return Runtime.from_settings(settings)


def test_a_signed_admin_webhook_belongs_to_the_configured_site(runtime: Runtime) -> None:
    # The HMAC secret belongs to the configured site: the body cannot name another tenant.
    assert runtime.site_for(event(CONNECT_SITE)) == CONFIGURED
    assert runtime.site_for(event("")) == CONFIGURED


def test_a_connect_webhook_belongs_to_its_verified_tenant(runtime: Runtime) -> None:
    assert runtime.site_for(event(CONNECT_SITE, via_connect=True)) == CONNECT_SITE


def test_linear_deliveries_keep_their_organisation(runtime: Runtime) -> None:
    assert runtime.site_for(event("org-42", tracker="linear")) == "org-42"


def test_the_connect_flag_survives_storage(runtime: Runtime) -> None:
    stored = InboundEvent.from_dict(event(CONNECT_SITE, via_connect=True).to_dict())
    assert stored.via_connect is True
    assert (
        InboundEvent.from_dict({**event("x").to_dict(), "via_connect": None}).via_connect is False
    )
