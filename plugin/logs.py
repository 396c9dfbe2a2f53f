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
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send the service's logs to stderr as JSON lines."""
    # The JSON lines carry none of the caller, thread or process fields, so the records need
    # not collect them; finding the caller walks the stack on every line, and the web
    # processes write two lines per webhook (gunicorn's access line and ours). These are the
    # switches the logging documentation gives for it ("Optimization").
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
