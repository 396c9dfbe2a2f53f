"""The Jira client of a Connect tenant: app JWTs on every call, and the issue-view status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from plugin.connect.auth import ConnectJWTAuth
from plugin.connect.errors import ConnectError
from plugin.connect.tenants import connect_details, secret_box
from plugin.settings import Settings
from plugin.storage import Database, Tenant
from plugin.trackers.errors import AuthFailed
from plugin.trackers.jira import JiraClient

# Lozenge types of the issue-context status, per leanguard status.
_LOZENGE_TYPES = {"fail": "removed", "pass": "success"}


class ConnectJiraClient(JiraClient):
    """A Jira Cloud client that also sets the status shown by the issue-context module."""

    def __init__(
        self,
        base_url: str,
        *,
        session: requests.Session,
        status_property: str,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(base_url, session=session, cloud=True, timeout=timeout)
        self.status_property = status_property

    def publish_status(self, key: str, kind: str, value: Mapping[str, Any]) -> None:
        """Store the ``leanguard`` property, then the label Jira shows in the issue view."""
        super().publish_status(key, kind, value)
        if self.status_property:
            self._call(
                "PUT",
                self._path(self.PROPERTY_PATH, key=key, prop=self.status_property),
                json=issue_context_status(value),
            )

    PROJECT_PATH = "rest/api/{v}/project/{project}"
    PERMISSIONS_CHECK_PATH = "rest/api/{v}/permissions/check"

    def can_administer(self, account_id: str, project_key: str | None) -> bool:
        """Tell whether a Jira account administers a project (or the site, for no project)."""
        body: dict[str, Any] = {"accountId": account_id, "globalPermissions": ["ADMINISTER"]}
        project_id: int | None = None
        if project_key is not None:
            project = self._call("GET", self._path(self.PROJECT_PATH, project=project_key))
            raw_id = project.get("id") if isinstance(project, Mapping) else None
            if isinstance(raw_id, str | int) and str(raw_id).isdigit():
                project_id = int(raw_id)
            if project_id is not None:
                body["projectPermissions"] = [
                    {"permissions": ["ADMINISTER_PROJECTS"], "projects": [project_id]}
                ]
        grants = self._call("POST", self._path(self.PERMISSIONS_CHECK_PATH), json=body)
        if not isinstance(grants, Mapping):
            return False
        if "ADMINISTER" in (grants.get("globalPermissions") or []):
            return True
        return project_id is not None and any(
            grant.get("permission") == "ADMINISTER_PROJECTS"
            and project_id in (grant.get("projects") or [])
            for grant in grants.get("projectPermissions") or []
            if isinstance(grant, Mapping)
        )


def issue_context_status(value: Mapping[str, Any]) -> dict[str, Any]:
    """Return the issue-context status property for a ``leanguard`` property value."""
    status = str(value.get("status") or "")
    violations = value.get("violations")
    count = violations if isinstance(violations, int) and not isinstance(violations, bool) else 0
    if status == "fail" and count:
        label = f"{count} to fix"
    elif status == "pass":
        label = "OK"
    else:
        label = status or "unknown"
    return {
        "type": "lozenge",
        "value": {"label": label, "type": _LOZENGE_TYPES.get(status, "default")},
    }


def connect_client(database: Database, settings: Settings, tenant: Tenant) -> JiraClient | None:
    """Build the client of an installed Connect tenant; None when its install lacks an app key."""
    details = connect_details(tenant)
    app_key = details.get("app_key")
    if not tenant.client_key or not isinstance(app_key, str) or not app_key:
        return None
    box = secret_box(settings)
    tenant_id, client_key = tenant.id, tenant.client_key

    def current_secret() -> str:
        # Clients are cached per process; reading the secret per request means a reinstall
        # (new secret) or an uninstall in another process takes effect on the next call.
        with database.session() as session:
            row = session.get(Tenant, tenant_id)
            if row is None or row.client_key != client_key or not row.enabled:
                raise AuthFailed(f"the Connect installation {client_key} is disabled or gone")
            sealed = row.shared_secret or ""
        try:
            return box.open(sealed, client_key=client_key)
        except ConnectError as exc:
            raise AuthFailed(exc.message) from exc

    session = requests.Session()
    session.auth = ConnectJWTAuth(app_key=app_key, base_url=tenant.site, secret=current_secret)
    status_property = details.get("status_property")
    return ConnectJiraClient(
        tenant.site,
        session=session,
        status_property=status_property if isinstance(status_property, str) else "",
    )
