"""Every blueprint the application serves, registered in one place."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    """Attach the pages, webhooks, API and integrations to the app."""
    from plugin.views import bp as pages
    from webhooks.views import bp as webhooks

    app.register_blueprint(webhooks)
    app.register_blueprint(pages)

    from plugin.api import core

    app.register_blueprint(core.bp)
    # slot: Atlassian Connect (descriptor, lifecycle, JWT, issue panel)
    # slot: rules admin (API routes and pages)
    # slot: reports and backfill (API routes and pages)
