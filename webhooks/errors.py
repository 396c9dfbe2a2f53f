"""Errors raised at the inbound edge, each carrying the HTTP answer it maps to."""

from __future__ import annotations

from typing import ClassVar


class WebhookError(Exception):
    """A delivery that is refused; ``status`` and ``code`` form the HTTP answer."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    default_message: ClassVar[str] = "The webhook request is not acceptable."
    # Seconds the sender should wait before retrying, sent as Retry-After when set.
    retry_after: ClassVar[int | None] = None

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    def to_dict(self) -> dict[str, str]:
        """Return the JSON error body ``{code, message}``."""
        return {"code": self.code, "message": self.message}


class BadSignature(WebhookError):
    """The signature (or Connect token) is missing, malformed or does not match."""

    status = 401
    code = "bad_signature"
    default_message = "The webhook signature is missing or does not match."


class StaleDelivery(WebhookError):
    """The signed timestamp is missing or outside the replay window."""

    status = 401
    code = "stale_timestamp"
    default_message = "The webhook timestamp is missing or too far from the current time."


class BadPayload(WebhookError):
    """The body is not JSON, not an object, or lacks a key the event needs."""

    status = 400
    code = "bad_payload"
    default_message = "The webhook body is not a JSON object of the expected shape."


class PayloadTooLarge(WebhookError):
    """The body is over the size limit."""

    status = 413
    code = "payload_too_large"
    default_message = "The webhook body is too large."


class NotConfigured(WebhookError):
    """The tracker's webhook secret is not set, so its endpoint is closed."""

    status = 404
    code = "not_configured"
    default_message = "Webhooks for this tracker are not configured."


class Unavailable(WebhookError):
    """The delivery could not be stored; the sender should retry later."""

    status = 503
    code = "unavailable"
    default_message = "The delivery could not be stored; retry later."
    retry_after = 30
