"""The rules admin pages: projects, a project's rules in words, form, editor, preview, history."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import yaml
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    redirect,
    render_template,
    request,
)
from werkzeug.wrappers import Response as BaseResponse

from plugin import admin_auth
from plugin.api.core import CONNECT_CONTEXT_EXTENSION, ApiError, Principal
from plugin.api.rulesets import bp as rules_api
from plugin.api.rulesets import save_and_recheck
from plugin.reevaluation import EXTENSION as RUNNER_EXTENSION
from plugin.reevaluation import ReevaluationRunner
from plugin.rules_form import KINDS, MODES, SEVERITIES, apply_choices, describe, parse_form
from plugin.rules_preview import Preview, preview
from plugin.rules_store import (
    DEFAULT_PROJECT,
    TRACKERS,
    AccessError,
    compile_text,
    list_projects,
    parent_of,
    pick_tenant,
    resolve,
    revert_note,
    scope_project,
    scope_title,
    starter_text,
    unified_diff,
    version_row,
)
from plugin.runtime import Runtime
from plugin.storage import Tenant, latest_ruleset, ruleset_history
from plugin.storage.reevaluations import latest_reevaluation
from rules import RuleSet, RuleSetError
from rules.ruleset import Problem

bp = Blueprint("rules_admin", __name__, url_prefix="/admin")

_Page = str | BaseResponse | tuple[str, int]


def register_rules_admin(app: Flask) -> None:
    """Attach the rules API and admin pages, and the runner that re-checks items after a save."""
    runtime: Runtime = app.extensions["leanguard.runtime"]
    runner = ReevaluationRunner(runtime, app.extensions.get("leanguard.queue"))
    app.extensions[RUNNER_EXTENSION] = runner
    app.register_blueprint(rules_api)
    app.register_blueprint(bp)
    # The admin session is a cookie; Lax keeps other sites' forms from riding on it.
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    runner.resume_stale()


def _runtime() -> Runtime:
    runtime: Runtime = current_app.extensions["leanguard.runtime"]
    return runtime


# Who is asking -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """The page's caller and how its forms prove themselves."""

    principal: Principal
    connect: bool
    hidden: dict[str, str]
    """Hidden form fields every form carries (the CSRF or page token)."""
    api_headers: dict[str, str]
    """Headers the page's scripts send to the API."""
    query: dict[str, str]
    """Query parameters links keep (Connect mode and its page token)."""


def _caller() -> Caller | BaseResponse:
    """Return the caller, a redirect to the login page, or abort with 401/400."""
    connect = request.values.get("connect") == "1"
    if connect:
        principal = _connect_principal()
        if principal is None:
            abort(401, description="This page opens from Jira's project settings.")
        token = admin_auth.page_token(principal)
        return Caller(
            principal,
            True,
            {admin_auth.PAGE_TOKEN_FIELD: token, "connect": "1"},
            {admin_auth.PAGE_TOKEN_HEADER: token},
            {"connect": "1", admin_auth.PAGE_TOKEN_FIELD: token},
        )
    if not admin_auth.session_is_admin():
        if request.method == "POST":
            abort(401, description="Log in again: the admin session has ended.")
        return redirect("/admin/login?" + urlencode({"next": request.full_path.rstrip("?")}))
    if request.method == "POST" and not admin_auth.csrf_valid(
        request.form.get(admin_auth.CSRF_FIELD)
    ):
        abort(400, description="The form has expired; reload the page and try again.")
    csrf = admin_auth.csrf_token()
    return Caller(
        Principal(name=admin_auth.ADMIN_NAME),
        False,
        {admin_auth.CSRF_FIELD: csrf},
        {admin_auth.CSRF_HEADER: csrf},
        {},
    )


def _connect_principal() -> Principal | None:
    # Forms and redirects carry the page token signed when the page was first opened; the
    # first load carries Jira's own context token, which the Connect adapter verifies.
    from_page = admin_auth.page_principal(request.values.get(admin_auth.PAGE_TOKEN_FIELD))
    if from_page is not None:
        return from_page
    if request.method != "GET":
        return None
    verify: Callable[[Any], Principal | None] | None = current_app.extensions.get(
        CONNECT_CONTEXT_EXTENSION
    )
    try:
        principal = verify(request) if verify is not None else None
    except ApiError:
        principal = None
    if principal is None or principal.tenant_id is None:
        return None
    return principal


# Login ---------------------------------------------------------------------------------------


@bp.get("/login")
def login_form() -> str:
    """Ask for the admin token."""
    return render_template(
        "admin_login.html",
        csrf=admin_auth.csrf_token(),
        next=_safe_next(request.args.get("next")),
        configured=bool(admin_auth.admin_token()),
        error=None,
    )


@bp.post("/login")
def login() -> _Page:
    """Check the admin token and start a session."""
    target = _safe_next(request.form.get("next"))
    if not admin_auth.csrf_valid(request.form.get(admin_auth.CSRF_FIELD)):
        error = "The form has expired; try again."
    elif admin_auth.log_in(request.form.get("token", "")):
        return redirect(target)
    else:
        error = "That is not the admin token."
    page = render_template(
        "admin_login.html",
        csrf=admin_auth.csrf_token(),
        next=target,
        configured=bool(admin_auth.admin_token()),
        error=error,
    )
    return page, 401


@bp.post("/logout")
def logout() -> BaseResponse:
    """End the admin session."""
    if not admin_auth.csrf_valid(request.form.get(admin_auth.CSRF_FIELD)):
        abort(400, description="The form has expired; reload the page and try again.")
    admin_auth.log_out()
    return redirect("/admin/login")


def _safe_next(value: str | None) -> str:
    # Only pages of this admin: anything else would make the login an open redirect.
    if value and value.startswith("/admin") and not value.startswith("/admin/login"):
        return value
    return "/admin"


# Projects ------------------------------------------------------------------------------------


@bp.get("")
@bp.get("/")
def projects() -> _Page:
    """List projects with the rules in force."""
    caller = _caller()
    if not isinstance(caller, Caller):
        return caller
    runtime = _runtime()
    with runtime.database.session() as session:
        rows = list_projects(session, runtime, tenant_id=caller.principal.tenant_id)
        tenants = list(session.query(Tenant).order_by(Tenant.id))
        if caller.principal.tenant_id is not None:
            tenants = [t for t in tenants if t.id == caller.principal.tenant_id]
    return render_template(
        "admin_projects.html",
        caller=caller,
        page_caller=caller,
        rows=rows,
        tenants=tenants,
        trackers=TRACKERS,
        default_project=DEFAULT_PROJECT,
        link=_link,
        rules_error=runtime.rules_error,
    )


@bp.get("/open")
def open_project() -> _Page:
    """Go to a project typed into the projects page."""
    caller = _caller()
    if not isinstance(caller, Caller):
        return caller
    tracker = request.args.get("tracker", "")
    project = request.args.get("project", "").strip()
    if tracker not in TRACKERS or not project:
        abort(400, description="Choose a tracker and type a project key.")
    query = dict(caller.query)
    if request.args.get("tenant"):
        query["tenant"] = request.args["tenant"]
    return redirect(_link(tracker, project, **query))


def _link(tracker: str, project: str | None, **query: Any) -> str:
    segment = project if project is not None else DEFAULT_PROJECT
    params = {k: v for k, v in query.items() if v not in (None, "")}
    return f"/admin/{tracker}/{segment}" + (f"?{urlencode(params)}" if params else "")


# One project ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a form post produced, shown on the page."""

    text: str
    problems: list[Problem]
    preview: Preview | None = None
    preview_current: RuleSet | None = None
    preview_candidate: RuleSet | None = None
    notice: str = ""
    validated: bool = False


@bp.get("/<tracker>/<project>")
def project(tracker: str, project: str) -> _Page:
    """Show a project's rules in words, the form, the editor, history and re-check progress."""
    caller = _caller()
    if not isinstance(caller, Caller):
        return caller
    notice = ""
    if request.args.get("saved"):
        notice = f"Saved version {request.args['saved']}. Open items are being re-checked."
    return _render(caller, tracker, project, None, notice)


@bp.post("/<tracker>/<project>")
def project_action(tracker: str, project: str) -> _Page:
    """Apply the form, validate, preview, save or revert; saving redirects back to the page."""
    caller = _caller()
    if not isinstance(caller, Caller):
        return caller
    action = request.form.get("action", "validate")
    text = request.form.get("yaml", "")
    scope = scope_project(project)
    runtime = _runtime()
    with runtime.database.session() as session:
        tenant = _tenant(session, caller, tracker)
        session.expunge(tenant)
    if action in ("save", "revert"):
        return _save(caller, tenant, tracker, project, action, text)
    outcome = Outcome(text=text, problems=[])
    with runtime.database.session() as session:
        if action == "form":
            if not text.strip():
                text = starter_text(
                    parent_of(session, runtime, tenant.id, tracker, scope).ruleset, tracker, scope
                )
            parent = _extended(session, runtime, tenant, tracker, scope, text)
            choices = parse_form(request.form, request.form.getlist)
            try:
                outcome.text = apply_choices(text, parent, choices)
            except yaml.YAMLError:
                outcome.problems = _problems(session, tenant, tracker, scope, text)
            else:
                outcome.notice = "The form's choices are in the YAML below; check and save."
        candidate = _candidate(session, tenant, tracker, scope, outcome)
        if action == "preview" and candidate is not None:
            outcome.preview = preview(
                session, runtime, tenant=tenant, tracker=tracker, project=scope, candidate=candidate
            )
            outcome.preview_current = resolve(session, runtime, tenant.id, tracker, scope).ruleset
            outcome.preview_candidate = candidate
    status = 400 if outcome.problems else 200
    return _render(caller, tracker, project, outcome, outcome.notice), status


def _save(
    caller: Caller, tenant: Tenant, tracker: str, project: str, action: str, text: str
) -> _Page:
    scope = scope_project(project)
    note = request.form.get("note", "").strip()
    runtime = _runtime()
    try:
        if action == "revert":
            version = _int(request.form.get("version"))
            with runtime.database.session() as session:
                old = (
                    version_row(
                        session,
                        tenant_id=tenant.id,
                        tracker=tracker,
                        project=scope,
                        version=version,
                    )
                    if version
                    else None
                )
                if old is None:
                    abort(400, description="Choose a version to revert to.")
                text = old.source_text
            note = revert_note(version, note)
            base_version, check_base = None, False
        else:
            # An edit is refused when someone saved another version since the form was loaded.
            base = request.form.get("base_version", "")
            base_version, check_base = (_int(base) if base else None), True
        row, _ = save_and_recheck(
            tenant,
            tracker,
            scope,
            text=text,
            note=note,
            author=caller.principal.name,
            principal=caller.principal,
            base_version=base_version,
            check_base=check_base,
        )
    except ApiError as exc:
        problems = [
            Problem(e.get("source", ""), e.get("path", ""), e.get("message", ""))
            for e in exc.errors
        ] or [Problem(scope_title(tracker, scope), "(save)", exc.message)]
        outcome = Outcome(text=text, problems=problems)
        status = exc.status if exc.status in (400, 409) else 400
        return _render(caller, tracker, project, outcome, ""), status
    return redirect(
        _link(tracker, scope, tenant=_tenant_param(tenant), saved=row.version, **caller.query)
    )


def _tenant(session: Any, caller: Caller, tracker: str) -> Tenant:
    requested = _int(request.values.get("tenant")) if request.values.get("tenant") else None
    try:
        return pick_tenant(
            session, tracker=tracker, requested=requested, allowed=caller.principal.tenant_id
        )
    except AccessError as exc:
        abort(exc.status, description=exc.message)


def _tenant_param(tenant: Tenant) -> int | None:
    # Links name the tenant only when several sites of its tracker make it necessary.
    return tenant.id if request.values.get("tenant") else None


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        abort(400, description="Expected a whole number.")


def _problems(
    session: Any, tenant: Tenant, tracker: str, scope: str | None, text: str
) -> list[Problem]:
    try:
        compile_text(
            session, _runtime(), tenant_id=tenant.id, tracker=tracker, project=scope, text=text
        )
    except RuleSetError as exc:
        return list(exc.problems)
    return []


def _candidate(
    session: Any, tenant: Tenant, tracker: str, scope: str | None, outcome: Outcome
) -> RuleSet | None:
    try:
        candidate = compile_text(
            session,
            _runtime(),
            tenant_id=tenant.id,
            tracker=tracker,
            project=scope,
            text=outcome.text,
        )
    except RuleSetError as exc:
        outcome.problems = list(exc.problems)
        return None
    outcome.validated = True
    return candidate


def _extended(
    session: Any, runtime: Runtime, tenant: Tenant, tracker: str, scope: str | None, text: str
) -> RuleSet | None:
    """Return the rule set the YAML extends (what the form compares against), if it resolves."""
    try:
        loaded = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        return None
    if not isinstance(loaded, dict):
        # Nothing usable to read yet: the form compares against what the scope inherits.
        return parent_of(session, runtime, tenant.id, tracker, scope).ruleset
    if not loaded.get("extends"):
        return None  # every rule is defined in this YAML itself
    try:
        return compile_text(
            session,
            runtime,
            tenant_id=tenant.id,
            tracker=tracker,
            project=scope,
            text=yaml.safe_dump({"version": 1, "name": "parent", "extends": loaded["extends"]}),
        )
    except RuleSetError:
        return None


def _render(
    caller: Caller, tracker: str, project: str, outcome: Outcome | None, notice: str
) -> str:
    runtime = _runtime()
    scope = scope_project(project)
    with runtime.database.session() as session:
        tenant = _tenant(session, caller, tracker)
        found = resolve(session, runtime, tenant.id, tracker, scope)
        parent = parent_of(session, runtime, tenant.id, tracker, scope)
        history = ruleset_history(session, tenant_id=tenant.id, tracker=tracker, project=scope)
        own_row = history[0] if history else None
        own = _own(own_row.source_text if own_row is not None else "")
        if outcome is not None:
            text = outcome.text
        elif found.source.managed and found.source.path:
            text = _read(found.source.path)
        elif own_row is not None:
            text = own_row.source_text
        else:
            text = starter_text(parent.ruleset, tracker, scope)
        shown = outcome.preview_candidate if outcome and outcome.preview_candidate else None
        form_ruleset = shown or found.ruleset
        if outcome is not None and outcome.validated and shown is None:
            form_ruleset = _candidate(session, tenant, tracker, scope, Outcome(text, [])) or (
                found.ruleset
            )
        view = describe(found.ruleset, own, parent.ruleset)
        form_view = describe(form_ruleset, _own(text), parent.ruleset)
        diffs = [
            (row, unified_diff(history[i + 1] if i + 1 < len(history) else None, row))
            for i, row in enumerate(history)
        ]
        job = latest_reevaluation(session, tenant_id=tenant.id, tracker=tracker, project=scope)
        latest = latest_ruleset(session, tenant_id=tenant.id, tracker=tracker, project=scope)
        tenant_param = _tenant_param(tenant)
        page = render_template(
            "admin_project.html",
            caller=caller,
            page_caller=caller,
            tenant=tenant,
            tenant_param=tenant_param,
            tracker=tracker,
            project=project,
            scope=scope,
            title=scope_title(tracker, scope),
            found=found,
            parent=parent,
            view=view,
            form_view=form_view,
            fields=list(form_ruleset.fields.values()),
            kinds=KINDS,
            modes=MODES,
            severities=SEVERITIES,
            text=text,
            base_version=latest.version if latest is not None else "",
            history=diffs,
            job=job,
            outcome=outcome,
            notice=notice,
            link=_link,
            api_base=f"/api/v1/rulesets/{tracker}/{project}",
            api_query=f"?tenant={tenant.id}",
            now=datetime.now(UTC),
        )
    return page


def _own(text: str) -> dict[str, Any] | None:
    try:
        loaded = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        return None
    return loaded if isinstance(loaded, dict) else None


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError):
        return ""


@bp.errorhandler(401)
def _unauthorized(exc: Any) -> tuple[str, int]:
    return render_template("admin_error.html", message=exc.description, login=True), 401


@bp.errorhandler(400)
@bp.errorhandler(403)
@bp.errorhandler(404)
def _refused(exc: Any) -> tuple[str, int]:
    return render_template("admin_error.html", message=exc.description, login=False), exc.code
