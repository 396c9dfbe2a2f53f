"""Fixtures of the production tests: a Jira site on a real socket, a clean Redis database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis
from support.jira_server import JiraServer


@pytest.fixture
def site() -> Iterator[JiraServer]:
    """A Jira Data Center site on 127.0.0.1 that answers with a little jitter."""
    server = JiraServer(jitter_s=(0.001, 0.012)).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """The test Redis database, flushed before and after (rq's queue lives there)."""
    client = Redis.from_url(redis_server)
    client.flushdb()
    yield redis_server
    client.flushdb()
    client.close()
