"""Fixtures of the Connect tests: an app on a fresh database, and the app installed on a site."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from plugin.app import create_app
from plugin.settings import Settings

# The test modules share connect_support.py; this folder cannot be a package (its path would
# be ``plugin.connect``, which is the application's own package).
_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
support = importlib.import_module("connect_support")


@pytest.fixture(scope="session")
def install_key() -> rsa.RSAPrivateKey:
    """Atlassian's install signing key, minted once per run."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def make_connect(tmp_path: Path, install_key: rsa.RSAPrivateKey) -> Callable[..., Any]:
    """Build a Connect-ready app on a fresh SQLite file; keyword arguments override settings."""

    def build(**overrides: Any) -> Any:
        values: dict[str, Any] = {
            "database_url": f"sqlite:///{tmp_path / 'x.db'}",
            "base_url": support.BASE_URL,
            "secret_key": support.SECRET_KEY,
            "connect_install_keys_url": support.KEYS_URL,
            **overrides,
        }
        app = create_app(Settings(**values), start_worker=False)
        return support.ConnectHarness(app, install_key)

    return build


@pytest.fixture
def connect(make_connect: Callable[..., Any]) -> Any:
    """An app with the default test settings."""
    return make_connect()


@pytest.fixture
def acme(connect: Any) -> Any:
    """An app with leanguard installed on the ACME site."""
    response = connect.install(support.ACME)
    assert response.status_code == 204, response.get_data(as_text=True)
    return connect
