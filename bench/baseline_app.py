"""The baseline web service: a bare Flask app that answers 204, on the service's gunicorn settings.

Run as ``python -m bench.baseline_app --port N``. It reads the request body and answers; no
verification, storage or queue. Whatever the service does beyond this costs what the benchmark
reports as the difference.
"""

from __future__ import annotations

import argparse

from flask import Flask, Response, jsonify, request

from plugin.gunicorn_app import FlaskServer, gunicorn_options


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


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until stopped."""
    parser = argparse.ArgumentParser(prog="python -m bench.baseline_app", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    options = gunicorn_options(args.host, args.port, workers=args.workers, threads=args.threads)
    FlaskServer(create_baseline_app, options).run()


if __name__ == "__main__":
    main()
