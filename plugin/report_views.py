"""The health report pages: an overview and one page per project, printable, with a backfill."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from plugin import admin_auth
from plugin.backfill import TRACKERS, Backfiller, BackfillError, run_in_background
from plugin.reports import HealthReport, Options, Scope, health_report, parse_period
from plugin.reports.render import GROUPS, as_csv, charts
from plugin.runtime import Runtime
from plugin.storage.backfills import latest_backfill

bp = Blueprint("reports", __name__)

REFRESH_S = 5
"""How often a report page with a running backfill reloads itself."""


def _runtime() -> Runtime:
    runtime: Runtime = current_app.extensions["leanguard.runtime"]
    return runtime


def _report(tracker: str | None, project: str | None) -> HealthReport:
    if tracker is not None and tracker not in TRACKERS:
        abort(404, description=f"leanguard knows no tracker {tracker!r}.")
    tenant = request.args.get("tenant", type=int)
    try:
        period = parse_period(
            request.args.get("from"), request.args.get("to"), today=datetime.now(UTC).date()
        )
    except ValueError:
        abort(400, description="from and to are dates: YYYY-MM-DD.")
    days = request.args.get("review_days", type=int)
    options = Options(review_days=days) if days is not None and 0 <= days <= 3650 else Options()
    scope = Scope(tenant_id=tenant, tracker=tracker, project=project)
    return health_report(_runtime().database, scope, period, options)


def _query(**changes: Any) -> str:
    kept = {k: v for k, v in request.args.items() if k in ("from", "to", "tenant", "review_days")}
    kept.update({k: v for k, v in changes.items() if v is not None})
    return ("?" + urlencode(kept)) if kept else ""


def _page(report: HealthReport, **context: Any) -> str:
    connect = request.args.get("connect") == "1"
    return render_template(
        "report.html",
        layout="report_frame.html" if connect else "base.html",
        connect=connect,
        report=report,
        data=report.to_dict(),
        groups=GROUPS,
        charts=charts(report),
        query=_query(),
        **context,
    )


@bp.get("/reports")
def overview() -> str:
    """Every tracker and project: figures, weekly trend, worst offenders."""
    return _page(_report(None, None), tracker=None, project=None, backfill=None)


@bp.get("/reports/health.csv")
def overview_csv() -> Response:
    """The overview's weekly series as CSV."""
    return _csv(_report(None, None), "health")


@bp.get("/reports/<tracker>/<project>")
def project_report(tracker: str, project: str) -> str:
    """One project's (or Linear team's) report, with its backfill."""
    report = _report(tracker, project)
    with _runtime().database.session() as session:
        record = latest_backfill(
            session, tenant_id=report.scope.tenant_id, tracker=tracker, project=project
        )
        backfill = record.to_dict() if record else None
    admin = admin_auth.session_is_admin()
    return _page(
        report,
        tracker=tracker,
        project=project,
        backfill=backfill,
        refresh=REFRESH_S if backfill and backfill["state"] == "running" else None,
        admin=admin,
        csrf=admin_auth.csrf_token() if admin else "",
        login_url="/admin/login?" + urlencode({"next": f"/reports/{tracker}/{project}"}),
        message=request.args.get("message", ""),
    )


@bp.get("/reports/<tracker>/<project>/health.csv")
def project_csv(tracker: str, project: str) -> Response:
    """One project's weekly series as CSV."""
    return _csv(_report(tracker, project), f"health-{tracker}-{project}")


@bp.post("/reports/<tracker>/<project>/backfill")
def start_backfill(tracker: str, project: str) -> BaseResponse:
    """Start or resume the project's backfill: admins only, with the session's CSRF token."""
    if tracker not in TRACKERS:
        abort(404)
    if not admin_auth.session_is_admin():
        abort(401, description="Log in as admin (the rules admin's login) to start a backfill.")
    if not admin_auth.csrf_valid(request.form.get(admin_auth.CSRF_FIELD)):
        abort(400, description="The form expired; reload the page and try again.")
    runtime = _runtime()
    try:
        tenant = Backfiller(runtime).tenant_for(tracker)
        record = run_in_background(runtime, tenant, project, requested_by="admin")
        message = f"Backfill #{record.id} started."
    except BackfillError as exc:
        message = f"Backfill not started: {exc}."
    return redirect(f"/reports/{tracker}/{project}?" + urlencode({"message": message}), code=303)


def _csv(report: HealthReport, name: str) -> Response:
    return Response(
        as_csv(report),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )
