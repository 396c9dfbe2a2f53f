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
    from plugin.connect.views import register_connect

    # The blueprint, the Connect webhook verifier and the API's context-token hook.
    register_connect(app)
    from plugin.admin_views import register_rules_admin

    register_rules_admin(app)
    from plugin.api.reports import bp as reports_api
    from plugin.report_views import bp as report_pages

    app.register_blueprint(reports_api)
    app.register_blueprint(report_pages)
