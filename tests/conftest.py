"""Fixtures the whole suite shares: the PostgreSQL and Redis servers of the distributed set-up.

Outside CI a missing server skips the tests that need it, with the reason; in CI (``CI`` set)
it fails them, so a green run always means both set-ups were tested.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

POSTGRES_URL = os.environ.get(
    "LEANGUARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("LEANGUARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def server_missing(reason: str) -> NoReturn:
    """Fail in CI, skip elsewhere, naming the missing server and how to provide it."""
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """Return the URL of a PostgreSQL server that answers."""
    engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as exc:
        where = make_url(POSTGRES_URL).render_as_string(hide_password=True)
        server_missing(
            f"PostgreSQL is not reachable at {where} ({type(exc).__name__}); start it or point "
            "LEANGUARD_TEST_POSTGRES_URL at one"
        )
    finally:
        engine.dispose()
    return POSTGRES_URL


@pytest.fixture(scope="session")
def redis_server() -> str:
    """Return the URL of a Redis database that answers (db 15 unless configured)."""
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except RedisError as exc:
        server_missing(
            f"Redis is not reachable at {REDIS_URL} ({type(exc).__name__}); start it or point "
            "LEANGUARD_TEST_REDIS_URL at one"
        )
    finally:
        client.close()
    return REDIS_URL
