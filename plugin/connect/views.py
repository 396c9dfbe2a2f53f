"""Connect endpoints: the descriptor, lifecycle callbacks and the issue-view panel."""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Request,
    Response,
    current_app,
    jsonify,
    make_response,
    render_template,
    request,
)
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import IntegrityError

from plugin.api.core import CONNECT_CONTEXT_EXTENSION, ApiError, Principal
from plugin.connect.descriptor import Descriptor, DescriptorError
from plugin.connect.errors import ConnectError
from plugin.connect.inbound import Caller, ConnectGate, json_body
from plugin.connect.keys import InstallKeys
from plugin.connect.tenants import (
    install,
    secret_box,
    set_enabled,
    tenant_by_client_key,
    uninstall,
)
from plugin.runtime import Runtime
from plugin.storage import find_work_item, latest_evaluation
from webhooks.errors import BadSignature
from webhooks.views import CONNECT_VERIFIER_EXTENSION

log = logging.getLogger(__name__)

bp = Blueprint("connect", __name__)

CONNECT_EXTENSION = "leanguard.connect"
RUNTIME_EXTENSION = "leanguard.runtime"
_ISSUE_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*-[0-9]+")
_ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24">'
    '<circle cx="12" cy="12" r="10" fill="none" stroke="#172b4d" stroke-width="2"/>'
    '<circle cx="12" cy="12" r="5" fill="none" stroke="#172b4d" stroke-width="2"/>'
    '<circle cx="12" cy="12" r="1.5" fill="#172b4d"/></svg>'
)


class ConnectTokenRefused(BadSignature):
    """A Connect webhook whose token is refused; the body names the precise reason."""

    code = "connect_token_refused"

    def __init__(self, error: ConnectError) -> None:
        super().__init__(error.message)
        self.reason = error.code

    def to_dict(self) -> dict[str, str]:
        """Return ``{code, message}`` with the precise reason as the code."""
        return {"code": self.reason, "message": self.message}


def register_connect(app: Flask) -> None:
    """Serve Connect: its blueprint, the webhook verifier and the API's context-token hook."""
    try:
        descriptor = Descriptor.load()
    except DescriptorError as exc:
        # Connect is one door among others: without its descriptor the service runs without it.
        log.error("connect.descriptor-unusable", extra={"error": str(exc)})
        return
    runtime: Runtime = app.extensions[RUNTIME_EXTENSION]
    settings = runtime.settings
    app.extensions[CONNECT_EXTENSION] = ConnectGate(
        runtime,
        descriptor=descriptor,
        keys=InstallKeys(settings.connect_install_keys_url),
        box=secret_box(settings),
    )
    app.extensions[CONNECT_VERIFIER_EXTENSION] = verify_webhook
    app.extensions[CONNECT_CONTEXT_EXTENSION] = context_principal
    app.register_blueprint(bp)


def verify_webhook(req: Request) -> str:
    """Verify a Connect webhook (HS256, exact qsh) and return its tenant's site."""
    try:
        caller = _gate().tenant_request(req, allow_context_qsh=False)
    except ConnectError as error:
        raise ConnectTokenRefused(error) from error
    return caller.site


def context_principal(req: Request) -> Principal | None:
    """Accept a Connect token (a page's context token included) on the API, scoped to its tenant."""
    try:
        # Pages open with the token in ``?jwt=`` (bound to the page by its qsh); their scripts
        # then send context tokens in the header.
        caller = _gate().tenant_request(req, allow_context_qsh=True, token_in_query=True)
    except ConnectError as error:
        raise ApiError(error.status, error.code, error.message) from error
    return Principal(
        name=caller.account_id or f"connect:{caller.client_key}",
        tenant_id=caller.tenant_id,
        account_id=caller.account_id,
    )


@bp.errorhandler(ConnectError)
def _answer_error(error: ConnectError) -> ResponseReturnValue:
    response = jsonify(error.to_dict())
    response.status_code = error.status
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'JWT realm="leanguard"'
    return response


@bp.get("/atlassian-connect.json")
def descriptor() -> Response:
    """Serve the descriptor with this service's base URL."""
    gate = _gate()
    return jsonify(gate.descriptor.render(gate.runtime.settings.base_url))


@bp.get("/connect/icon.svg")
def icon() -> Response:
    """Serve the icon of the issue-context module."""
    response = Response(_ICON, mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@bp.post("/connect/installed")
def installed() -> ResponseReturnValue:
    """Store a tenant from a signed install; a reinstall rotates its shared secret."""
    gate = _gate()
    installation = gate.lifecycle(request, installing=True)
    site = gate.install_site(installation)
    settings = gate.runtime.settings
    try:
        with gate.runtime.database.session() as session:
            tenant = install(
                session,
                installation,
                site=site,
                box=gate.box,
                status_property=gate.descriptor.status_property,
                api_token_site=settings.jira_url,
            )
            tenant_id = tenant.id
    except IntegrityError as exc:
        # Two installs of one site at once: the other one won; Jira shows the error and the
        # admin can retry.
        raise ConnectError(
            "install_conflict", "Another install of this site is in progress.", status=409
        ) from exc
    if not settings.secret_key:
        log.warning(
            "connect.secret-key-missing: LEANGUARD_SECRET_KEY is unset, so this tenant's secret "
            "cannot be read after a restart; set it and reinstall"
        )
    log.info(
        "connect.installed",
        extra={"client_key": installation.client_key, "site": site, "tenant_id": tenant_id},
    )
    return "", 204


@bp.post("/connect/uninstalled")
def uninstalled() -> ResponseReturnValue:
    """Disable a tenant on a signed uninstall; its items and history are kept."""
    gate = _gate()
    installation = gate.lifecycle(request)
    with gate.runtime.database.session() as session:
        tenant = uninstall(session, installation.client_key)
        found = tenant is not None
    log.info("connect.uninstalled", extra={"client_key": installation.client_key, "known": found})
    return "", 204


@bp.post("/connect/enabled")
def enabled() -> ResponseReturnValue:
    """Switch an installed tenant back on."""
    return _toggle(True)


@bp.post("/connect/disabled")
def disabled() -> ResponseReturnValue:
    """Switch a tenant off: its tokens are refused until it is enabled again."""
    return _toggle(False)


def _toggle(on: bool) -> ResponseReturnValue:
    gate = _gate()
    caller = gate.tenant_request(request, allow_context_qsh=False, allow_disabled=True)
    body_key = json_body(request).get("clientKey")
    if body_key is not None and body_key != caller.client_key:
        raise ConnectError("issuer_mismatch", "The token's iss is not the body's clientKey.")
    with gate.runtime.database.session() as session:
        tenant = tenant_by_client_key(session, caller.client_key)
        if tenant is None:
            raise ConnectError("unknown_tenant", "No Connect installation has this iss.")
        set_enabled(session, tenant, on)
    log.info("connect.enabled" if on else "connect.disabled", extra={"tenant_id": caller.tenant_id})
    return "", 204


@bp.get("/connect/issue-panel")
def issue_panel() -> ResponseReturnValue:
    """Render an issue's result tree inside Jira's issue view (page token in ``?jwt=``)."""
    gate = _gate()
    try:
        caller = gate.tenant_request(request, allow_context_qsh=False, token_in_query=True)
        key = _issue_key()
    except ConnectError as error:
        page = render_template("connect_error.html", error=error)
        return _panel_response(page, error.status)
    page = render_template(
        "connect_issue_panel.html",
        # The script host is the verified tenant's site, never a URL parameter (xdm_e):
        # the page runs whatever that host serves.
        tenant_base_url=caller.site.rstrip("/"),
        issue_key=key,
        **_result(caller, key),
    )
    return _panel_response(page, 200)


@bp.get("/connect/issue-panel/data")
def issue_panel_data() -> ResponseReturnValue:
    """Return an issue's result for the panel's refresh (a context token is accepted)."""
    caller = _gate().tenant_request(request, allow_context_qsh=True)
    key = _issue_key()
    if caller.context_token:
        _require_issue_in_context(caller, key)
    result = _result(caller, key)
    evaluation = result["evaluation"]
    evaluated_at = result["evaluated_at"]
    response = jsonify(
        issueKey=key,
        found=result["item"] is not None,
        status=evaluation.status.value if evaluation else None,
        violations=len(evaluation.failing_rules()) if evaluation else None,
        evaluatedAt=evaluated_at.isoformat(timespec="seconds") if evaluated_at else None,
        html=render_template("connect_panel_result.html", **result),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _gate() -> ConnectGate:
    gate: ConnectGate = current_app.extensions[CONNECT_EXTENSION]
    return gate


def _issue_key() -> str:
    key = request.args.get("issueKey", "")
    if not _ISSUE_KEY.fullmatch(key):
        raise ConnectError("bad_issue_key", "issueKey must be a Jira issue key.", status=400)
    return key


def _require_issue_in_context(caller: Caller, key: str) -> None:
    # A context token is bound to no URL; the issue it was issued for is the only one its
    # holder is known to be allowed to see in Jira.
    context = caller.claims.get("context")
    jira = context.get("jira") if isinstance(context, dict) else None
    issue = jira.get("issue") if isinstance(jira, dict) else None
    if not isinstance(issue, dict) or key not in (issue.get("key"), str(issue.get("id"))):
        raise ConnectError(
            "issue_not_in_context",
            "The context token was not issued for this issue.",
            status=403,
        )


def _result(caller: Caller, key: str) -> dict[str, Any]:
    runtime = _gate().runtime
    with runtime.database.session() as session:
        # Always within the caller's tenant: the same key exists on many sites.
        row = find_work_item(session, tenant_id=caller.tenant_id, tracker="jira", key=key)
        if row is None:
            return {"item": None, "evaluation": None, "evaluated_at": None, "deleted": False}
        latest = latest_evaluation(session, work_item_id=row.id)
        return {
            "item": row.item(),
            "evaluation": latest.evaluation() if latest else None,
            "evaluated_at": latest.evaluated_at if latest else None,
            "deleted": row.deleted,
        }


def _panel_response(page: str, status: int) -> Response:
    response = make_response(page, status)
    # The page URL carries the JWT: keep it out of caches and of Referer headers.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
