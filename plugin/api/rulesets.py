"""Rule sets per project: list, read, replace, validate, preview, history, diff and revert."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml
from flask import Blueprint, Response, current_app, g, jsonify, request, url_for
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy.orm import Session

from plugin.admin_auth import api_page_principal
from plugin.api.core import (
    API_PREFIX,
    ApiError,
    Principal,
    authenticate,
    current_principal,
    document,
    json_body,
    spec,
)
from plugin.reevaluation import EXTENSION as RUNNER_EXTENSION
from plugin.reevaluation import ReevaluationRunner
from plugin.rules_form import describe
from plugin.rules_preview import preview
from plugin.rules_store import (
    DEFAULT_PROJECT,
    AccessError,
    Effective,
    FileManaged,
    ProjectSummary,
    VersionConflict,
    compile_text,
    list_projects,
    parent_of,
    pick_tenant,
    resolve,
    revert_note,
    save_scope,
    scope_counts,
    scope_project,
    starter_text,
    unified_diff,
    version_row,
)
from plugin.runtime import Runtime
from plugin.storage import RulesetRow, Tenant, latest_ruleset, ruleset_history
from plugin.storage.reevaluations import ReevaluationRow, get_reevaluation
from rules import RuleSet, RuleSetError
from rules.schema import flatten_errors

# Flask refuses routes added to a blueprint after it was registered, and the API's own
# blueprint is registered before this module is imported; so these routes have a blueprint
# of their own under the same prefix, with the same authentication and error shape.
bp = Blueprint("rulesets_api", __name__, url_prefix=API_PREFIX)

F = TypeVar("F", bound=Callable[..., Any])
MAX_YAML = 200_000


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Response:
    return exc.response()


def rules_auth(view: F) -> F:
    """Like ``require_auth``, and also accept calls from the admin page (session or page token)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.leanguard_principal = api_page_principal() or authenticate()
        return view(*args, **kwargs)

    return cast(F, wrapper)


# Schemas -------------------------------------------------------------------------------------


class ProblemSchema(Schema):
    """A problem in a rule set, with where it is."""

    source = fields.String(required=True, metadata={"description": "The rule set, e.g. jira/PAY"})
    path = fields.String(required=True, metadata={"example": "rules[0].mode"})
    message = fields.String(required=True)


class SourceSchema(Schema):
    """Where the rules in force come from."""

    kind = fields.String(
        required=True,
        metadata={"enum": ["project", "default", "file", "preset"]},
    )
    path = fields.String(metadata={"description": "The LEANGUARD_RULES file (kind file)."})
    name = fields.String(metadata={"description": "The preset (kind preset)."})
    version = fields.Integer(metadata={"description": "The saved version (project, default)."})
    author = fields.String()
    note = fields.String()
    created_at = fields.String(metadata={"format": "date-time"})


class RuleSummarySchema(Schema):
    """One rule in force and where it was defined."""

    id = fields.String(required=True)
    origin = fields.String(required=True, metadata={"description": "The rule set defining it."})
    changed_here = fields.Boolean(required=True)
    locked = fields.Boolean(required=True)
    mode = fields.String(required=True)
    severity = fields.String(required=True)
    kinds = fields.List(fields.String())
    require = fields.List(fields.String())
    summary = fields.String(required=True)


class RulesetSummarySchema(Schema):
    """A resolved rule set."""

    name = fields.String(required=True)
    version = fields.String(required=True, metadata={"description": "A content hash."})
    lineage = fields.List(fields.String(), metadata={"description": "What it extends."})
    rules = fields.List(fields.Nested(RuleSummarySchema))
    exemption_labels = fields.List(fields.String())


class TenantSchema(Schema):
    """A tracker site."""

    id = fields.Integer(required=True)
    tracker = fields.String(required=True)
    site = fields.String(required=True)


class ProjectSchema(Schema):
    """A project with the rules in force."""

    tenant = fields.Nested(TenantSchema, required=True)
    tracker = fields.String(required=True)
    project = fields.String(required=True, metadata={"description": "_default: the default"})
    items = fields.Integer(required=True)
    failing = fields.Integer(required=True)
    editable = fields.Boolean(required=True)
    source = fields.Nested(SourceSchema, required=True)
    ruleset = fields.Nested(RulesetSummarySchema, required=True)
    admin_url = fields.String(required=True)


class ProjectListSchema(Schema):
    """Every known project."""

    projects = fields.List(fields.Nested(ProjectSchema), required=True)


class RulesetDocumentSchema(ProjectSchema):
    """A scope's rules: the YAML to edit and the rule set in force."""

    yaml = fields.String(
        required=True,
        metadata={"description": "The saved YAML, the file (read-only), or a starting point."},
    )
    saved_version = fields.Integer(allow_none=True, required=True)
    inherits = fields.Nested(RulesetSummarySchema, required=True)
    inherits_source = fields.Nested(SourceSchema, required=True)


class WriteSchema(Schema):
    """A new version of a scope's rules."""

    yaml = fields.String(required=True, validate=validate.Length(min=1, max=MAX_YAML))
    note = fields.String(load_default="", validate=validate.Length(max=1000))
    base_version = fields.Integer(
        allow_none=True,
        metadata={
            "description": "The version the edit started from (null: none saved); a save on "
            "top of a newer version answers 409."
        },
    )


class CandidateSchema(Schema):
    """Rule-set text to check."""

    yaml = fields.String(required=True, validate=validate.Length(min=1, max=MAX_YAML))


class RevertSchema(Schema):
    """Which version to bring back."""

    version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    note = fields.String(load_default="", validate=validate.Length(max=1000))


class ReevaluationSchema(Schema):
    """A background re-check of a scope's open items."""

    id = fields.Integer(required=True)
    tenant_id = fields.Integer(required=True)
    tracker = fields.String(required=True)
    project = fields.String(required=True)
    state = fields.String(required=True, metadata={"enum": ["queued", "running", "done", "failed"]})
    total = fields.Integer(required=True)
    done = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    ruleset_version = fields.Integer(allow_none=True)
    requested_by = fields.String()
    last_error = fields.String(allow_none=True)
    created_at = fields.String(metadata={"format": "date-time"})
    started_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    finished_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    url = fields.String(required=True)


class SavedSchema(Schema):
    """A version just stored."""

    version = fields.Integer(required=True)
    author = fields.String(required=True)
    note = fields.String(required=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    reevaluation = fields.Nested(ReevaluationSchema, required=True)


class ValidationResultSchema(Schema):
    """Whether rule-set text is valid, and every problem with its path."""

    valid = fields.Boolean(required=True)
    errors = fields.List(fields.Nested(ProblemSchema), required=True)
    warnings = fields.List(fields.String(), required=True)
    ruleset = fields.Nested(RulesetSummarySchema, allow_none=True)


class FailureSchema(Schema):
    """A visible failure of a rule."""

    rule = fields.String(required=True)
    severity = fields.String(required=True)
    message = fields.String(required=True)


class ChangeSchema(Schema):
    """An item whose card would change."""

    key = fields.String(required=True)
    title = fields.String(required=True)
    url = fields.String(required=True)
    before = fields.List(fields.Nested(FailureSchema))
    after = fields.List(fields.Nested(FailureSchema))


class DryRunSchema(Schema):
    """A dry-run rule that would fail on an item."""

    key = fields.String(required=True)
    title = fields.String(required=True)
    url = fields.String(required=True)
    rule = fields.String(required=True)
    message = fields.String(required=True)


class PreviewSchema(Schema):
    """What saving the candidate would do to the scope's open items."""

    checked = fields.Integer(required=True)
    pulled = fields.Integer(required=True, metadata={"description": "Epics read from the tracker."})
    unchanged = fields.Integer(required=True)
    start_failing = fields.List(fields.Nested(ChangeSchema), required=True)
    stop_failing = fields.List(fields.Nested(ChangeSchema), required=True)
    message_changed = fields.List(fields.Nested(ChangeSchema), required=True)
    dry_run = fields.List(fields.Nested(DryRunSchema), required=True)
    notes = fields.List(fields.String(), required=True)
    current = fields.Nested(RulesetSummarySchema, required=True)
    candidate = fields.Nested(RulesetSummarySchema, required=True)


class VersionSchema(Schema):
    """One saved version."""

    version = fields.Integer(required=True)
    author = fields.String(required=True)
    note = fields.String(required=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    source_kind = fields.String(required=True)
    yaml = fields.String()


class HistorySchema(Schema):
    """Every saved version, newest first."""

    versions = fields.List(fields.Nested(VersionSchema), required=True)


class DiffSchema(Schema):
    """A unified diff of two versions' YAML."""

    from_ = fields.Integer(required=True, data_key="from", allow_none=True)
    to = fields.Integer(required=True)
    diff = fields.String(required=True)


for _name, _schema in (
    ("RuleSetProblem", ProblemSchema),
    ("RuleSetSource", SourceSchema),
    ("RuleSummary", RuleSummarySchema),
    ("RuleSetSummary", RulesetSummarySchema),
    ("Tenant", TenantSchema),
    ("Project", ProjectSchema),
    ("ProjectList", ProjectListSchema),
    ("RuleSetDocument", RulesetDocumentSchema),
    ("RuleSetWrite", WriteSchema),
    ("RuleSetCandidate", CandidateSchema),
    ("RuleSetRevert", RevertSchema),
    ("Reevaluation", ReevaluationSchema),
    ("RuleSetSaved", SavedSchema),
    ("RuleSetValidation", ValidationResultSchema),
    ("PreviewFailure", FailureSchema),
    ("PreviewChange", ChangeSchema),
    ("PreviewDryRun", DryRunSchema),
    ("RuleSetPreview", PreviewSchema),
    ("RuleSetVersion", VersionSchema),
    ("RuleSetHistory", HistorySchema),
    ("RuleSetDiff", DiffSchema),
):
    spec.components.schema(_name, schema=_schema)


# Helpers -------------------------------------------------------------------------------------


def _runtime() -> Runtime:
    runtime: Runtime = current_app.extensions["leanguard.runtime"]
    return runtime


def _runner() -> ReevaluationRunner:
    runner: ReevaluationRunner = current_app.extensions[RUNNER_EXTENSION]
    return runner


@contextmanager
def _session() -> Iterator[Session]:
    with _runtime().database.session() as session:
        yield session


def _tenant_arg() -> int | None:
    raw = request.args.get("tenant")
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise ApiError(400, "bad_tenant", "tenant must be a tenant id (a whole number).") from exc


def scope_tenant(session: Session, principal: Principal, tracker: str) -> Tenant:
    """Return the tenant a request is about, enforcing a Connect caller's own tenant."""
    try:
        return pick_tenant(
            session, tracker=tracker, requested=_tenant_arg(), allowed=principal.tenant_id
        )
    except AccessError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc


def _load(schema: Schema) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema.load(json_body())
    except ValidationError as exc:
        raise ApiError(
            400,
            "bad_request",
            "The body is not what this route expects.",
            [
                {"source": "body", "path": path, "message": message}
                for path, message in flatten_errors(exc.messages)
            ],
        ) from exc
    return loaded


def _invalid(exc: RuleSetError) -> ApiError:
    count = len(exc.problems)
    return ApiError(
        400,
        "invalid_ruleset",
        f"The rule set has {count} problem{'s' if count != 1 else ''}.",
        [problem.to_dict() for problem in exc.problems],
    )


def _compile(
    session: Session, tenant: Tenant, tracker: str, project: str | None, text: str
) -> RuleSet:
    try:
        return compile_text(
            session, _runtime(), tenant_id=tenant.id, tracker=tracker, project=project, text=text
        )
    except RuleSetError as exc:
        raise _invalid(exc) from exc


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def summary(ruleset: RuleSet, own: dict[str, Any] | None = None) -> dict[str, Any]:
    """Describe a resolved rule set for the API."""
    view = describe(ruleset, own, None)
    return {
        "name": view.name,
        "version": view.version,
        "lineage": list(view.lineage),
        "rules": [
            {
                "id": rule.id,
                "origin": rule.origin,
                "changed_here": rule.changed_here,
                "locked": rule.locked,
                "mode": rule.mode,
                "severity": rule.severity,
                "kinds": list(rule.kinds),
                "require": list(rule.require),
                "summary": rule.summary,
            }
            for rule in view.rules
        ],
        "exemption_labels": list(view.exemption_labels),
    }


def _own_document(session: Session, tenant: Tenant, tracker: str, project: str | None) -> Any:
    row = latest_ruleset(session, tenant_id=tenant.id, tracker=tracker, project=project)
    return _loaded(row.source_text) if row is not None else None


def _loaded(text: str) -> dict[str, Any] | None:
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return loaded if isinstance(loaded, dict) else None


def _project_dict(
    tenant: Tenant,
    tracker: str,
    project: str | None,
    items: int,
    failing: int,
    found: Effective,
    own: Any,
) -> dict[str, Any]:
    segment = project if project is not None else DEFAULT_PROJECT
    admin_url = url_for("rules_admin.project", tracker=tracker, project=segment, tenant=tenant.id)
    return {
        "tenant": {"id": tenant.id, "tracker": tenant.tracker, "site": tenant.site},
        "tracker": tracker,
        "project": segment,
        "items": items,
        "failing": failing,
        "editable": found.source.editable,
        "source": found.source.to_dict(),
        "ruleset": summary(found.ruleset, own),
        "admin_url": admin_url,
    }


def reevaluation_dict(job: ReevaluationRow) -> dict[str, Any]:
    """Describe a re-evaluation job for the API."""
    return {
        "id": job.id,
        "tenant_id": job.tenant_id,
        "tracker": job.tracker,
        "project": job.project if job.project is not None else DEFAULT_PROJECT,
        "state": job.state,
        "total": job.total,
        "done": job.done,
        "failed": job.failed,
        "ruleset_version": job.ruleset_version,
        "requested_by": job.requested_by,
        "last_error": job.last_error,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "url": url_for("rulesets_api.get_reevaluation_route", job_id=job.id),
    }


def save_and_recheck(
    tenant: Tenant,
    tracker: str,
    project: str | None,
    *,
    text: str,
    note: str,
    author: str,
    principal: Principal,
    base_version: int | None = None,
    check_base: bool = False,
) -> tuple[RulesetRow, ReevaluationRow]:
    """Store a new version and start re-checking the scope's open items; raise ApiError."""
    from plugin.connect.permissions import ensure_may_change_rules

    runtime = _runtime()
    ensure_may_change_rules(runtime, principal, tenant, project)
    with _session() as session:
        try:
            row = save_scope(
                session,
                runtime,
                tenant_id=tenant.id,
                tracker=tracker,
                project=project,
                text=text,
                note=note,
                author=author,
                now=datetime.now(UTC),
                base_version=base_version,
                check_base=check_base,
            )
        except FileManaged as exc:
            raise ApiError(409, "file_managed", str(exc)) from exc
        except VersionConflict as exc:
            raise ApiError(409, "version_conflict", str(exc)) from exc
        except RuleSetError as exc:
            raise _invalid(exc) from exc
        session.expunge(row)
    job_id = _runner().request(
        tenant_id=tenant.id,
        tracker=tracker,
        project=project,
        ruleset_version=row.version,
        requested_by=author,
    )
    with _session() as session:
        job = get_reevaluation(session, job_id)
        assert job is not None
        session.expunge(job)
    return row, job


def _saved_response(row: RulesetRow, job: ReevaluationRow) -> Response:
    return jsonify(
        SavedSchema().dump(
            {
                "version": row.version,
                "author": row.author,
                "note": row.note,
                "created_at": _iso(row.created_at),
                "reevaluation": reevaluation_dict(job),
            }
        )
    )


def _version_dict(row: RulesetRow, *, with_text: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "version": row.version,
        "author": row.author,
        "note": row.note,
        "created_at": _iso(row.created_at),
        "source_kind": row.source_kind,
    }
    if with_text:
        data["yaml"] = row.source_text
    return data


def read_scope(
    session: Session, tenant: Tenant, tracker: str, project: str | None
) -> dict[str, Any]:
    """Describe a scope's rules: in force, inherited, and the YAML to edit."""
    runtime = _runtime()
    found = resolve(session, runtime, tenant.id, tracker, project)
    parent = parent_of(session, runtime, tenant.id, tracker, project)
    own_row = latest_ruleset(session, tenant_id=tenant.id, tracker=tracker, project=project)
    if found.source.managed and found.source.path:
        text = _file_text(found.source.path) or ""
    elif own_row is not None:
        text = own_row.source_text
    else:
        text = starter_text(parent.ruleset, tracker, project)
    own = _own_document(session, tenant, tracker, project)
    items, failing = scope_counts(session, tenant_id=tenant.id, tracker=tracker, project=project)
    data = _project_dict(tenant, tracker, project, items, failing, found, own)
    data.update(
        yaml=text,
        saved_version=own_row.version if own_row is not None else None,
        inherits=summary(parent.ruleset),
        inherits_source=parent.source.to_dict(),
    )
    return data


def _file_text(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _path_params(*names: str) -> list[dict[str, Any]]:
    described = {
        "tracker": "jira or linear",
        "project": "The Jira project key or Linear team key; _default for the tenant default",
        "job_id": "The re-evaluation's id",
    }
    params = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "integer" if name == "job_id" else "string"},
            "description": described[name],
        }
        for name in names
    ]
    if "tracker" in names:
        params.append(
            {
                "name": "tenant",
                "in": "query",
                "required": False,
                "schema": {"type": "integer"},
                "description": "The tenant (site) id; needed only when several sites of the "
                "tracker are known. A Connect caller may only name its own.",
            }
        )
    return params


def _json(schema: type[Schema] | dict[str, str], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: tuple[str, str]) -> dict[str, Any]:
    return {code: _json({"$ref": "#/components/schemas/Error"}, text) for code, text in codes}


_SCOPE = "/rulesets/{tracker}/{project}"
_NOT_FOUND = ("404", "Unknown tracker, tenant or version")
_FORBIDDEN = ("403", "A Connect caller named another tenant")


# Routes --------------------------------------------------------------------------------------


@bp.get("/rulesets")
@rules_auth
def list_rulesets() -> Response:
    """List projects with the rules in force and where each rule comes from."""
    principal = current_principal()
    runtime = _runtime()
    with _session() as session:
        projects: list[ProjectSummary] = list_projects(
            session, runtime, tenant_id=principal.tenant_id
        )
        body = [
            _project_dict(
                p.tenant,
                p.tracker,
                p.project,
                p.items,
                p.failing,
                p.effective,
                _own_document(session, p.tenant, p.tracker, p.project),
            )
            for p in projects
        ]
    return jsonify(ProjectListSchema().dump({"projects": body}))


document(
    "/rulesets",
    {
        "get": {
            "summary": "List projects with their rule sets",
            "description": "Projects known from stored items or saved rule sets, with the rule "
            "set in force, where it comes from, and each rule's origin.",
            "responses": {"200": _json(ProjectListSchema, "The projects")},
        }
    },
)


@bp.get(_SCOPE.replace("{", "<").replace("}", ">"))
@rules_auth
def get_ruleset(tracker: str, project: str) -> Response:
    """Return a scope's rules: the YAML to edit and the rule set in force."""
    with _session() as session:
        tenant = scope_tenant(session, current_principal(), tracker)
        body = read_scope(session, tenant, tracker, scope_project(project))
    return jsonify(RulesetDocumentSchema().dump(body))


@bp.put(_SCOPE.replace("{", "<").replace("}", ">"))
@rules_auth
def put_ruleset(tracker: str, project: str) -> Response:
    """Save new YAML as the scope's next version and re-check its open items."""
    body = _load(WriteSchema())
    with _session() as session:
        tenant = scope_tenant(session, current_principal(), tracker)
        session.expunge(tenant)
    row, job = save_and_recheck(
        tenant,
        tracker,
        scope_project(project),
        text=body["yaml"],
        note=body["note"],
        author=current_principal().name,
        principal=current_principal(),
        base_version=body.get("base_version"),
        check_base="base_version" in body,
    )
    return _saved_response(row, job)


document(
    _SCOPE,
    {
        "get": {
            "summary": "Read a project's rules",
            "parameters": _path_params("tracker", "project"),
            "responses": {
                "200": _json(RulesetDocumentSchema, "The rules"),
                **_errors(_NOT_FOUND, _FORBIDDEN),
            },
        },
        "put": {
            "summary": "Replace a project's rules (a new version)",
            "description": "Validates the YAML, stores it as the next version with the caller "
            "as author, and re-checks the project's open items in the background.",
            "parameters": _path_params("tracker", "project"),
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": WriteSchema}},
            },
            "responses": {
                "200": _json(SavedSchema, "Saved; the re-evaluation has started"),
                **_errors(
                    _NOT_FOUND,
                    _FORBIDDEN,
                    ("409", "The project's rules live in a LEANGUARD_RULES file, or changed"),
                ),
            },
        },
    },
)


@bp.post(_SCOPE.replace("{", "<").replace("}", ">") + "/validate")
@rules_auth
def validate_ruleset(tracker: str, project: str) -> Response:
    """Check YAML for a scope and name every problem with its path."""
    body = _load(CandidateSchema())
    scope = scope_project(project)
    runtime = _runtime()
    warnings: list[str] = []
    with _session() as session:
        tenant = scope_tenant(session, current_principal(), tracker)
        found = resolve(session, runtime, tenant.id, tracker, scope)
        if not found.source.editable:
            warnings.append(str(FileManaged(found.source.path or "")))
        try:
            ruleset = compile_text(
                session,
                runtime,
                tenant_id=tenant.id,
                tracker=tracker,
                project=scope,
                text=body["yaml"],
            )
        except RuleSetError as exc:
            result = {
                "valid": False,
                "errors": [p.to_dict() for p in exc.problems],
                "ruleset": None,
            }
        else:
            result = {
                "valid": True,
                "errors": [],
                "ruleset": summary(ruleset, _loaded(body["yaml"])),
            }
    result["warnings"] = warnings
    return jsonify(ValidationResultSchema().dump(result))


document(
    _SCOPE + "/validate",
    {
        "post": {
            "summary": "Validate rule-set YAML",
            "description": "Answers 200 with valid false and every problem (source, path, "
            "message, as `leanguard rules validate` says them) when the YAML is not valid.",
            "parameters": _path_params("tracker", "project"),
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": CandidateSchema}},
            },
            "responses": {
                "200": _json(ValidationResultSchema, "The verdict"),
                **_errors(_NOT_FOUND, _FORBIDDEN),
            },
        }
    },
)


@bp.post(_SCOPE.replace("{", "<").replace("}", ">") + "/preview")
@rules_auth
def preview_ruleset(tracker: str, project: str) -> Response:
    """Run candidate YAML against the scope's open items and say what would change."""
    body = _load(CandidateSchema())
    scope = scope_project(project)
    runtime = _runtime()
    with _session() as session:
        tenant = scope_tenant(session, current_principal(), tracker)
        candidate = _compile(session, tenant, tracker, scope, body["yaml"])
        current = resolve(session, runtime, tenant.id, tracker, scope).ruleset
        result = preview(
            session, runtime, tenant=tenant, tracker=tracker, project=scope, candidate=candidate
        ).to_dict()
    result.update(current=summary(current), candidate=summary(candidate, _loaded(body["yaml"])))
    return jsonify(PreviewSchema().dump(result))


document(
    _SCOPE + "/preview",
    {
        "post": {
            "summary": "Preview rule-set YAML against the project's items",
            "description": "Evaluates the project's open items under the rules in force and "
            "under the candidate: which would start failing, stop failing or change their "
            "card, and which dry-run rules would fail. With no stored items, the project's "
            "epics are read from the tracker first when credentials are configured.",
            "parameters": _path_params("tracker", "project"),
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": CandidateSchema}},
            },
            "responses": {
                "200": _json(PreviewSchema, "What would change"),
                **_errors(_NOT_FOUND, _FORBIDDEN),
            },
        }
    },
)


@bp.get(_SCOPE.replace("{", "<").replace("}", ">") + "/history")
@rules_auth
def get_history(tracker: str, project: str) -> Response:
    """List a scope's saved versions, newest first."""
    with _session() as session:
        tenant = scope_tenant(session, current_principal(), tracker)
        rows = ruleset_history(
            session, tenant_id=tenant.id, tracker=tracker, project=scope_project(project)
        )
        versions = [_version_dict(row) for row in rows]
    return jsonify(HistorySchema().dump({"versions": versions}))


document(
    _SCOPE + "/history",
    {
        "get": {
            "summary": "List saved versions",
            "parameters": _path_params("tracker", "project"),
            "responses": {
                "200": _json(HistorySchema, "Versions, newest first"),
                **_errors(_NOT_FOUND, _FORBIDDEN),
            },
        }
    },
)


def _version_arg(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400, "bad_version", f"{name} must be a version number.") from exc
    if value < 1:
        raise ApiError(400, "bad_version", f"{name} must be a version number (1 or more).")
    return value


def _need_version(
    session: Session, tenant: Tenant, tracker: str, project: str | None, version: int
) -> RulesetRow:
    row = version_row(
        session, tenant_id=tenant.id, tracker=tracker, project=project, version=version
    )
    if row is None:
        raise ApiError(404, "no_version", f"There is no version {version} of these rules.")
    return row


@bp.get(_SCOPE.replace("{", "<").replace("}", ">") + "/versions/<int:version>")
@rules_auth
def get_version(tracker: str, project: str, version: int) -> Response:
    """Return one saved version with its YAML."""
    with _session() as session:
        tenant = scope_tenant(session, current_principal(), tracker)
        row = _need_version(session, tenant, tracker, scope_project(project), version)
        body = _version_dict(row, with_text=True)
    return jsonify(VersionSchema().dump(body))


document(
    _SCOPE + "/versions/{version}",
    {
        "get": {
            "summary": "Read one saved version",
            "parameters": [
                *_path_params("tracker", "project"),
                {"name": "version", "in": "path", "required": True, "schema": {"type": "integer"}},
            ],
            "responses": {
                "200": _json(VersionSchema, "The version with its YAML"),
                **_errors(_NOT_FOUND, _FORBIDDEN),
            },
        }
    },
)


@bp.get(_SCOPE.replace("{", "<").replace("}", ">") + "/diff")
@rules_auth
def get_diff(tracker: str, project: str) -> Response:
    """Return the unified diff between two versions (default: the newest and the one before)."""
    to_version = _version_arg("to")
    from_version = _version_arg("from")
    scope = scope_project(project)
    with _session() as session:
        tenant = scope_tenant(session, current_principal(), tracker)
        if to_version is None:
            newest = latest_ruleset(session, tenant_id=tenant.id, tracker=tracker, project=scope)
            if newest is None:
                raise ApiError(404, "no_version", "No version of these rules is saved yet.")
            to_version = newest.version
        new = _need_version(session, tenant, tracker, scope, to_version)
        if from_version is None and to_version > 1:
            from_version = to_version - 1
        old = _need_version(session, tenant, tracker, scope, from_version) if from_version else None
        text = unified_diff(old, new)
    return jsonify(DiffSchema().dump({"from_": from_version, "to": to_version, "diff": text}))


document(
    _SCOPE + "/diff",
    {
        "get": {
            "summary": "Diff two versions",
            "description": "A unified diff of the YAML; `to` defaults to the newest version and "
            "`from` to the one before it.",
            "parameters": [
                *_path_params("tracker", "project"),
                {"name": "from", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                {"name": "to", "in": "query", "schema": {"type": "integer", "minimum": 1}},
            ],
            "responses": {
                "200": _json(DiffSchema, "The diff"),
                **_errors(_NOT_FOUND, _FORBIDDEN),
            },
        }
    },
)


@bp.post(_SCOPE.replace("{", "<").replace("}", ">") + "/revert")
@rules_auth
def revert_ruleset(tracker: str, project: str) -> Response:
    """Save an old version's YAML again as a new version, with a note saying so."""
    body = _load(RevertSchema())
    scope = scope_project(project)
    with _session() as session:
        tenant = scope_tenant(session, current_principal(), tracker)
        old = _need_version(session, tenant, tracker, scope, body["version"])
        text = old.source_text
        session.expunge(tenant)
    row, job = save_and_recheck(
        tenant,
        tracker,
        scope,
        text=text,
        note=revert_note(body["version"], body["note"]),
        author=current_principal().name,
        principal=current_principal(),
    )
    return _saved_response(row, job)


document(
    _SCOPE + "/revert",
    {
        "post": {
            "summary": "Revert to an earlier version",
            "description": "Stores the old version's YAML as a new version (history is never "
            "rewritten) and re-checks the project's open items.",
            "parameters": _path_params("tracker", "project"),
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": RevertSchema}},
            },
            "responses": {
                "200": _json(SavedSchema, "Reverted; the re-evaluation has started"),
                **_errors(_NOT_FOUND, _FORBIDDEN, ("409", "The project's rules live in a file")),
            },
        }
    },
)


@bp.get("/reevaluations/<int:job_id>")
@rules_auth
def get_reevaluation_route(job_id: int) -> Response:
    """Return a re-evaluation's progress."""
    principal = current_principal()
    with _session() as session:
        job = get_reevaluation(session, job_id)
        # Another tenant's job is reported missing, not forbidden: its id says nothing.
        if job is None or (
            principal.tenant_id is not None and job.tenant_id != principal.tenant_id
        ):
            raise ApiError(404, "not_found", f"There is no re-evaluation {job_id}.")
        body = reevaluation_dict(job)
    return jsonify(ReevaluationSchema().dump(body))


document(
    "/reevaluations/{job_id}",
    {
        "get": {
            "summary": "Follow a re-evaluation",
            "description": "Progress of the background re-check started by a save or revert.",
            "parameters": _path_params("job_id"),
            "responses": {
                "200": _json(ReevaluationSchema, "Its progress"),
                **_errors(("404", "No such re-evaluation (or another tenant's)")),
            },
        }
    },
)
