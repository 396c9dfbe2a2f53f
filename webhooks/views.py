"""Webhook endpoints: check size, verify, parse, store in the inbox, answer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from flask import Blueprint, Request, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge

from webhooks.errors import (
    BadSignature,
    NotConfigured,
    PayloadTooLarge,
    Unavailable,
    WebhookError,
)
from webhooks.events import InboundEvent
from webhooks.inbox import Inbox
from webhooks.jira import parse_jira_delivery
from webhooks.linear import parse_linear_delivery
from webhooks.signatures import verify_hub_signature, verify_linear_signature

logger = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

MAX_BODY_BYTES = 5 * 1024 * 1024
INBOX_EXTENSION = "leanguard.inbox"
CONNECT_VERIFIER_EXTENSION = "leanguard.connect_verifier"
JIRA_SECRET_SETTING = "LEANGUARD_JIRA_WEBHOOK_SECRET"
LINEAR_SECRET_SETTING = "LEANGUARD_LINEAR_WEBHOOK_SECRET"

# Verifies an ``Authorization: JWT`` Connect webhook and returns the tenant's site;
# raises a WebhookError subclass when the token is not acceptable.
ConnectVerifier = Callable[[Request], str]

_READ_CHUNK = 64 * 1024
_TOO_LARGE = f"The body is over the limit of {MAX_BODY_BYTES} bytes (5 MiB)."


@bp.post("/jira")
def jira() -> ResponseReturnValue:
    """Receive a Jira admin webhook (HMAC) or an Atlassian Connect webhook (JWT)."""
    body = _read_body()
    if _is_connect_request():
        verifier: ConnectVerifier | None = current_app.extensions.get(CONNECT_VERIFIER_EXTENSION)
        if verifier is None:
            raise BadSignature("Connect app webhooks are not enabled.")
        # The tenant comes from the verified token, never from the body.
        site = verifier(request)
        event = replace(parse_jira_delivery(body, request.headers), site=site, via_connect=True)
    else:
        secret = _secret(JIRA_SECRET_SETTING, "Jira")
        verify_hub_signature(secret, body, request.headers.get("X-Hub-Signature"))
        event = parse_jira_delivery(body, request.headers)
    is_new = _store(event)
    if not event.needs_work:
        return "", 204
    return {"status": "accepted" if is_new else "duplicate", "delivery_id": event.delivery_id}


@bp.post("/linear")
def linear() -> ResponseReturnValue:
    """Receive a Linear webhook."""
    body = _read_body()
    secret = _secret(LINEAR_SECRET_SETTING, "Linear")
    verify_linear_signature(secret, body, request.headers.get("Linear-Signature"))
    event = parse_linear_delivery(body, request.headers)
    is_new = _store(event)
    # Linear treats any status but 200 as a failure and retries, so every success is 200.
    status = "ignored" if not event.needs_work else "accepted" if is_new else "duplicate"
    return {"status": status, "delivery_id": event.delivery_id}


@bp.errorhandler(WebhookError)
def _answer_error(error: WebhookError) -> ResponseReturnValue:
    if error.status < 500:
        # Store failures are logged where they happen, with the delivery id.
        logger.warning(
            "webhook.rejected",
            extra={"tracker": _tracker(), "delivery_id": None, "reason": error.code},
        )
    response = jsonify(error.to_dict())
    response.status_code = error.status
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _read_body() -> bytes:
    """Return the raw body, refusing anything over MAX_BODY_BYTES."""
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise PayloadTooLarge(_TOO_LARGE)
    # A chunked body has no Content-Length: read at most one byte past the limit, so a
    # sender cannot make the process buffer more than that.
    chunks: list[bytes] = []
    size = 0
    try:
        stream = request.stream
        while size <= MAX_BODY_BYTES:
            chunk = stream.read(min(_READ_CHUNK, MAX_BODY_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except RequestEntityTooLarge as exc:
        # The application's MAX_CONTENT_LENGTH is lower than ours; answer the same way.
        raise PayloadTooLarge(_TOO_LARGE) from exc
    if size > MAX_BODY_BYTES:
        raise PayloadTooLarge(_TOO_LARGE)
    return b"".join(chunks)


def _is_connect_request() -> bool:
    scheme, _, _ = request.headers.get("Authorization", "").strip().partition(" ")
    return scheme.lower() == "jwt"


def _secret(setting: str, tracker_name: str) -> str:
    secret = current_app.config.get(setting)
    if not isinstance(secret, str) or not secret:
        raise NotConfigured(f"{tracker_name} webhooks are not configured; set {setting}.")
    return secret


def _store(event: InboundEvent) -> bool:
    """Hand ``event`` to the inbox; True if it is new, False if already stored."""
    inbox: Inbox = current_app.extensions[INBOX_EXTENSION]
    fields = {"tracker": event.tracker, "delivery_id": event.delivery_id}
    try:
        is_new = inbox.accept(event)
    except Exception as exc:
        # Any storage failure must become a 503 so the sender retries: a 2xx would lose
        # the delivery. Log only the exception type: database errors echo statement
        # parameters, which hold the body.
        logger.error(
            "webhook.store-failed",
            extra={**fields, "reason": Unavailable.code, "error": type(exc).__name__},
        )
        raise Unavailable() from exc
    logger.info(
        "webhook.accepted" if is_new else "webhook.duplicate",
        extra={**fields, "event_type": event.event_type, "needs_work": event.needs_work},
    )
    return is_new


def _tracker() -> str:
    # Endpoints are named after their tracker: "webhooks.jira", "webhooks.linear".
    return (request.endpoint or "").rpartition(".")[2]
