"""The baseline web service: a bare Flask app that answers 204, on the service's gunicorn settings.

Run as ``python -m bench.baseline_app --port N``. It reads the request body and answers; no
verification, storage or queue. Whatever the service does beyond this costs what the benchmark
reports as the difference.
"""

from __future__ import annotations

import argparse
from typing import Any

from flask import Flask, Response, jsonify, request
from gunicorn.app.base import BaseApplication


def create_baseline_app() -> Flask:
    """Build the bare app: ``POST /webhooks/jira`` answers 204, ``GET /healthz`` answers ok."""
    app = Flask(__name__)

    @app.post("/webhooks/jira")
    def webhook() -> tuple[str, int]:
        request.get_data()
        return "", 204

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    return app


def gunicorn_options(host: str, port: int, workers: int, threads: int) -> dict[str, Any]:
    """The options ``leanguard serve`` gives gunicorn (see ``plugin.server.serve``)."""
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


class BaselineServer(BaseApplication):  # type: ignore[misc]
    """gunicorn running the bare app, built inside each worker like the service's."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        """Apply the options to gunicorn's config."""
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        """Build the app in the worker."""
        return create_baseline_app()


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until stopped."""
    parser = argparse.ArgumentParser(prog="python -m bench.baseline_app", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    BaselineServer(gunicorn_options(args.host, args.port, args.workers, args.threads)).run()


if __name__ == "__main__":
    main()
