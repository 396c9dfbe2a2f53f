"""Logs are JSON lines carrying the event and its ids."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from plugin.logs import JsonFormatter, configure_logging, log_context


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


def test_any_extra_value_still_makes_a_line() -> None:
    record = logging.makeLogRecord(
        {
            "msg": "rules.previewed",
            "counts": {404: 1, "ok": 2},
            "big": 2**70,
            "where": Path("/srv/rules"),
            "title": "Réduire le churn",
        }
    )

    entry = json.loads(JsonFormatter().format(record))

    assert entry["counts"] == {"404": 1, "ok": 2}
    assert entry["big"] == 2**70
    assert entry["where"] == "/srv/rules"
    assert entry["title"] == "Réduire le churn"


def test_exceptions_are_kept_in_the_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.makeLogRecord({"msg": "delivery.crashed", "exc_info": sys.exc_info()})
    entry = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in entry["exception"]


def test_the_log_context_adds_its_ids_to_every_line_inside_it() -> None:
    def line(**extra: object) -> dict[str, object]:
        record = logging.makeLogRecord({"msg": "jira.request", **extra})
        entry: dict[str, object] = json.loads(JsonFormatter().format(record))
        return entry

    with log_context(delivery_id="d-7", tenant=2):
        with log_context(item="KAN-40"):
            inner = line()
            own = line(item="KAN-41")
        outer = line()
    after = line()

    assert (inner["delivery_id"], inner["tenant"], inner["item"]) == ("d-7", 2, "KAN-40")
    assert own["item"] == "KAN-41", "a record's own extra wins over the context"
    assert "item" not in outer and outer["delivery_id"] == "d-7"
    assert "delivery_id" not in after


def test_configured_logging_still_fills_what_gunicorns_lines_show(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setattr(logging, "_srcfile", logging._srcfile)
    configure_logging()

    record = logging.getLogger("gunicorn.error").makeRecord(
        "gunicorn.error", logging.INFO, __file__, 1, "Booting worker with pid: %s", (42,), None
    )
    line = logging.Formatter("[%(process)d] [%(levelname)s] %(message)s").format(record)

    assert line == f"[{os.getpid()}] [INFO] Booting worker with pid: 42"
