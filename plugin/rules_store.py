"""Rule sets per tenant, tracker and project: which one is in force, saving, history and diffs.

The rule set for an item is the first of: a rule set from ``LEANGUARD_RULES`` whose scope names
the item's project (the repository is the source of truth there, so it cannot be saved over),
the project's saved rule set, the tenant's saved default for the tracker, the rules as code that
``LEANGUARD_RULES`` selects for the tracker and project, and the built-in ``lean`` preset.
"""

from __future__ import annotations

import difflib
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from plugin.rulesets import RuleCatalog
from plugin.runtime import Runtime
from plugin.storage import (
    EvaluationRow,
    RulesetRow,
    RulesetSource,
    Tenant,
    WorkItemRow,
    latest_ruleset,
    ruleset_history,
    save_ruleset,
)
from rules import RuleSet, RuleSetError, parse_ruleset, preset
from rules.loading import resolve_preset
from rules.presets import DEFAULT_PRESET, PRESETS, is_preset, preset_source
from rules.ruleset import Problem, parse_document

log = logging.getLogger(__name__)

DEFAULT_PROJECT = "_default"
"""The project segment that stands for a tenant's default for a tracker (stored as NULL)."""
TRACKERS = ("jira", "linear")

KIND_PROJECT = "project"
KIND_DEFAULT = "default"
KIND_FILE = "file"
KIND_PRESET = "preset"


class FileManaged(Exception):
    """A project whose rules live in a ``LEANGUARD_RULES`` file, so they cannot be saved here."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"The rules of this project are managed in {path} (LEANGUARD_RULES); change that "
            "file in its repository instead."
        )
        self.path = path


class VersionConflict(Exception):
    """A save based on a version that is no longer the newest."""

    def __init__(self, expected: int | None, current: int | None) -> None:
        super().__init__(
            f"The rules changed since you opened them (you edited version {expected or 'none'}, "
            f"the newest is {current or 'none'}); reload and apply your change again."
        )
        self.expected, self.current = expected, current


class AccessError(Exception):
    """A tenant that the caller may not see, or that cannot be told from the request."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Source:
    """Where a rule set in force comes from."""

    kind: str
    """``project`` or ``default`` (saved here), ``file`` (LEANGUARD_RULES) or ``preset``."""
    path: str | None = None
    """The file, for rules as code."""
    name: str | None = None
    """The preset's name."""
    version: int | None = None
    author: str | None = None
    note: str | None = None
    created_at: datetime | None = None
    managed: bool = False
    """True when a file names the project itself, so the repository is its source of truth."""

    @property
    def editable(self) -> bool:
        """Tell whether the scope's rules may be changed through this service."""
        return not self.managed

    def label(self) -> str:
        """Say in a few words where the rules come from (``effective_ruleset``'s second value)."""
        if self.kind == KIND_FILE:
            return f"file:{self.path}"
        if self.kind == KIND_PRESET:
            return f"preset:{self.name}"
        return f"{self.kind}:v{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict without empty entries."""
        data: dict[str, Any] = {"kind": self.kind}
        for key in ("path", "name", "version", "author", "note"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.created_at is not None:
            data["created_at"] = self.created_at.isoformat()
        return data


@dataclass(frozen=True)
class Effective:
    """The rule set in force for a scope and where it comes from."""

    ruleset: RuleSet
    source: Source


def scope_project(project: str) -> str | None:
    """Turn a project segment into the stored scope (the default is stored as NULL)."""
    return None if project == DEFAULT_PROJECT else project


def scope_source(tracker: str, project: str | None) -> str:
    """Name a scope in problems, the way a file name would be named."""
    return f"{tracker}/{project if project is not None else DEFAULT_PROJECT}"


def scope_title(tracker: str, project: str | None) -> str:
    """Name a scope in sentences."""
    tracker_name = "Jira" if tracker == "jira" else "Linear"
    if project is None:
        return f"the {tracker_name} default"
    return f"{tracker_name} project {project}"


def suggested_name(tracker: str, project: str | None) -> str:
    """Return a rule-set name for a scope that fits the schema (lower-case id)."""
    base = f"{tracker}-{project if project is not None else 'default'}".lower()
    return re.sub(r"[^a-z0-9_-]", "-", base)[:64]


# Which rule set is in force -----------------------------------------------------------------


def effective_ruleset(
    session: Session, runtime: Runtime, tenant_id: int, tracker: str, project: str
) -> tuple[RuleSet, str]:
    """Return the rule set in force for a project and where it comes from (``Source.label``)."""
    found = resolve(session, runtime, tenant_id, tracker, project or None)
    return found.ruleset, found.source.label()


def ruleset_for(runtime: Runtime, tenant_id: int, tracker: str, project: str) -> RuleSet:
    """Return the rule set in force for a project, in a session of its own (for the worker)."""
    with runtime.database.autocommit_session() as session:
        ruleset, _ = effective_ruleset(session, runtime, tenant_id, tracker, project)
    return ruleset


def resolve(
    session: Session, runtime: Runtime, tenant_id: int | None, tracker: str, project: str | None
) -> Effective:
    """Return the rule set in force for a scope (``project`` None: the tenant default)."""
    if project is not None:
        managed = file_ruleset(runtime.catalog, tracker, project)
        if managed is not None:
            return Effective(managed, Source(KIND_FILE, path=managed.source, managed=True))
    if tenant_id is not None:
        default_row = latest_ruleset(session, tenant_id=tenant_id, tracker=tracker, project=None)
        if project is not None:
            found = _saved(session, runtime, tenant_id, tracker, project, default_row)
            if found is not None:
                return found
        if default_row is not None:
            found = _saved(session, runtime, tenant_id, tracker, None, default_row)
            if found is not None:
                return found
    return inherited(runtime.catalog, tracker, project)


def inherited(catalog: RuleCatalog, tracker: str, project: str | None) -> Effective:
    """Return the rules as code (or the preset) for a scope, ignoring what is saved here."""
    if catalog.rulesets:
        chosen = catalog.select(tracker, project or "")
        if chosen.source != preset_source(chosen.name):
            return Effective(chosen, Source(KIND_FILE, path=chosen.source))
    lean = preset()
    return Effective(lean, Source(KIND_PRESET, name=DEFAULT_PRESET))


def parent_of(
    session: Session, runtime: Runtime, tenant_id: int | None, tracker: str, project: str | None
) -> Effective:
    """Return what a scope inherits when it has no rule set of its own."""
    if project is not None and tenant_id is not None:
        default_row = latest_ruleset(session, tenant_id=tenant_id, tracker=tracker, project=None)
        if default_row is not None:
            found = _saved(session, runtime, tenant_id, tracker, None, default_row)
            if found is not None:
                return found
    return inherited(runtime.catalog, tracker, project)


def file_ruleset(catalog: RuleCatalog, tracker: str, project: str) -> RuleSet | None:
    """Return the ``LEANGUARD_RULES`` rule set whose scope names this project, if any."""
    named = [r for r in catalog.rulesets if r.projects and r.applies_to(tracker, project)]
    if not named:
        return None
    # The most specific one wins, as in RuleCatalog.select.
    return max(named, key=lambda r: 1 if r.trackers else 0)


_cache: dict[tuple[int, int | None, int], tuple[RuleCatalog, RuleSet]] = {}
_cache_guard = threading.Lock()
_CACHE_SIZE = 256


def _saved(
    session: Session,
    runtime: Runtime,
    tenant_id: int,
    tracker: str,
    project: str | None,
    default_row: RulesetRow | None,
) -> Effective | None:
    """Build the newest saved version of a scope that still builds; None when none does."""
    newest = (
        default_row
        if project is None
        else latest_ruleset(session, tenant_id=tenant_id, tracker=tracker, project=project)
    )
    if newest is None:
        return None
    candidates = [newest]
    while candidates:
        row = candidates.pop(0)
        try:
            ruleset = _compiled(session, runtime, row, default_row)
        except RuleSetError as exc:
            # A save was valid when it was made; what it extends may have changed since. The
            # last good version keeps running, and the problem is logged.
            log.error(
                "rules.saved-broken",
                extra={
                    "scope": scope_source(tracker, project),
                    "version": row.version,
                    "problems": [str(p) for p in exc.problems],
                },
            )
            if row is newest:
                candidates = ruleset_history(
                    session, tenant_id=tenant_id, tracker=tracker, project=project
                )[1:]
            continue
        kind = KIND_PROJECT if project is not None else KIND_DEFAULT
        return Effective(
            ruleset,
            Source(
                kind,
                version=row.version,
                author=row.author,
                note=row.note,
                created_at=row.created_at,
            ),
        )
    return None


def _compiled(
    session: Session, runtime: Runtime, row: RulesetRow, default_row: RulesetRow | None
) -> RuleSet:
    # Saved versions never change, but what they extend may: the key names the default's
    # version and the catalog object (replaced whenever LEANGUARD_RULES is reloaded).
    depends_on = default_row.id if default_row is not None and row.project is not None else None
    key = (row.id, depends_on, id(runtime.catalog))
    with _cache_guard:
        hit = _cache.get(key)
    if hit is not None and hit[0] is runtime.catalog:
        return hit[1]
    ruleset = compile_text(
        session,
        runtime,
        tenant_id=row.tenant_id,
        tracker=row.tracker or "",
        project=row.project,
        text=row.source_text,
    )
    with _cache_guard:
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        _cache[key] = (runtime.catalog, ruleset)
    return ruleset


# Validating rule-set text --------------------------------------------------------------------


def compile_text(
    session: Session,
    runtime: Runtime,
    *,
    tenant_id: int | None,
    tracker: str,
    project: str | None,
    text: str,
) -> RuleSet:
    """Validate YAML for a scope and resolve what it extends; raise :class:`RuleSetError`."""
    source = scope_source(tracker, project)
    ruleset = parse_ruleset(
        text,
        source=source,
        resolve=_resolver(session, runtime, tenant_id, tracker, project, source),
    )
    if ruleset.trackers and tracker not in ruleset.trackers:
        raise RuleSetError(
            [
                Problem(
                    source, "scope.trackers", f"does not include {tracker}, the tracker it is for"
                )
            ]
        )
    if project is not None and ruleset.projects and not ruleset.applies_to(tracker, project):
        raise RuleSetError(
            [
                Problem(
                    source,
                    "scope.projects",
                    f"does not include {project}, the project it is for (leave scope out: "
                    "the project is implied)",
                )
            ]
        )
    return _with_catalog_origins(ruleset, runtime.catalog)


def _resolver(
    session: Session,
    runtime: Runtime,
    tenant_id: int | None,
    tracker: str,
    project: str | None,
    source: str,
) -> Any:
    catalog = runtime.catalog

    def resolve_reference(reference: str) -> tuple[Mapping[str, Any], str]:
        if is_preset(reference):
            return resolve_preset(reference)
        from_file = catalog.by_name(reference)
        if from_file is not None:
            return flattened(from_file), from_file.source
        if project is not None and tenant_id is not None:
            default_row = latest_ruleset(
                session, tenant_id=tenant_id, tracker=tracker, project=None
            )
            if default_row is not None:
                default_source = scope_source(tracker, None)
                document = parse_document(default_row.source_text, source=default_source)
                if _document_name(document, default_source) == reference:
                    return document, default_source
        raise RuleSetError(
            [
                Problem(
                    source,
                    "extends",
                    f"unknown rule set {reference!r} (known: "
                    f"{', '.join(known_names(session, runtime, tenant_id, tracker, project))})",
                )
            ]
        )

    return resolve_reference


def known_names(
    session: Session, runtime: Runtime, tenant_id: int | None, tracker: str, project: str | None
) -> list[str]:
    """Return the names a rule set for this scope may extend."""
    names = list(PRESETS) + [r.name for r in runtime.catalog.rulesets if r.name not in PRESETS]
    if project is not None and tenant_id is not None:
        default_row = latest_ruleset(session, tenant_id=tenant_id, tracker=tracker, project=None)
        if default_row is not None:
            default_source = scope_source(tracker, None)
            try:
                document = parse_document(default_row.source_text, source=default_source)
            except RuleSetError:
                return names
            names.append(_document_name(document, default_source))
    return names


def flattened(ruleset: RuleSet) -> dict[str, Any]:
    """Return a resolved rule set as a document another one can extend (inheritance applied)."""
    document = dict(ruleset.document)
    # The merged document names outcome fields ``fields``; the schema's loaded form, which
    # build() reads, calls them ``fields_``.
    document["fields_"] = document.pop("fields", [])
    document.pop("extends", None)
    return document


def _document_name(document: Mapping[str, Any], source: str) -> str:
    return str(document.get("name") or Path(source).stem)


def _with_catalog_origins(ruleset: RuleSet, catalog: RuleCatalog) -> RuleSet:
    """Credit rules to the rule set that first defined them, through a flattened file."""
    # Extending a file's rule set goes through its flattened document, which credits every
    # inherited rule to that file; the file's own resolved rules know the real origin.
    rules = []
    for rule in ruleset.rules:
        from_file = catalog.by_name(rule.origin)
        original = from_file.rule(rule.id) if from_file is not None else None
        if original is not None and original.origin != rule.origin:
            rule = replace(rule, origin=original.origin)
        rules.append(rule)
    return replace(ruleset, rules=tuple(rules))


def starter_text(parent: RuleSet, tracker: str, project: str | None) -> str:
    """Return the YAML a scope starts from: its name and what it extends, nothing changed yet."""
    return (
        f"# Rules for {scope_title(tracker, project)}. Everything not written here comes from\n"
        f"# {parent.name!r}; override a rule by its id, e.g. to switch it off:\n"
        "#   rules:\n"
        f"#     - id: {parent.rules[0].id if parent.rules else 'hypothesis'}\n"
        '#       mode: "off"\n'
        "version: 1\n"
        f"name: {suggested_name(tracker, project)}\n"
        f"extends: {parent.name}\n"
    )


# Saving, history, diffs ----------------------------------------------------------------------


def save_scope(
    session: Session,
    runtime: Runtime,
    *,
    tenant_id: int,
    tracker: str,
    project: str | None,
    text: str,
    note: str,
    author: str,
    now: datetime,
    base_version: int | None = None,
    check_base: bool = False,
) -> RulesetRow:
    """Validate and store rule-set text as the scope's next version."""
    if project is not None:
        managed = file_ruleset(runtime.catalog, tracker, project)
        if managed is not None:
            raise FileManaged(managed.source)
    if check_base:
        current = latest_ruleset(session, tenant_id=tenant_id, tracker=tracker, project=project)
        current_version = current.version if current is not None else None
        if current_version != base_version:
            raise VersionConflict(base_version, current_version)
    compile_text(session, runtime, tenant_id=tenant_id, tracker=tracker, project=project, text=text)
    return save_ruleset(
        session,
        tenant_id=tenant_id,
        tracker=tracker,
        project=project,
        source_text=text,
        source_kind=RulesetSource.API.value,
        source_path=None,
        author=author,
        note=note,
        now=now,
    )


def version_row(
    session: Session, *, tenant_id: int, tracker: str, project: str | None, version: int
) -> RulesetRow | None:
    """Return one saved version of a scope."""
    return next(
        (
            row
            for row in ruleset_history(
                session, tenant_id=tenant_id, tracker=tracker, project=project
            )
            if row.version == version
        ),
        None,
    )


def unified_diff(old: RulesetRow | None, new: RulesetRow) -> str:
    """Return the unified diff of two versions' YAML (``old`` None: from nothing)."""
    before = old.source_text if old is not None else ""
    lines = difflib.unified_diff(
        _lines(before),
        _lines(new.source_text),
        fromfile=f"version {old.version}" if old is not None else "nothing saved",
        tofile=f"version {new.version}",
    )
    return "".join(lines)


def _lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    # A last line without a newline would glue itself to the next diff line.
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return lines


def revert_note(version: int, note: str) -> str:
    """Return the note of a revert: which version it restores, and why when said."""
    said = note.strip()
    return f"Revert to version {version}" + (f": {said}" if said else "")


# Tenants and projects ------------------------------------------------------------------------


def pick_tenant(
    session: Session, *, tracker: str, requested: int | None, allowed: int | None
) -> Tenant:
    """Return the tenant a request is about; ``allowed`` limits a Connect caller to its own."""
    if tracker not in TRACKERS:
        raise AccessError(404, "unknown_tracker", f"Unknown tracker {tracker!r} (jira, linear).")
    if allowed is not None:
        if requested is not None and requested != allowed:
            raise AccessError(403, "other_tenant", "You may only manage your own site's rules.")
        tenant = session.get(Tenant, allowed)
        if tenant is None or tenant.tracker != tracker:
            raise AccessError(404, "not_found", f"No {tracker} site of yours is known here.")
        return tenant
    if requested is not None:
        tenant = session.get(Tenant, requested)
        if tenant is None or tenant.tracker != tracker:
            raise AccessError(404, "not_found", f"No {tracker} site with id {requested}.")
        return tenant
    tenants = list(session.scalars(select(Tenant).where(Tenant.tracker == tracker)))
    if not tenants:
        raise AccessError(
            404,
            "no_tenant",
            f"No {tracker} site is known yet: leanguard learns a site from its first webhook.",
        )
    if len(tenants) > 1:
        choices = ", ".join(f"{t.id} ({t.site})" for t in tenants)
        raise AccessError(
            400,
            "ambiguous_tenant",
            f"Several {tracker} sites are known; pass tenant= one of {choices}.",
        )
    return tenants[0]


@dataclass(frozen=True)
class ProjectSummary:
    """A project known from its items or its saved rules, with the rules in force."""

    tenant: Tenant
    tracker: str
    project: str | None
    items: int
    failing: int
    effective: Effective


def list_projects(
    session: Session, runtime: Runtime, *, tenant_id: int | None = None
) -> list[ProjectSummary]:
    """Return every project seen in stored items or saved rule sets, tenant by tenant."""
    counts = _counts()
    saved = select(RulesetRow.tenant_id, RulesetRow.tracker, RulesetRow.project).where(
        RulesetRow.tenant_id.is_not(None), RulesetRow.tracker.is_not(None)
    )
    if tenant_id is not None:
        counts = counts.where(WorkItemRow.tenant_id == tenant_id)
        saved = saved.where(RulesetRow.tenant_id == tenant_id)
    found: dict[tuple[int, str, str | None], tuple[int, int]] = {}
    for row_tenant, tracker, project, items, fails in session.execute(counts):
        found[(row_tenant, tracker, project)] = (int(items), int(fails or 0))
    for saved_tenant, saved_tracker, project in session.execute(saved.distinct()):
        if saved_tenant is not None and saved_tracker is not None:
            found.setdefault((saved_tenant, saved_tracker, project), (0, 0))
    tenants = {
        t.id: t
        for t in session.scalars(select(Tenant).where(Tenant.id.in_({key[0] for key in found})))
    }
    summaries = [
        ProjectSummary(
            tenant=tenants[key[0]],
            tracker=key[1],
            project=key[2],
            items=value[0],
            failing=value[1],
            effective=resolve(session, runtime, key[0], key[1], key[2]),
        )
        for key, value in found.items()
        if key[0] in tenants
    ]
    return sorted(
        summaries, key=lambda s: (s.tenant.id, s.tracker, s.project is not None, s.project or "")
    )


def _counts() -> Any:
    """Count live items, and those whose newest evaluation fails, per tenant and project."""
    newest = (
        select(EvaluationRow.work_item_id, func.max(EvaluationRow.id).label("evaluation_id"))
        .group_by(EvaluationRow.work_item_id)
        .subquery()
    )
    failing = func.sum(case((EvaluationRow.status == "fail", 1), else_=0))
    return (
        select(
            WorkItemRow.tenant_id,
            WorkItemRow.tracker,
            WorkItemRow.project,
            func.count(WorkItemRow.id),
            failing,
        )
        .outerjoin(newest, newest.c.work_item_id == WorkItemRow.id)
        .outerjoin(EvaluationRow, EvaluationRow.id == newest.c.evaluation_id)
        .where(~WorkItemRow.deleted, WorkItemRow.project != "")
        .group_by(WorkItemRow.tenant_id, WorkItemRow.tracker, WorkItemRow.project)
    )


def scope_counts(
    session: Session, *, tenant_id: int, tracker: str, project: str | None
) -> tuple[int, int]:
    """Return how many live items a scope has, and how many of them fail."""
    query = _counts().where(WorkItemRow.tenant_id == tenant_id, WorkItemRow.tracker == tracker)
    if project is not None:
        query = query.where(WorkItemRow.project == project)
    items = failing = 0
    for _, _, _, count, fails in session.execute(query):
        items += int(count)
        failing += int(fails or 0)
    return items, failing


def open_items(
    session: Session, *, tenant_id: int, tracker: str, project: str | None
) -> list[WorkItemRow]:
    """Return a scope's live items that are not done, oldest first."""
    query = select(WorkItemRow).where(
        WorkItemRow.tenant_id == tenant_id,
        WorkItemRow.tracker == tracker,
        ~WorkItemRow.deleted,
        (WorkItemRow.status_category.is_(None)) | (WorkItemRow.status_category != "done"),
    )
    if project is not None:
        query = query.where(WorkItemRow.project == project)
    return list(session.scalars(query.order_by(WorkItemRow.id)))


def dump_yaml(document: Mapping[str, Any]) -> str:
    """Render a document as block-style YAML in the order it was given."""
    return yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True, width=100)
