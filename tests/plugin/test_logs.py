"""Logs are JSON lines carrying the event and its ids."""

from __future__ import annotations

import json
import logging

from plugin.logs import JsonFormatter


def test_a_record_becomes_one_json_line_with_its_extra_fields() -> None:
    record = logging.makeLogRecord(
        {
            "name": "plugin.processing",
            "levelname": "WARNING",
            "msg": "delivery.retrying",
            "delivery_id": "d-1",
            "tenant": 3,
        }
    )
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["event"] == "delivery.retrying"
    assert entry["level"] == "warning"
    assert entry["logger"] == "plugin.processing"
    assert (entry["delivery_id"], entry["tenant"]) == ("d-1", 3)
    assert "\n" not in line


def test_exceptions_are_kept_in_the_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.makeLogRecord({"msg": "delivery.crashed", "exc_info": sys.exc_info()})
    entry = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in entry["exception"]
