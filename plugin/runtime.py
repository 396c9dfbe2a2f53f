"""The running service's parts: settings, database, rules, queue and tracker clients."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from plugin.rulesets import RuleCatalog, describe_problems, load_rules_path
from plugin.settings import Settings
from plugin.storage import Database, Tenant
from plugin.trackers.base import TrackerClient
from plugin.trackers.jira import JiraClient
from plugin.trackers.linear import LinearClient
from rules import RuleSetError

log = logging.getLogger(__name__)

ClientFactory = Callable[[Tenant], TrackerClient | None]


def same_site(a: str, b: str) -> bool:
    """Tell whether two Jira base URLs name the same site (scheme, host and context path)."""
    left, right = urlsplit(a.rstrip("/")), urlsplit(b.rstrip("/"))
    return (left.netloc.lower(), left.path) == (right.netloc.lower(), right.path)


@dataclass
class Runtime:
    """What views and jobs need, built once per process from :class:`Settings`."""

    settings: Settings
    database: Database
    catalog: RuleCatalog = field(default_factory=RuleCatalog)
    rules_error: str = ""
    """Why the rules file could not be loaded, shown on the home page; the last good set runs."""
    client_factory: ClientFactory | None = None
    _clients: dict[int, TrackerClient] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        """Open the database and load the rules named by the settings."""
        runtime = cls(settings=settings, database=Database(settings.effective_database_url()))
        runtime.reload_rules()
        return runtime

    def reload_rules(self) -> bool:
        """Load ``LEANGUARD_RULES``; on error keep the last good rules and record the problem."""
        if not self.settings.rules:
            return True
        try:
            self.catalog = load_rules_path(Path(self.settings.rules))
        except RuleSetError as exc:
            self.rules_error = describe_problems(exc.problems)
            log.error("rules.load-failed", extra={"problems": [str(p) for p in exc.problems]})
            return False
        self.rules_error = ""
        log.info("rules.loaded", extra={"rulesets": [r.name for r in self.catalog.rulesets]})
        return True

    def site_for(self, tracker: str, event_site: str) -> str:
        """Return the tenant site for a verified delivery: the configured site when there is one."""
        if tracker == "jira" and self.settings.jira_url:
            # The webhook secret belongs to the configured site; a payload cannot move it.
            return self.settings.jira_url.rstrip("/")
        return event_site

    def client_for(self, tenant: Tenant) -> TrackerClient | None:
        """Return the API client for a tenant, or None when no credentials are configured."""
        if self.client_factory is not None:
            return self.client_factory(tenant)
        with self._lock:
            client = self._clients.get(tenant.id)
            if client is None:
                client = self._build_client(tenant)
                if client is not None:
                    self._clients[tenant.id] = client
            return client

    def _build_client(self, tenant: Tenant) -> TrackerClient | None:
        settings = self.settings
        if tenant.tracker == "jira":
            if not settings.jira_url or not settings.jira_api_token:
                return None
            if not same_site(settings.jira_url, tenant.site):
                return None
            return JiraClient(
                settings.jira_url,
                email=settings.jira_email or None,
                api_token=settings.jira_api_token,
            )
        if tenant.tracker == "linear" and settings.linear_api_key:
            return LinearClient(settings.linear_api_key, api_url=settings.linear_api_url)
        return None

    def details_url(self, tracker: str, key: str) -> str:
        """Return the link every card and report uses for an item."""
        return f"{self.settings.base_url.rstrip('/')}/items/{tracker}/{key}"
