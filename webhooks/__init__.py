"""The inbound edge: verify tracker webhooks, parse them into events, hand them to an inbox."""

from webhooks.errors import (
    BadPayload,
    BadSignature,
    NotConfigured,
    PayloadTooLarge,
    StaleDelivery,
    Unavailable,
    WebhookError,
)
from webhooks.events import Change, InboundEvent, ItemRef
from webhooks.inbox import Inbox
from webhooks.jira import parse_jira_delivery
from webhooks.linear import parse_linear_delivery
from webhooks.signatures import verify_hub_signature, verify_linear_signature
from webhooks.views import bp

__all__ = [
    "BadPayload",
    "BadSignature",
    "Change",
    "InboundEvent",
    "Inbox",
    "ItemRef",
    "NotConfigured",
    "PayloadTooLarge",
    "StaleDelivery",
    "Unavailable",
    "WebhookError",
    "bp",
    "parse_jira_delivery",
    "parse_linear_delivery",
    "verify_hub_signature",
    "verify_linear_signature",
]
