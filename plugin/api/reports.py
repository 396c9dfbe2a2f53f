"""Report and backfill API: the health report as JSON or CSV, and backfills with their progress."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from plugin.api.core import (
    API_PREFIX,
    ApiError,
    current_principal,
    document,
    json_body,
    require_auth,
)
from plugin.backfill import TRACKERS, Backfiller, BackfillError, run_in_background
from plugin.reports import Options, Scope, health_report, parse_period
from plugin.reports.render import as_csv
from plugin.runtime import Runtime
from plugin.storage.backfills import BackfillRow, list_backfills

MAX_REVIEW_DAYS = 3650

# The core blueprint is registered before this module is imported, and Flask refuses routes on
# a registered blueprint; a blueprint of its own under the same prefix serves the same paths.
bp = Blueprint("reports_api", __name__, url_prefix=API_PREFIX)


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Response:
    return exc.response()


def _runtime() -> Runtime:
    runtime: Runtime = current_app.extensions["leanguard.runtime"]
    return runtime


def report_scope() -> Scope:
    """The scope a request asks for; a Connect caller only ever sees its own tenant."""
    tracker = request.args.get("tracker") or None
    if tracker is not None and tracker not in TRACKERS:
        raise ApiError(400, "bad_tracker", "tracker must be jira or linear.")
    tenant: int | None = None
    raw_tenant = request.args.get("tenant")
    if raw_tenant:
        try:
            tenant = int(raw_tenant)
        except ValueError as exc:
            raise ApiError(400, "bad_tenant", "tenant must be a tenant id.") from exc
    principal = current_principal()
    if principal.tenant_id is not None:
        tenant = principal.tenant_id
    return Scope(tenant_id=tenant, tracker=tracker, project=request.args.get("project") or None)


def report_options() -> Options:
    """The options a request asks for (only the review window can be chosen)."""
    raw = request.args.get("review_days")
    if not raw:
        return Options()
    try:
        days = int(raw)
    except ValueError as exc:
        raise ApiError(400, "bad_review_days", "review_days must be a whole number.") from exc
    if not 0 <= days <= MAX_REVIEW_DAYS:
        raise ApiError(400, "bad_review_days", f"review_days must be 0..{MAX_REVIEW_DAYS}.")
    return Options(review_days=days)


@bp.get("/reports/health")
@require_auth
def health() -> Response:
    """The feature-factory health report for a scope and period, as JSON or CSV."""
    scope = report_scope()
    options = report_options()
    try:
        period = parse_period(
            request.args.get("from"), request.args.get("to"), today=datetime.now(UTC).date()
        )
    except ValueError as exc:
        raise ApiError(400, "bad_period", f"from/to must be dates (YYYY-MM-DD): {exc}") from exc
    result = health_report(_runtime().database, scope, period, options)
    if request.args.get("format") == "csv":
        name = "-".join(p for p in ("health", scope.tracker, scope.project) if p)
        return Response(
            as_csv(result),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    if request.args.get("format") not in (None, "", "json"):
        raise ApiError(400, "bad_format", "format must be json or csv.")
    return jsonify(result.to_dict())


@bp.post("/backfills")
@require_auth
def create_backfill() -> tuple[Response, int]:
    """Start (or resume) a project's backfill in the background; 202 with its record."""
    body = json_body()
    tracker, project = body.get("tracker"), body.get("project")
    if tracker not in TRACKERS:
        raise ApiError(400, "bad_tracker", "tracker must be jira or linear.")
    if not isinstance(project, str) or not project.strip():
        raise ApiError(400, "bad_project", "project must be a Jira project or Linear team key.")
    principal = current_principal()
    runtime = _runtime()
    try:
        tenant = Backfiller(runtime).tenant_for(str(tracker))
        if principal.tenant_id is not None and principal.tenant_id != tenant.id:
            raise ApiError(403, "other_tenant", "A Connect tenant may only backfill itself.")
        record = run_in_background(runtime, tenant, project.strip(), requested_by=principal.name)
    except BackfillError as exc:
        raise ApiError(409, "backfill_refused", str(exc)) from exc
    return jsonify(record.to_dict()), 202


@bp.get("/backfills")
@require_auth
def backfills() -> Response:
    """Backfills with their progress, newest first."""
    principal = current_principal()
    with _runtime().database.session() as session:
        rows = list_backfills(
            session,
            tenant_id=principal.tenant_id,
            tracker=request.args.get("tracker") or None,
            project=request.args.get("project") or None,
        )
        return jsonify({"backfills": [row.to_dict() for row in rows]})


@bp.get("/backfills/<int:backfill_id>")
@require_auth
def backfill(backfill_id: int) -> Response:
    """One backfill's progress."""
    principal = current_principal()
    with _runtime().database.session() as session:
        row = session.get(BackfillRow, backfill_id)
        if row is None or (
            principal.tenant_id is not None and row.tenant_id != principal.tenant_id
        ):
            raise ApiError(404, "not_found", f"No backfill {backfill_id}.")
        return jsonify(row.to_dict())


def _params(*names: str) -> list[dict[str, Any]]:
    described = {
        "tracker": "jira or linear",
        "project": "Jira project key or Linear team key",
        "tenant": "tenant id",
        "from": "first day, YYYY-MM-DD (default: 12 weeks ago, a Monday)",
        "to": "last day, YYYY-MM-DD, included (default: today)",
        "review_days": "days after done within which an outcome review counts (default 30)",
        "format": "json (default) or csv (the weekly series)",
    }
    return [
        {
            "name": n,
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": described[n],
        }
        for n in names
    ]


_BACKFILL_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "tracker": {"type": "string"},
        "project": {"type": "string"},
        "state": {"type": "string", "enum": ["running", "done", "failed"]},
        "items_seen": {"type": "integer"},
        "items_evaluated": {"type": "integer"},
        "items_total": {"type": "integer", "nullable": True},
        "message": {"type": "string"},
        "resumable": {"type": "boolean"},
    },
}

document(
    "/reports/health",
    {
        "get": {
            "summary": "Feature-factory health report: outcome versus output",
            "description": "Figures by name (epics_delivered, child_issues_done, epics_started, "
            "epics_started_lean_ready, epics_delivered_with_outcome_review, "
            "hypotheses_invalidated, open_violations, median_days_to_fix, waived, "
            "health_score, ...), the score's components, a weekly series, one row per "
            "project and the worst offenders. See docs/health-report.md.",
            "parameters": _params(
                "tracker", "project", "tenant", "from", "to", "review_days", "format"
            ),
            "responses": {
                "200": {
                    "description": "The report",
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                }
            },
        }
    },
)
document(
    "/backfills",
    {
        "post": {
            "summary": "Start or resume a project's backfill (history import, no tracker writes)",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["tracker", "project"],
                            "properties": {
                                "tracker": {"type": "string", "enum": list(TRACKERS)},
                                "project": {"type": "string"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "202": {
                    "description": "Started; poll its progress",
                    "content": {"application/json": {"schema": _BACKFILL_SCHEMA}},
                },
                "409": {"description": "Already running, or no credentials for the tracker"},
            },
        },
        "get": {
            "summary": "Backfills with their progress, newest first",
            "parameters": _params("tracker", "project"),
            "responses": {"200": {"description": "The backfills"}},
        },
    },
)
document(
    "/backfills/{backfill_id}",
    {
        "get": {
            "summary": "One backfill's progress",
            "parameters": [
                {
                    "name": "backfill_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer"},
                }
            ],
            "responses": {
                "200": {
                    "description": "The backfill",
                    "content": {"application/json": {"schema": _BACKFILL_SCHEMA}},
                },
                "404": {"description": "No such backfill"},
            },
        }
    },
)
