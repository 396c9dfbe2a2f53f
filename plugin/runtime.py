"""The running service's parts: settings, database, rules, queue and tracker clients."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from plugin.links import item_path
from plugin.rulesets import RULE_FILE_SUFFIXES, RuleCatalog, describe_problems, load_rules_path
from plugin.settings import Settings
from plugin.storage import Database, Tenant
from plugin.trackers.base import TrackerClient
from plugin.trackers.jira import JiraClient
from plugin.trackers.linear import LinearClient
from rules import RuleSetError, WorkItem
from webhooks.events import InboundEvent

log = logging.getLogger(__name__)

ClientFactory = Callable[[Tenant], TrackerClient | None]
RULES_CHECK_INTERVAL_S = 2.0
"""How often each process looks whether the ``LEANGUARD_RULES`` files changed."""


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
    _rules_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _rules_seen: object = field(default=None, repr=False)
    _rules_checked_at: float = field(default=0.0, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        """Open the database and load the rules named by the settings."""
        runtime = cls(settings=settings, database=Database(settings.effective_database_url()))
        runtime.reload_rules()
        return runtime

    def refresh_rules(self) -> bool:
        """Reload ``LEANGUARD_RULES`` if its files changed since the last look; True if reloaded.

        Every web and worker process calls this as it works (at most every
        ``RULES_CHECK_INTERVAL_S``), so a changed rules file reaches all of them without a
        restart; a broken change is reported and the last good rules keep running.
        """
        if not self.settings.rules:
            return False
        with self._rules_lock:
            now = time.monotonic()
            if now - self._rules_checked_at < RULES_CHECK_INTERVAL_S:
                return False
            self._rules_checked_at = now
            seen = _rules_fingerprint(Path(self.settings.rules))
            if seen == self._rules_seen:
                return False
            self.reload_rules()
            return True

    def reload_rules(self) -> bool:
        """Load ``LEANGUARD_RULES``; on error keep the last good rules and record the problem."""
        if not self.settings.rules:
            return True
        # Taken before reading: a change made while reading is seen by the next refresh.
        self._rules_seen = _rules_fingerprint(Path(self.settings.rules))
        try:
            self.catalog = load_rules_path(Path(self.settings.rules))
        except RuleSetError as exc:
            self.rules_error = describe_problems(exc.problems)
            log.error("rules.load-failed", extra={"problems": [str(p) for p in exc.problems]})
            return False
        self.rules_error = ""
        log.info("rules.loaded", extra={"rulesets": [r.name for r in self.catalog.rulesets]})
        return True

    def site_for(self, event: InboundEvent) -> str:
        """Return the tenant site for a verified delivery: the configured site when there is one."""
        if event.tracker == "jira" and self.settings.jira_url and not event.via_connect:
            # The webhook secret belongs to the configured site; a payload cannot move it.
            return self.settings.jira_url.rstrip("/")
        # A Connect delivery's site is the one its verified JWT's tenant installed from.
        return event.site

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
        if tenant.tracker == "jira" and tenant.client_key and tenant.shared_secret:
            # A Connect installation signs every call with its own app JWT. Imported here:
            # Connect is an edge adapter that itself builds on this module.
            from plugin.connect.client import connect_client

            return connect_client(self.database, settings, tenant)
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

    def details_url(self, item: WorkItem) -> str:
        """Return the link every card uses for an item."""
        return self.settings.base_url.rstrip("/") + item_path(item.tracker, item.key, item.site)


def _rules_fingerprint(path: Path) -> object:
    """What changes when a rules file or folder is edited: names, sizes and modification times."""
    try:
        if path.is_dir():
            return tuple(
                (entry.name, entry.stat().st_mtime_ns, entry.stat().st_size)
                for entry in sorted(path.iterdir())
                if entry.suffix in RULE_FILE_SUFFIXES
            )
        status = path.stat()
    except OSError:
        return None
    return (status.st_mtime_ns, status.st_size)
