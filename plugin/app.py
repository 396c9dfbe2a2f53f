"""The Flask application factory."""

from __future__ import annotations

import atexit
import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import IntegerConverter, Map

from plugin import metrics
from plugin.blueprints import register_blueprints
from plugin.inbox import SqlInbox
from plugin.processing import process_delivery
from plugin.queue import InProcessQueue, RqQueue, WorkQueue
from plugin.runtime import Runtime
from plugin.sessions import KeptSerializerSessionInterface
from plugin.settings import Settings
from webhooks.views import INBOX_EXTENSION, MAX_BODY_BYTES

RUNTIME_EXTENSION = "leanguard.runtime"
QUEUE_EXTENSION = "leanguard.queue"
JSON_PREFIXES = ("/webhooks", "/api", "/connect", "/healthz", "/readyz")
DATABASE_RETRY_AFTER_S = 30
"""What a request that met an unreachable database is told to wait (``Retry-After``)."""
MAX_URL_INT = 2**31 - 1
"""The largest id an ``<int:...>`` URL part may name: ids in URLs are INTEGER columns."""

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
    app.session_interface = KeptSerializerSessionInterface()
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
        # Tracker calls made in this process (Connect, re-evaluations) add to the shared sums.
        metrics.COUNTERS.share_via(queue.redis)
    else:
        metrics.COUNTERS.share_via(None)
        in_process = InProcessQueue(runtime, process_delivery)
        if start_worker:
            in_process.start()
            atexit.register(in_process.stop)
        queue = in_process
    app.extensions[RUNTIME_EXTENSION] = runtime
    app.extensions[QUEUE_EXTENSION] = queue
    app.extensions[INBOX_EXTENSION] = SqlInbox(runtime, queue)

    # Before the routes are added: each route binds its converters when it is registered.
    app.url_map.converters["int"] = BoundedInt
    register_blueprints(app)

    @app.before_request
    def _refresh_rules() -> None:
        # Picks up an edited LEANGUARD_RULES in every web process (throttled; see Runtime).
        runtime.refresh_rules()

    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    return app


class BoundedInt(IntegerConverter):
    """``<int:...>`` that does not match a number no id can be (a 404, not a database error).

    Werkzeug's converter takes any length of digits; PostgreSQL refuses more than 2**31 - 1 in
    an INTEGER column and SQLite more than 2**63 - 1, and either refusal would be a 500.
    """

    def __init__(
        self,
        map: Map,
        fixed_digits: int = 0,
        min: int | None = None,
        max: int | None = None,
        signed: bool = False,
    ) -> None:
        super().__init__(map, fixed_digits, min, MAX_URL_INT if max is None else max, signed)


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
    if _database_unreachable(exc):
        return _database_unavailable(exc)
    log.exception("http.unexpected-error", extra={"path": request.path})
    response = jsonify(code="internal_error", message="Something went wrong on our side.")
    response.status_code = 500
    return response


def _database_unreachable(exc: BaseException) -> bool:
    """Tell whether an error says the database is out of reach (restarting, full, network)."""
    if isinstance(exc, PoolTimeout | DisconnectionError):
        return True
    # OperationalError (server gone, connection refused) or an invalidated connection; a bad
    # statement (ProgrammingError, IntegrityError) is a bug and stays a 500.
    return isinstance(exc, DBAPIError) and (
        exc.connection_invalidated or type(exc).__name__ in ("OperationalError", "InterfaceError")
    )


def _database_unavailable(exc: BaseException) -> Response:
    """Answer 503 with Retry-After: the sender may try again; nothing was lost."""
    # The message of a database error can hold statement parameters; log its type only.
    log.warning(
        "http.database-unavailable", extra={"path": request.path, "error": type(exc).__name__}
    )
    if _wants_json():
        response = jsonify(
            code="unavailable", message="The service cannot reach its database; retry later."
        )
    else:
        response = Response(
            "leanguard cannot reach its database right now; try again in a moment.",
            mimetype="text/plain",
        )
    response.status_code = 503
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
    return response
