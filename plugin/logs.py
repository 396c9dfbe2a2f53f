"""Structured logs: one JSON object per line, with the event name and its ids."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

_CONTEXT: ContextVar[tuple[tuple[str, Any], ...]] = ContextVar("leanguard_log_context", default=())


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (tenant, item, delivery ids) to every JSON line logged inside the block.

    The ids follow the work into code that knows nothing of them, such as the tracker clients;
    a record's own ``extra=`` wins over the context.
    """
    token = _CONTEXT.set(tuple({**dict(_CONTEXT.get()), **fields}.items()))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class JsonFormatter(logging.Formatter):
    """Format a record as JSON with its ``extra`` fields (tenant, item, delivery ids)."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one line."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update(_CONTEXT.get())  # a record's own fields, set next, win
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        try:
            # orjson writes a line in a fraction of json's time; the web processes write
            # one per webhook.
            return orjson.dumps(entry, default=str).decode("utf-8")
        except orjson.JSONEncodeError:
            # What orjson refuses (keys that are not strings, integers over 64 bits), json
            # writes.
            return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send the service's logs to stderr as JSON lines."""
    # No line shows where it was logged from, so records need not find their caller: that
    # walks the stack on every line, and a web process writes two lines per webhook
    # (gunicorn's access line and ours). The logging documentation gives this switch
    # ("Optimization"). The process id stays: gunicorn's own lines show it.
    logging._srcfile = None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
