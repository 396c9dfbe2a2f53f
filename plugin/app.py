"""The Flask application factory."""

from __future__ import annotations

import atexit
import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from plugin.blueprints import register_blueprints
from plugin.inbox import SqlInbox
from plugin.processing import process_delivery
from plugin.queue import InProcessQueue, RqQueue, WorkQueue
from plugin.runtime import Runtime
from plugin.settings import Settings
from webhooks.views import INBOX_EXTENSION, MAX_BODY_BYTES

RUNTIME_EXTENSION = "leanguard.runtime"
QUEUE_EXTENSION = "leanguard.queue"
JSON_PREFIXES = ("/webhooks", "/api", "/connect", "/healthz", "/readyz")

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    *,
    runtime: Runtime | None = None,
    start_worker: bool = True,
    test_config: Mapping[str, Any] | None = None,
) -> Flask:
    """Build the service: settings, storage, queue, inbox and blueprints."""
    settings = settings or (runtime.settings if runtime else Settings.from_env())
    app = Flask(__name__)
    app.config.from_mapping(
        SECRET_KEY=settings.effective_secret_key(),
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        LEANGUARD_JIRA_WEBHOOK_SECRET=settings.jira_webhook_secret,
        LEANGUARD_LINEAR_WEBHOOK_SECRET=settings.linear_webhook_secret,
    )
    if test_config:
        app.config.from_mapping(test_config)

    runtime = runtime or Runtime.from_settings(settings)
    if runtime.database.dialect == "sqlite" or settings.database_url == "":
        # The embedded default migrates on start; PostgreSQL deployments run `leanguard migrate`.
        runtime.database.upgrade()
    queue: WorkQueue
    if settings.redis_url:
        queue = RqQueue(runtime, settings.redis_url)
    else:
        in_process = InProcessQueue(runtime, process_delivery)
        if start_worker:
            in_process.start()
            atexit.register(in_process.stop)
        queue = in_process
    app.extensions[RUNTIME_EXTENSION] = runtime
    app.extensions[QUEUE_EXTENSION] = queue
    app.extensions[INBOX_EXTENSION] = SqlInbox(runtime, queue)

    register_blueprints(app)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    return app


def _wants_json() -> bool:
    return request.path.startswith(JSON_PREFIXES) or request.accept_mimetypes.best == (
        "application/json"
    )


def _http_error(exc: HTTPException) -> Response | HTTPException:
    """Answer HTTP errors as JSON ``{code, message}`` on machine routes."""
    if not _wants_json():
        return exc
    code = (exc.name or "error").lower().replace(" ", "_")
    response = jsonify(code=code, message=exc.description or exc.name)
    response.status_code = exc.code or 500
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _unexpected_error(exc: Exception) -> Response:
    """Log a bug with its traceback and answer 500 without details."""
    if isinstance(exc, HTTPException):
        return _http_error(exc)  # type: ignore[return-value]
    log.exception("http.unexpected-error", extra={"path": request.path})
    response = jsonify(code="internal_error", message="Something went wrong on our side.")
    response.status_code = 500
    return response
