"""Fixtures the application tests share: a service on a fresh embedded database."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from support.rules_admin import make_app


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    """The service with the test settings, on its own SQLite database and rules folder."""
    return make_app(tmp_path)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of ``app``."""
    return app.test_client()
