"""Who may change rules from inside Jira: project admins (or site admins) of the tenant."""

from __future__ import annotations

import logging

from plugin.api.core import ApiError, Principal
from plugin.connect.client import ConnectJiraClient
from plugin.runtime import Runtime
from plugin.storage import Tenant
from plugin.trackers.errors import TrackerError

log = logging.getLogger(__name__)


def ensure_may_change_rules(
    runtime: Runtime, principal: Principal, tenant: Tenant, project: str | None
) -> None:
    """Refuse a rule change by a Connect caller who does not administer the project."""
    if principal.tenant_id is None:
        return  # the admin token holder
    # Any user of a site can get a context token from the issue panel; changing a project's
    # rules takes the same permission as changing the project in Jira.
    client = runtime.client_for(tenant)
    if not isinstance(client, ConnectJiraClient) or not principal.account_id:
        raise ApiError(403, "not_project_admin", "Only Jira project admins can change rules.")
    try:
        allowed = client.can_administer(principal.account_id, project)
    except TrackerError as exc:
        log.warning("connect.permission-check-failed", extra={"error": type(exc).__name__})
        raise ApiError(
            503, "permission_check_failed", "Jira did not answer the permission check; try again."
        ) from exc
    if not allowed:
        where = f"project {project}" if project else "this site"
        raise ApiError(403, "not_project_admin", f"Only admins of {where} can change its rules.")
