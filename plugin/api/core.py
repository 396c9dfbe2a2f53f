"""What every API route shares: the blueprint, authentication, JSON errors and the OpenAPI spec."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar, cast

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, current_app, g, jsonify, request
from marshmallow import Schema, fields

API_PREFIX = "/api/v1"
CONNECT_CONTEXT_EXTENSION = "leanguard.connect_context"
"""An optional callable ``(request) -> Principal | None`` that accepts Connect context tokens."""

bp = Blueprint("api", __name__, url_prefix=API_PREFIX)

F = TypeVar("F", bound=Callable[..., Any])


class ErrorSchema(Schema):
    """The one error shape of the API."""

    code = fields.String(required=True, metadata={"description": "A stable snake_case code."})
    message = fields.String(required=True)
    errors = fields.List(
        fields.Dict(),
        metadata={"description": "Details, e.g. rule-set problems with their path."},
    )


spec = APISpec(
    title="leanguard API",
    version="1.0.0",
    openapi_version="3.0.3",
    plugins=[MarshmallowPlugin()],
    info={
        "description": "Rule sets per project, work items with their latest result, and reports."
    },
    servers=[{"url": API_PREFIX}],
)
spec.components.schema("Error", schema=ErrorSchema)
spec.components.security_scheme(
    "adminToken",
    {"type": "http", "scheme": "bearer", "description": "LEANGUARD_ADMIN_TOKEN"},
)
spec.components.security_scheme(
    "connectJwt",
    {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "`JWT <context token>` from an Atlassian Connect page (AP.context.getToken)",
    },
)


def document(path: str, operations: dict[str, Any]) -> None:
    """Add a path's operations to the OpenAPI document (``path`` without the /api/v1 prefix)."""
    for operation in operations.values():
        operation.setdefault("security", [{"adminToken": []}, {"connectJwt": []}])
        responses = operation.setdefault("responses", {})
        for status, text in (("401", "Missing or bad token"), ("400", "Bad request")):
            responses.setdefault(status, {"description": text, "content": _error_content()})
    spec.path(path=path, operations=operations)


def _error_content() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


class ApiError(Exception):
    """An error answered as JSON ``{code, message, errors}``."""

    def __init__(
        self, status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors or []

    def response(self) -> Response:
        """Render the error."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        answer = jsonify(body)
        answer.status_code = self.status
        if self.status == 401:
            answer.headers["WWW-Authenticate"] = 'Bearer realm="leanguard"'
        return answer


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Response:
    return exc.response()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the admin token holder, or a Jira user on a Connect tenant's page."""

    name: str
    tenant_id: int | None = None
    """Set for Connect callers: they may only see and change their own tenant."""
    account_id: str | None = None
    """The Jira account of a Connect caller; its permissions decide what it may change."""


def current_principal() -> Principal:
    """Return the authenticated caller of this request."""
    principal: Principal = g.leanguard_principal
    return principal


def authenticate() -> Principal:
    """Accept ``Authorization: Bearer <LEANGUARD_ADMIN_TOKEN>`` or a Connect context JWT."""
    header = request.headers.get("Authorization", "")
    runtime = current_app.extensions["leanguard.runtime"]
    admin_token: str = runtime.settings.admin_token
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
            return Principal(name="admin")
        raise ApiError(401, "bad_token", "The bearer token is not valid.")
    if scheme.upper() == "JWT" and token:
        verify = current_app.extensions.get(CONNECT_CONTEXT_EXTENSION)
        principal = verify(request) if verify is not None else None
        if principal is None:
            raise ApiError(401, "bad_token", "The Connect token is not valid.")
        return cast(Principal, principal)
    if not admin_token and CONNECT_CONTEXT_EXTENSION not in current_app.extensions:
        raise ApiError(
            401,
            "api_closed",
            "The API is closed: set LEANGUARD_ADMIN_TOKEN and send it as a bearer token.",
        )
    raise ApiError(401, "missing_token", "Send Authorization: Bearer <LEANGUARD_ADMIN_TOKEN>.")


def require_auth(view: F) -> F:
    """Let a view run only for an authenticated caller."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.leanguard_principal = authenticate()
        return view(*args, **kwargs)

    return cast(F, wrapper)


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """Serve the OpenAPI document (public: it describes, it does not reveal)."""
    return jsonify(spec.to_dict())


def json_body() -> dict[str, Any]:
    """Return the request's JSON object, or raise a 400 that says what is wrong."""
    if not request.is_json:
        raise ApiError(400, "not_json", "Send a JSON body with Content-Type: application/json.")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "The body must be a JSON object.")
    return body
