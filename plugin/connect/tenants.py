"""Connect tenants: install, uninstall, enable, disable; shared secrets encrypted at rest."""

from __future__ import annotations

import base64
import binascii
import fnmatch
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.connect.errors import ConnectError
from plugin.runtime import same_site
from plugin.settings import Settings
from plugin.storage import Tenant, WorkItemRow

log = logging.getLogger(__name__)

TRACKER = "jira"
SETTINGS_KEY = "connect"
"""Where a tenant's Connect details live in ``Tenant.settings``."""
_SEALED_PREFIX = "v1:"
_NONCE_BYTES = 12
_HKDF_SALT = b"leanguard/connect"
_HKDF_INFO = b"leanguard/connect/shared-secret/v1"
_MAX_COLUMN = 255
"""The clientKey and site columns hold 255 characters."""
_MAX_TEXT = 2048
# Used only when LEANGUARD_SECRET_KEY is unset: one key for the whole process, so the web
# threads and the in-process worker agree; secrets sealed with it do not survive a restart.
_PROCESS_SECRET_KEY = secrets.token_urlsafe(32)


class SecretBox:
    """Seals shared secrets with AES-256-GCM under a key derived from LEANGUARD_SECRET_KEY."""

    def __init__(self, secret_key: str) -> None:
        # HKDF gives a key used for nothing else, so a leaked session-signing use of the same
        # secret key reveals nothing about the encryption key and the other way round.
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO).derive(
            secret_key.encode("utf-8")
        )
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, *, client_key: str) -> str:
        """Encrypt a shared secret for the tenant ``client_key``."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        # The clientKey is authenticated data: a sealed secret copied into another tenant's
        # row does not open there.
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), client_key.encode("utf-8"))
        return _SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, sealed: str, *, client_key: str) -> str:
        """Decrypt a shared secret sealed for ``client_key``."""
        if not sealed.startswith(_SEALED_PREFIX):
            raise _unreadable()
        try:
            raw = base64.urlsafe_b64decode(sealed[len(_SEALED_PREFIX) :].encode("ascii"))
            nonce, ciphertext = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
            plain = self._aead.decrypt(nonce, ciphertext, client_key.encode("utf-8"))
        except (InvalidTag, ValueError, binascii.Error) as exc:
            raise _unreadable() from exc
        return plain.decode("utf-8")


def secret_box(settings: Settings) -> SecretBox:
    """Return the box for the configured secret key (or this process's random one)."""
    return _box(settings.secret_key or _PROCESS_SECRET_KEY)


@lru_cache(maxsize=8)
def _box(secret_key: str) -> SecretBox:
    return SecretBox(secret_key)


def _unreadable() -> ConnectError:
    return ConnectError(
        "tenant_secret_unreadable",
        "The tenant's stored secret cannot be decrypted (was LEANGUARD_SECRET_KEY changed?); "
        "reinstall the app on the site.",
    )


@dataclass(frozen=True)
class Installation:
    """What an ``installed`` callback tells: the tenant, its site and its new shared secret."""

    client_key: str
    base_url: str
    shared_secret: str
    app_key: str
    display_url: str
    product_type: str

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Installation:
        """Read an installed (or uninstalled) payload; raise a 400 naming a missing field."""
        return cls(
            client_key=_text(body, "clientKey", required=True, max_length=_MAX_COLUMN),
            base_url=_text(body, "baseUrl", required=True),
            shared_secret=_text(body, "sharedSecret"),
            app_key=_text(body, "key"),
            display_url=_text(body, "displayUrl"),
            product_type=_text(body, "productType"),
        )


def _text(
    body: Mapping[str, Any], name: str, *, required: bool = False, max_length: int = _MAX_TEXT
) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise ConnectError(
            "bad_payload",
            f"The lifecycle body needs {name!r} as a string of 1 to {max_length} characters.",
            status=400,
        )
    return value.strip()


def site_of(base_url: str, allowed_hosts: str) -> str:
    """Return the tenant site of a Connect ``baseUrl``: https, on an allowed host, normalised."""
    try:
        parts = urlsplit(base_url)
        port = parts.port
    except ValueError as exc:
        raise ConnectError("bad_base_url", "The baseUrl is not a URL.", status=400) from exc
    if parts.scheme.lower() != "https":
        raise ConnectError("insecure_base_url", "The site's baseUrl must use https.", status=403)
    host = (parts.hostname or "").lower()
    if not host or parts.username or parts.password or parts.query or parts.fragment:
        raise ConnectError("bad_base_url", "The baseUrl must be a plain site URL.", status=400)
    patterns = [p.strip().lower() for p in allowed_hosts.split(",") if p.strip()]
    if not any(fnmatch.fnmatchcase(host, pattern) for pattern in patterns):
        # Without this, anyone who can get a token signed for their own site could point
        # leanguard's writes and its tenant at any host they like.
        raise ConnectError(
            "host_not_allowed",
            f"Sites on {host} may not install leanguard (LEANGUARD_CONNECT_ALLOWED_HOSTS).",
            status=403,
        )
    netloc = host if port in (None, 443) else f"{host}:{port}"
    if len(netloc) + len(parts.path) > _MAX_COLUMN - len("https://"):
        raise ConnectError("bad_base_url", "The baseUrl is too long.", status=400)
    return f"https://{netloc}{parts.path.rstrip('/')}"


def tenant_by_client_key(session: Session, client_key: str) -> Tenant | None:
    """Return the Connect tenant with this clientKey, enabled or not."""
    return session.scalars(select(Tenant).where(Tenant.client_key == client_key)).first()


def connect_details(tenant: Tenant) -> dict[str, Any]:
    """Return what the tenant's install recorded (app key, status property, installed flag)."""
    details = (tenant.settings or {}).get(SETTINGS_KEY)
    return dict(details) if isinstance(details, Mapping) else {}


def install(
    session: Session,
    installation: Installation,
    *,
    site: str,
    box: SecretBox,
    status_property: str,
    api_token_site: str = "",
) -> Tenant:
    """Store (or refresh) a tenant from a verified install; a reinstall rotates its secret."""
    tenant = tenant_by_client_key(session, installation.client_key)
    holder = session.scalars(
        select(Tenant).where(Tenant.tracker == TRACKER, Tenant.site == site)
    ).first()
    if holder is not None and (tenant is None or holder.id != tenant.id):
        # The token does not cover the body's baseUrl, so a clientKey never takes over a site
        # that has data or credentials: another installation's, or the API-token site. Only an
        # empty row (made by deliveries for a site leanguard had no credentials for) is adopted.
        adoptable = (
            tenant is None
            and holder.client_key is None
            and not same_site(holder.site, api_token_site)
            and session.scalars(
                select(WorkItemRow.id).where(WorkItemRow.tenant_id == holder.id).limit(1)
            ).first()
            is None
        )
        if not adoptable:
            log.warning(
                "connect.install.site-conflict",
                extra={"client_key": installation.client_key, "site": site},
            )
            raise ConnectError(
                "site_conflict",
                f"leanguard already serves {site} through another installation or the "
                "admin webhook; one site has one way in.",
                status=409,
            )
        tenant = holder
    now = datetime.now(UTC)
    if tenant is None:
        tenant = Tenant(tracker=TRACKER, site=site, name="", settings={})
        session.add(tenant)
    tenant.client_key = installation.client_key
    tenant.site = site
    tenant.enabled = True
    tenant.shared_secret = box.seal(installation.shared_secret, client_key=installation.client_key)
    # A new dict, not an in-place edit: the JSON column only notices assignment.
    tenant.settings = {
        **(tenant.settings or {}),
        SETTINGS_KEY: {
            "app_key": installation.app_key,
            "status_property": status_property,
            "installed": True,
            "installed_at": now.isoformat(timespec="seconds"),
            "display_url": installation.display_url,
        },
    }
    if not tenant.name:
        tenant.name = urlsplit(site).hostname or site
    session.flush()
    return tenant


def uninstall(session: Session, client_key: str) -> Tenant | None:
    """Disable a tenant for good (until a new install); its items and history stay."""
    tenant = tenant_by_client_key(session, client_key)
    if tenant is not None:
        tenant.enabled = False
        details = connect_details(tenant)
        details["installed"] = False
        tenant.settings = {**(tenant.settings or {}), SETTINGS_KEY: details}
    return tenant


def set_enabled(session: Session, tenant: Tenant, enabled: bool) -> None:
    """Enable or disable an installed tenant (the app was switched on or off on the site)."""
    if enabled and not connect_details(tenant).get("installed"):
        # An uninstalled app comes back through a signed install, never through "enabled".
        raise ConnectError(
            "not_installed", "The app is not installed on this site; install it again.", status=409
        )
    tenant.enabled = enabled


def shared_secret(tenant: Tenant, box: SecretBox) -> str:
    """Return a Connect tenant's shared secret in clear, for one verification or signature."""
    if not tenant.client_key or not tenant.shared_secret:
        raise ConnectError("unknown_tenant", "The tenant is not a Connect installation.")
    return box.open(tenant.shared_secret, client_key=tenant.client_key)
