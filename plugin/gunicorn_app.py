"""gunicorn running a Flask app built inside each worker, with the service's server settings.

Kept free of the service's own imports: the benchmark's bare baseline app runs on it too, so
both are served exactly alike and the baseline's memory stays that of a bare Flask worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication


def gunicorn_options(host: str, port: int, *, workers: int, threads: int) -> dict[str, Any]:
    """Return the gunicorn settings ``leanguard serve`` runs with."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": 60,
        "graceful_timeout": 20,
        "accesslog": "-",
        "errorlog": "-",
        "forwarded_allow_ips": "127.0.0.1",
    }


class FlaskServer(BaseApplication):  # type: ignore[misc]
    """gunicorn with the app built inside each worker process (no connections shared by fork)."""

    def __init__(self, build: Callable[[], Flask], options: dict[str, Any]) -> None:
        self.build = build
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        """Apply the options to gunicorn's config."""
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        """Build the app in the worker."""
        return self.build()
