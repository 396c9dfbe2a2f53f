"""Tracker failures, sorted by what the job queue should do about them."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

MIN_RETRY_AFTER = 1.0
"""Trackers do send ``Retry-After: 0``; retrying at once would only hit the limit again."""
MAX_RETRY_AFTER = 900.0
"""Fifteen minutes: a longer wait is better left to the queue's own backoff schedule."""
DEFAULT_RETRY_AFTER = 60.0
"""Used when a tracker says "slow down" without saying for how long."""


class TrackerError(Exception):
    """A call to a tracker failed."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, status={self.status!r}, "
            f"retryable={self.retryable!r})"
        )


class RateLimited(TrackerError):
    """The tracker asked us to slow down; try again after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float, status: int | None = 429) -> None:
        super().__init__(message, status=status, retryable=True)
        self.retry_after = clamp_retry_after(retry_after)


class TrackerUnavailable(TrackerError):
    """The tracker is down, timed out or dropped the connection; try again later."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status, retryable=True)
        self.retry_after = None if retry_after is None else clamp_retry_after(retry_after)


class NotFound(TrackerError):
    """The item or comment no longer exists (or the bot may not see it)."""

    def __init__(self, message: str, *, status: int | None = 404) -> None:
        super().__init__(message, status=status, retryable=False)


class AuthFailed(TrackerError):
    """The credentials were refused or lack a permission."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message, status=status, retryable=False)


class BadRequest(TrackerError):
    """The tracker rejected the request itself; retrying the same call cannot help."""

    def __init__(self, message: str, *, status: int | None = 400) -> None:
        super().__init__(message, status=status, retryable=False)


def clamp_retry_after(seconds: float) -> float:
    """Bound a wait to [1, 900] seconds (NaN and negative values become 1)."""
    if math.isnan(seconds):
        return MIN_RETRY_AFTER
    return min(MAX_RETRY_AFTER, max(MIN_RETRY_AFTER, seconds))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Read a ``Retry-After`` header given in seconds or as an HTTP date; None if unusable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return clamp_retry_after(float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return clamp_retry_after((when - (now or datetime.now(UTC))).total_seconds())


def retry_after_from_epoch_ms(value: str | None, *, now: datetime | None = None) -> float | None:
    """Turn a reset time in UTC epoch milliseconds (Linear's headers) into a wait."""
    if value is None or not value.strip():
        return None
    try:
        reset_ms = float(value.strip())
    except ValueError:
        return None
    current = (now or datetime.now(UTC)).timestamp()
    return clamp_retry_after(reset_ms / 1000.0 - current)


def retry_after_from_iso(value: str | None, *, now: datetime | None = None) -> float | None:
    """Turn an ISO-8601 reset time (Jira's ``X-RateLimit-Reset``) into a wait."""
    if value is None or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return clamp_retry_after((when - (now or datetime.now(UTC))).total_seconds())
