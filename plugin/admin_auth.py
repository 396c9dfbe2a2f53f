"""Who may use the rules admin: the admin-token login, CSRF tokens, and Connect page tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import current_app, request, session
from itsdangerous import BadSignature, URLSafeTimedSerializer

from plugin.api.core import Principal
from plugin.runtime import Runtime

SESSION_ADMIN = "leanguard_admin"
"""A fingerprint of the admin token the session logged in with (never the token itself)."""
SESSION_CSRF = "leanguard_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
PAGE_TOKEN_FIELD = "page_token"
PAGE_TOKEN_HEADER = "X-Leanguard-Page-Token"
PAGE_TOKEN_MAX_AGE_S = 3600
ADMIN_NAME = "admin"


def _runtime() -> Runtime:
    runtime: Runtime = current_app.extensions["leanguard.runtime"]
    return runtime


def _fingerprint(token: str) -> str:
    # Only a digest goes into the (signed, readable) session cookie; changing the admin token
    # changes the digest and so ends every session.
    return hashlib.sha256(b"leanguard-admin\0" + token.encode()).hexdigest()


def admin_token() -> str:
    """Return the configured admin token (empty: no login possible)."""
    return _runtime().settings.admin_token


def log_in(given: str) -> bool:
    """Start an admin session when ``given`` is the admin token (compared in constant time)."""
    expected = admin_token()
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        return False
    session.clear()
    session[SESSION_ADMIN] = _fingerprint(expected)
    session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return True


def log_out() -> None:
    """End the admin session."""
    session.clear()


def session_is_admin() -> bool:
    """Tell whether this request's session logged in with the current admin token."""
    stored = session.get(SESSION_ADMIN)
    expected = admin_token()
    if not isinstance(stored, str) or not expected:
        return False
    return hmac.compare_digest(stored.encode(), _fingerprint(expected).encode())


def csrf_token() -> str:
    """Return this session's CSRF token, creating it when the session has none."""
    token = session.get(SESSION_CSRF)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[SESSION_CSRF] = token
    return token


def csrf_valid(given: str | None) -> bool:
    """Tell whether ``given`` is this session's CSRF token (compared in constant time)."""
    expected = session.get(SESSION_CSRF)
    if not isinstance(expected, str) or not expected or not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="leanguard.admin-page")


def page_token(principal: Principal) -> str:
    """Sign a short-lived token for a Connect caller's page; its forms and calls carry it."""
    # Inside Jira the page is a third-party iframe where cookies are often blocked, so the
    # page carries its own proof instead of a session; it doubles as the CSRF token.
    return _serializer().dumps(
        {"name": principal.name, "tenant": principal.tenant_id, "account": principal.account_id}
    )


def page_principal(token: str | None) -> Principal | None:
    """Return the Connect caller a page token was signed for, or None when it is not valid."""
    if not token:
        return None
    try:
        data = _serializer().loads(token, max_age=PAGE_TOKEN_MAX_AGE_S)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("tenant"), int):
        return None
    account = data.get("account")
    return Principal(
        name=str(data.get("name") or "connect"),
        tenant_id=data["tenant"],
        account_id=account if isinstance(account, str) and account else None,
    )


def api_page_principal() -> Principal | None:
    """Return the caller of an API request sent by the admin page itself, if it is one."""
    if request.headers.get("Authorization"):
        return None
    from_page = page_principal(request.headers.get(PAGE_TOKEN_HEADER))
    if from_page is not None:
        return from_page
    # A session cookie rides along with any request to this site; the header, which another
    # site's page cannot set, is what proves the admin page sent it.
    if session_is_admin() and csrf_valid(request.headers.get(CSRF_HEADER)):
        return Principal(name=ADMIN_NAME)
    return None
