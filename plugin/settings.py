"""Settings from ``LEANGUARD_*`` environment variables, with the defaults the design names."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

log = logging.getLogger(__name__)

SECRET_FIELDS = frozenset(
    {
        "secret_key",
        "jira_api_token",
        "jira_webhook_secret",
        "linear_api_key",
        "linear_webhook_secret",
        "admin_token",
    }
)


class SettingsError(ValueError):
    """A setting with a value that cannot work."""


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment."""

    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = ""
    redis_url: str = ""
    base_url: str = "http://127.0.0.1:8080"
    secret_key: str = field(default="", repr=False)
    rules: str = ""
    jira_url: str = ""
    jira_email: str = ""
    jira_api_token: str = field(default="", repr=False)
    jira_webhook_secret: str = field(default="", repr=False)
    linear_api_key: str = field(default="", repr=False)
    linear_api_url: str = "https://api.linear.app/graphql"
    linear_webhook_secret: str = field(default="", repr=False)
    connect_install_keys_url: str = "https://connect-install-keys.atlassian.com"
    connect_allowed_hosts: str = "*.atlassian.net,*.jira.com"
    admin_token: str = field(default="", repr=False)
    instance_path: str = "instance"
    card_label: str = ""
    """A label put on failing items (empty: no label)."""
    resolved_card: str = "edit"
    """What happens to a card when its item passes: ``edit`` (to a resolved state) or ``delete``."""
    max_attempts: int = 8
    job_timeout_s: int = 120
    lease_s: int = 300
    """How long a worker's claim on a delivery lasts; a worker that dies loses it after this."""
    sweep_interval_s: int = 10
    """How often each rq worker's sweeper re-enqueues deliveries that lost their job."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``LEANGUARD_<NAME>`` for every field; unknown variables are ignored."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for spec in fields(cls):
            raw = env.get(f"LEANGUARD_{spec.name.upper()}")
            if raw is None or raw == "":
                continue
            if spec.type == "int":
                try:
                    values[spec.name] = int(raw)
                except ValueError as exc:
                    raise SettingsError(
                        f"LEANGUARD_{spec.name.upper()} must be a whole number, not {raw!r}"
                    ) from exc
            else:
                values[spec.name] = raw
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse combinations that cannot work."""
        if self.resolved_card not in ("edit", "delete"):
            raise SettingsError("LEANGUARD_RESOLVED_CARD must be 'edit' or 'delete'")
        if self.jira_email and not self.jira_api_token:
            raise SettingsError("LEANGUARD_JIRA_EMAIL is set but LEANGUARD_JIRA_API_TOKEN is not")
        if not 1 <= self.max_attempts <= 50:
            raise SettingsError("LEANGUARD_MAX_ATTEMPTS must be between 1 and 50")
        if self.lease_s <= self.job_timeout_s:
            # A lease that ends while its job may still run lets a second worker start it.
            raise SettingsError("LEANGUARD_LEASE_S must be longer than LEANGUARD_JOB_TIMEOUT_S")
        if self.sweep_interval_s < 1:
            raise SettingsError("LEANGUARD_SWEEP_INTERVAL_S must be at least 1")

    def effective_database_url(self) -> str:
        """The database URL, or the embedded SQLite file under the instance folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.instance_path).resolve() / 'leanguard.db'}"

    def effective_secret_key(self) -> str:
        """The secret key, or a random one for this process (with a warning)."""
        if self.secret_key:
            return self.secret_key
        log.warning(
            "settings.secret-key-missing: LEANGUARD_SECRET_KEY is not set; using a random key, "
            "so sessions and stored tenant secrets do not survive a restart"
        )
        return secrets.token_urlsafe(32)

    def public(self) -> dict[str, object]:
        """Return the settings with secrets masked, for display and logs."""
        return {
            spec.name: ("(set)" if getattr(self, spec.name) else "(unset)")
            if spec.name in SECRET_FIELDS
            else getattr(self, spec.name)
            for spec in fields(self)
        }
