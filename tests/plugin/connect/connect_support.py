"""Helpers of the Connect tests: sites, Atlassian's install key, tokens minted as Jira does.

Every token is minted the way Jira mints it: RS256 with an install key (served by a ``responses``
mock of the keys URL) for installed and uninstalled, HS256 with the tenant's shared secret for
everything else.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from plugin.app import RUNTIME_EXTENSION
from plugin.connect.jwt import query_string_hash
from plugin.mappers.jira import jira_issue_to_item
from plugin.runtime import Runtime
from plugin.storage import Tenant, record_evaluation, upsert_work_item
from rules import evaluate

FIXTURES = Path(__file__).parent / "fixtures"
BASE_URL = "https://leanguard.example.com"
KEYS_URL = "https://install-keys.example.test"
SECRET_KEY = "connect-tests-secret-key-6f1d0b9a4c3e2d1f"
APP_KEY = "leanguard"
KID = "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"


@dataclass(frozen=True)
class Site:
    """A Jira Cloud site that installs the app."""

    client_key: str
    base_url: str
    shared_secret: str


ACME = Site(
    "6c2b8a0e-acme-4f1d-9e3a-7b5c1d2e3f40",
    "https://acme-outcomes.atlassian.net",
    "acme-shared-secret-Wq3rT9yUe2iO5pA8sD1fG4hJ7kL0zX6c",
)
GLOBEX = Site(
    "9d4e1f7a-globex-4b2c-8a6d-3e5f7a9b1c2d",
    "https://globex.atlassian.net",
    "globex-shared-secret-Mn8bV5cX2zL9kJ6hG3fD0sA7pO4iU1y",
)


def fixture_json(name: str) -> Any:
    """Load a JSON file of this folder's fixtures."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    """Return a private key's public half as PEM, as the keys CDN serves it."""
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def unsigned_token(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """Assemble a JWT by hand, for tokens no library would sign (alg none, key confusion)."""

    def part(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = part(json.dumps(header).encode()) + "." + part(json.dumps(claims).encode())
    return head + "." + part(signature)


class ConnectHarness:
    """One app under test with helpers that play Jira's part."""

    def __init__(self, app: Flask, install_key: rsa.RSAPrivateKey) -> None:
        self.app = app
        self.install_key = install_key

    @property
    def client(self) -> FlaskClient:
        return self.app.test_client()

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.extensions[RUNTIME_EXTENSION]
        return runtime

    def body(self, site: Site, **changes: Any) -> dict[str, Any]:
        """Return the installed payload Jira sends for ``site``."""
        body: dict[str, Any] = fixture_json("connect_installed.json")
        body.update(
            clientKey=site.client_key,
            sharedSecret=site.shared_secret,
            baseUrl=site.base_url,
            displayUrl=site.base_url,
            description=f"Atlassian JIRA at {site.base_url}",
        )
        body.update(changes)
        return body

    def install_token(
        self,
        iss: str,
        *,
        method: str = "POST",
        path: str = "/connect/installed",
        aud: str = BASE_URL,
        exp_in: int = 180,
        kid: str = KID,
        key: rsa.RSAPrivateKey | None = None,
    ) -> str:
        """Sign a lifecycle token as Atlassian does for a signed install."""
        now = int(time.time())
        claims = {
            "iss": iss,
            "aud": aud,
            "iat": now,
            "exp": now + exp_in,
            "qsh": query_string_hash(method, path),
        }
        return jwt.encode(claims, key or self.install_key, algorithm="RS256", headers={"kid": kid})

    @contextlib.contextmanager
    def key_server(self) -> Iterator[responses.RequestsMock]:
        """Serve the install public key at the keys URL."""
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            self.serve_key(rsps)
            yield rsps

    def serve_key(self, rsps: responses.RequestsMock) -> None:
        """Register the install public key on an existing ``responses`` mock."""
        rsps.get(f"{KEYS_URL}/{KID}", body=public_pem(self.install_key))

    def lifecycle(self, path: str, body: dict[str, Any], token: str | None) -> TestResponse:
        """Post a lifecycle callback with ``Authorization: JWT <token>``."""
        headers = {"Authorization": f"JWT {token}"} if token is not None else {}
        return self.client.post(path, json=body, headers=headers)

    def install(self, site: Site, *, rsps: responses.RequestsMock | None = None) -> TestResponse:
        """Install the app on ``site`` with a valid signed install."""
        token = self.install_token(site.client_key)
        if rsps is not None:
            self.serve_key(rsps)
            return self.lifecycle("/connect/installed", self.body(site), token)
        with self.key_server():
            return self.lifecycle("/connect/installed", self.body(site), token)

    def token(
        self,
        site: Site,
        method: str,
        path: str,
        params: Iterable[tuple[str, str]] = (),
        *,
        secret: str | None = None,
        iss: str | None = None,
        exp_in: int = 180,
        qsh: str | None = None,
        claims: dict[str, Any] | None = None,
    ) -> str:
        """Sign an HS256 token with the site's shared secret for one request."""
        now = int(time.time())
        payload = {
            "iss": iss or site.client_key,
            "sub": "712020:9b0e6c4d-1f2a-4c3b-8d7e-5a6b7c8d9e0f",
            "iat": now,
            "exp": now + exp_in,
            "qsh": qsh if qsh is not None else query_string_hash(method, path, params),
            **(claims or {}),
        }
        return jwt.encode(payload, secret or site.shared_secret, algorithm="HS256")

    def store_item(self, site: Site, key: str, summary: str, *, complete: bool = False) -> None:
        """Store and evaluate an epic under ``site``'s tenant, as the worker would."""
        issue: dict[str, Any] = fixture_json("jira_issue_OUT-7.json")
        issue["key"] = key
        issue["id"] = str(zlib.crc32(f"{site.client_key}/{key}".encode()))
        issue["fields"]["summary"] = summary
        if complete:
            # The fixture epic lacks only its success metric.
            issue["fields"]["customfield_10051"] = (
                "Self-serve share of plan upgrades grows from 12% to 40% by 2027-03-31."
            )
        item = jira_issue_to_item(issue, site=site.base_url)
        evaluation = evaluate(item, self.runtime.catalog.select(item.tracker, item.project))
        now = datetime.now(UTC)
        with self.runtime.database.session() as session:
            tenant = session.scalars(
                select(Tenant).where(Tenant.client_key == site.client_key)
            ).one()
            row, _ = upsert_work_item(session, tenant_id=tenant.id, item=item, now=now)
            record_evaluation(session, work_item=row, evaluation=evaluation, evaluated_at=now)

    def tenant(self, client_key: str) -> Tenant:
        """Return the stored tenant of a clientKey."""
        with self.runtime.database.session() as session:
            return session.scalars(select(Tenant).where(Tenant.client_key == client_key)).one()
