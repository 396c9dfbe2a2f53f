"""The realistic payloads in ``bench/fixtures`` and the signed webhook requests built from them."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).with_name("fixtures")

TEMPLATE_KEY = "PROD-4242"
"""The issue key every issue fixture carries; per-item copies replace it."""
TEMPLATE_ID = "104242"
"""The issue id every issue fixture carries; per-item copies replace it."""
FIRST_ITEM_ID = 1_000_000
"""Issue ids of bench items are this plus the number in their key."""

WEBHOOK_PATH = "/webhooks/jira"
DELIVERY_HEADER = "X-Atlassian-Webhook-Identifier"


def load(name: str) -> Any:
    """Return a fixture file parsed."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def wire_text(name: str) -> str:
    """Return a fixture as Jira sends it: compact JSON, UTF-8 kept (the files are indented)."""
    return json.dumps(load(name), separators=(",", ":"), ensure_ascii=False)


def item_key(number: int) -> str:
    """Return the key of bench item ``number``."""
    return f"PROD-{number}"


def item_id(number: int) -> str:
    """Return the issue id of bench item ``number``."""
    return str(FIRST_ITEM_ID + number)


def key_number(key: str) -> int | None:
    """Return the number in a bench item key, or None when it is not one."""
    project, _, digits = key.partition("-")
    return int(digits) if project == "PROD" and digits.isdigit() else None


def for_item(template: str, number: int) -> str:
    """Return a copy of a payload with the key and id of bench item ``number``."""
    return template.replace(TEMPLATE_KEY, item_key(number)).replace(TEMPLATE_ID, item_id(number))


class SignedWebhooks:
    """Raw HTTP requests of signed Jira ``issue_updated`` webhooks, one delivery id each."""

    def __init__(self, secret: str, host: str, port: int, run_tag: str) -> None:
        self.secret = secret.encode("utf-8")
        self.template = wire_text("jira_issue_updated_webhook.json")
        self.host = f"{host}:{port}"
        self.run_tag = run_tag
        self._sent = 0

    def request(self, number: int) -> bytes:
        """Return a complete request for item ``number`` with a fresh delivery id."""
        self._sent += 1
        body = for_item(self.template, number).encode("utf-8")
        signature = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        head = (
            f"POST {WEBHOOK_PATH} HTTP/1.1\r\n"
            f"Host: {self.host}\r\n"
            "User-Agent: Atlassian Webhook HTTP Client\r\n"
            "Content-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"X-Hub-Signature: sha256={signature}\r\n"
            f"{DELIVERY_HEADER}: {self.run_tag}-{self._sent}\r\n"
            "\r\n"
        )
        return head.encode("ascii") + body
