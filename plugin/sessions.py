"""Flask's signed-cookie sessions, with the signing serializer built once per key."""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer


class KeptSerializerSessionInterface(SecureCookieSessionInterface):
    """Signed-cookie sessions that keep their serializer while the secret keys stay the same.

    Flask builds a new serializer on every request, webhooks included, although no webhook
    carries a session cookie; keeping it saves that work on every request. A request with no
    cookies at all gets its new session without parsing any.
    """

    def __init__(self) -> None:
        self._kept: tuple[tuple[object, ...], URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        """Return the serializer for the app's current keys, built the first time they are seen."""
        keys = (app.secret_key, *(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        kept = self._kept
        if kept is None or kept[0] != keys:
            kept = self._kept = (keys, super().get_signing_serializer(app))
        return kept[1]

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """Return the request's session; a new one at once when it sent no cookies."""
        # Webhooks and API clients send no Cookie header; werkzeug would still walk every
        # header to find none.
        if "HTTP_COOKIE" not in request.environ and self.get_signing_serializer(app) is not None:
            return self.session_class()
        return super().open_session(app, request)
