"""HTML pages (home, item details, setup) and the health and metrics endpoints."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request

from plugin import metrics as figures
from plugin.links import item_path
from plugin.queue import WorkQueue
from plugin.runtime import Runtime
from plugin.storage import (
    count_sites_with_item,
    delivery_counts,
    find_site_work_item,
    find_work_item,
    latest_evaluation,
    latest_results,
)
from rules import Evaluation

bp = Blueprint("pages", __name__)
bp.add_app_template_global(item_path)


def _runtime() -> Runtime:
    runtime: Runtime = current_app.extensions["leanguard.runtime"]
    return runtime


def _queue() -> WorkQueue:
    queue: WorkQueue = current_app.extensions["leanguard.queue"]
    return queue


@bp.get("/")
def home() -> str:
    """Say what leanguard is, which trackers are connected, and show the latest results."""
    runtime = _runtime()
    with runtime.database.session() as session:
        rows = [
            (item, evaluation.evaluation())
            for item, evaluation in latest_results(session, limit=50)
        ]
        counts = delivery_counts(session)
    settings = runtime.settings
    trackers = [
        {
            "name": "Jira",
            "connected": bool(settings.jira_url and settings.jira_api_token),
            "site": settings.jira_url,
            "webhook": bool(settings.jira_webhook_secret),
        },
        {
            "name": "Linear",
            "connected": bool(settings.linear_api_key),
            "site": "api key set" if settings.linear_api_key else "",
            "webhook": bool(settings.linear_webhook_secret),
        },
    ]
    return render_template(
        "home.html",
        rows=rows,
        trackers=trackers,
        counts=counts,
        rules_error=runtime.rules_error,
        catalog=runtime.catalog,
    )


@bp.get("/items/<tracker>/<path:key>")
def item_details(tracker: str, key: str) -> str:
    """Render an item's latest result tree: the page every card links to."""
    runtime = _runtime()
    site = request.args.get("site", "")
    with runtime.database.session() as session:
        if site:
            row = find_site_work_item(session, tracker=tracker, site=site, key=key)
        elif count_sites_with_item(session, tracker=tracker, key=key) > 1:
            # Never guess between sites: one site's item must not show on another's link.
            abort(
                404,
                description=f"Several sites have {tracker} item {key}; open it from the link "
                "on its card, which names its site.",
            )
        else:
            row = find_work_item(session, tenant_id=None, tracker=tracker, key=key)
        if row is None:
            abort(404, description=f"leanguard has not seen {tracker} item {key} yet.")
        latest = latest_evaluation(session, work_item_id=row.id)
        item = row.item()
        evaluation: Evaluation | None = latest.evaluation() if latest else None
        evaluated_at = latest.evaluated_at if latest else None
    return render_template(
        "item.html", item=item, evaluation=evaluation, evaluated_at=evaluated_at, row=row
    )


@bp.get("/setup")
def setup() -> str:
    """Show how to connect Jira Cloud, Jira Data Center and Linear."""
    return render_template("setup.html", base_url=_runtime().settings.base_url.rstrip("/"))


@bp.get("/healthz")
def healthz() -> Response:
    """Answer while the process is alive."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Answer 200 when the database and the queue are reachable, else 503.

    A broken rules file does not make the service unready (the last good rules keep running);
    ``rules`` says whether the file in force loaded cleanly, and ``rules_error`` why not.
    """
    runtime = _runtime()
    database_ok = runtime.database.ping()
    queue_ok = _queue().ping()
    status = 200 if database_ok and queue_ok else 503
    checks: dict[str, Any] = {
        "database": database_ok,
        "queue": queue_ok,
        "rules": not runtime.rules_error,
    }
    body: dict[str, Any] = {"status": "ok" if status == 200 else "unavailable", "checks": checks}
    if runtime.rules_error:
        body["rules_error"] = runtime.rules_error
    return jsonify(body), status


@bp.get("/metrics")
def metrics() -> Response:
    """Expose deliveries, queue depth, job latency and tracker calls for Prometheus."""
    runtime = _runtime()
    with runtime.database.session() as session:
        text = figures.render(session, queue=_queue(), rules_valid=not runtime.rules_error)
    return Response(text, mimetype="text/plain; version=0.0.4")
