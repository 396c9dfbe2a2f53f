"""Requests from Jira: who sent them, proven by the JWT, and only by the verified ``iss``."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from flask import Request

from plugin.connect.descriptor import Descriptor
from plugin.connect.errors import ConnectError
from plugin.connect.jwt import (
    JWT_PARAM,
    query_string_hash,
    unverified_claims,
    verify_install_token,
    verify_shared_secret_token,
)
from plugin.connect.keys import InstallKeys
from plugin.connect.tenants import (
    Installation,
    SecretBox,
    shared_secret,
    site_of,
    tenant_by_client_key,
)
from plugin.runtime import Runtime

log = logging.getLogger(__name__)

_MAX_TOKEN = 8 * 1024


@dataclass(frozen=True)
class Caller:
    """A verified request from a Connect tenant."""

    tenant_id: int
    client_key: str
    site: str
    account_id: str | None
    claims: dict[str, Any]

    @property
    def context_token(self) -> bool:
        """True for a page's context token (``qsh`` = ``context-qsh``), bound to no request."""
        return self.claims.get("qsh") == "context-qsh"


class ConnectGate:
    """Verifies lifecycle callbacks (RS256 signed install) and tenant requests (HS256)."""

    def __init__(
        self, runtime: Runtime, *, descriptor: Descriptor, keys: InstallKeys, box: SecretBox
    ) -> None:
        self.runtime = runtime
        self.descriptor = descriptor
        self.keys = keys
        self.box = box

    def tenant_request(
        self,
        request: Request,
        *,
        allow_context_qsh: bool,
        token_in_query: bool = False,
        allow_disabled: bool = False,
    ) -> Caller:
        """Verify an HS256 request from a tenant; raise :class:`ConnectError` if it is not one."""
        try:
            return self._tenant_request(
                request,
                allow_context_qsh=allow_context_qsh,
                token_in_query=token_in_query,
                allow_disabled=allow_disabled,
            )
        except ConnectError as error:
            log.warning(
                "connect.request-refused",
                extra={"path": request.path, "reason": error.code, "status": error.status},
            )
            raise

    def _tenant_request(
        self,
        request: Request,
        *,
        allow_context_qsh: bool,
        token_in_query: bool,
        allow_disabled: bool,
    ) -> Caller:
        token = token_from(request, token_in_query=token_in_query)
        _, unverified = unverified_claims(token)
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise ConnectError("missing_issuer", "The JWT has no iss claim.")
        qsh = query_string_hash(request.method, request.path, request.args.items(multi=True))
        with self.runtime.database.session() as session:
            # The unverified iss only picks the secret to check the signature with; nothing
            # else is read from an unverified token.
            tenant = tenant_by_client_key(session, issuer)
            if tenant is None:
                raise ConnectError("unknown_tenant", "No Connect installation has this iss.")
            secret = shared_secret(tenant, self.box)
            claims = verify_shared_secret_token(
                token, secret, qsh=qsh, allow_context_qsh=allow_context_qsh
            )
            if not tenant.enabled and not allow_disabled:
                raise ConnectError(
                    "tenant_disabled", "The app is disabled or uninstalled on this site."
                )
            subject = claims.get("sub")
            return Caller(
                tenant_id=tenant.id,
                client_key=issuer,
                site=tenant.site,
                account_id=subject if isinstance(subject, str) and subject else None,
                claims=claims,
            )

    def lifecycle(self, request: Request, *, installing: bool = False) -> Installation:
        """Verify an installed or uninstalled callback (RS256, signed install) and read its body."""
        try:
            installation = self._lifecycle(request)
            if installing:
                self._check_install(installation)
            return installation
        except ConnectError as error:
            log.warning(
                "connect.lifecycle-refused",
                extra={"path": request.path, "reason": error.code, "status": error.status},
            )
            raise

    def _lifecycle(self, request: Request) -> Installation:
        token = token_from(request, token_in_query=False)
        header, _ = unverified_claims(token)
        if header.get("alg") != "RS256":
            raise ConnectError(
                "signed_install_required",
                "Install and uninstall callbacks must be signed with RS256 (signed install).",
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise ConnectError("missing_kid", "The install token has no kid header.")
        public_key = self.keys.public_key(kid)
        base_url = self.runtime.settings.base_url.rstrip("/")
        claims = verify_install_token(
            token,
            public_key,
            audience=[base_url, base_url + "/"],
            qsh=query_string_hash(request.method, request.path, request.args.items(multi=True)),
        )
        installation = Installation.from_body(json_body(request))
        # The body is not covered by the signature: only the token's iss is Atlassian's word,
        # so the body's clientKey (and with it the stored secret) must be that same tenant.
        if claims.get("iss") != installation.client_key:
            raise ConnectError("issuer_mismatch", "The token's iss is not the body's clientKey.")
        return installation

    def install_site(self, installation: Installation) -> str:
        """Return the tenant site of a checked install."""
        return site_of(installation.base_url, self.runtime.settings.connect_allowed_hosts)

    def _check_install(self, installation: Installation) -> None:
        if installation.app_key != self.descriptor.key:
            raise ConnectError(
                "wrong_app_key",
                f"The install is for app {installation.app_key!r}, not {self.descriptor.key!r}.",
                status=400,
            )
        if installation.product_type and installation.product_type != "jira":
            raise ConnectError(
                "unsupported_product",
                f"leanguard is a Jira app, not a {installation.product_type} app.",
                status=400,
            )
        if not installation.shared_secret:
            raise ConnectError("bad_payload", "The installed body has no sharedSecret.", status=400)
        self.install_site(installation)


def token_from(request: Request, *, token_in_query: bool) -> str:
    """Return the JWT of ``Authorization: JWT <token>`` (or of ``?jwt=`` where pages use it)."""
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    token = value.strip() if scheme.lower() == "jwt" else ""
    if not token and token_in_query:
        token = request.args.get(JWT_PARAM, "")
    if not token:
        raise ConnectError("missing_token", "The request carries no Connect JWT.")
    if len(token) > _MAX_TOKEN:
        raise ConnectError("malformed_token", "The JWT is too long.")
    return token


def json_body(request: Request) -> dict[str, Any]:
    """Return the request's JSON object, or raise a 400."""
    try:
        body = json.loads(request.get_data(cache=True) or b"null")
    except ValueError as exc:
        raise ConnectError("bad_payload", "The body is not JSON.", status=400) from exc
    if not isinstance(body, dict):
        raise ConnectError("bad_payload", "The body must be a JSON object.", status=400)
    return body
