"""Signing calls to Jira as a Connect app: a fresh JWT for each request."""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from requests import PreparedRequest
from requests.auth import AuthBase

from plugin.connect.jwt import OUTBOUND_TTL_S, mint_token, request_target

log = logging.getLogger(__name__)


class ConnectJWTAuth(AuthBase):
    """Add ``Authorization: JWT`` with iss = app key and the qsh of this very method and URL."""

    def __init__(
        self,
        *,
        app_key: str,
        base_url: str,
        secret: str | Callable[[], str],
        ttl_s: int = OUTBOUND_TTL_S,
    ) -> None:
        self.app_key = app_key
        self.base_url = base_url.rstrip("/")
        # A callable is asked on every request, so a reinstall's new secret is used at once.
        self._secret = secret
        self.ttl_s = ttl_s
        base = urlsplit(self.base_url)
        self._origin = (base.scheme.lower(), base.netloc.lower())

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        """Sign ``request``; it must go to the tenant's own site."""
        url = request.url or ""
        parts = urlsplit(url)
        if (parts.scheme.lower(), parts.netloc.lower()) != self._origin:
            # A token is a credential of the tenant: never hand one to another host.
            log.warning("connect.sign.foreign-host", extra={"host": parts.netloc})
            return request
        secret = self._secret() if callable(self._secret) else self._secret
        path, params = request_target(url, self.base_url)
        token = mint_token(
            issuer=self.app_key,
            secret=secret,
            method=request.method or "GET",
            path=path,
            params=params,
            ttl_s=self.ttl_s,
        )
        request.headers["Authorization"] = f"JWT {token}"
        return request
