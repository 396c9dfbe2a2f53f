"""The ``leanguard`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from plugin.checking import InputError, as_json, as_text, check_files, has_errors
from plugin.logs import configure_logging
from plugin.rulesets import RuleCatalog, describe_problems, load_rules_path
from plugin.settings import Settings, SettingsError
from rules import RuleSetError

EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="leanguard")
def main() -> None:
    """Ask every epic which problem, which bet and which number."""


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        click.echo(f"leanguard: {exc}", err=True)
        sys.exit(EXIT_USAGE)


@main.command()
@click.option("--demo", is_flag=True, help="Load the demo workspace before starting.")
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes.")
@click.option("--threads", default=4, show_default=True, help="Threads per worker.")
def serve(demo: bool, workers: int, threads: int) -> None:
    """Run the web service (gunicorn) on LEANGUARD_HOST:LEANGUARD_PORT."""
    from plugin.demo import load_demo
    from plugin.runtime import Runtime
    from plugin.server import serve as run_server

    configure_logging()
    settings = _settings()
    runtime = Runtime.from_settings(settings)
    runtime.database.upgrade()
    if demo:
        loaded = load_demo(runtime)
        click.echo(f"leanguard: demo workspace ready ({loaded} items)")
    runtime.database.dispose()
    click.echo(f"leanguard: serving on http://{settings.host}:{settings.port}")
    run_server(settings, workers=workers, threads=threads)


@main.command()
@click.option("--burst", is_flag=True, help="Work until the queue is empty, then exit.")
def worker(burst: bool) -> None:
    """Run an rq worker for webhook deliveries (needs LEANGUARD_REDIS_URL)."""
    from plugin.server import run_worker

    configure_logging()
    settings = _settings()
    if not settings.redis_url:
        click.echo(
            "leanguard worker: LEANGUARD_REDIS_URL is not set; without Redis the web process "
            "works deliveries itself, so no separate worker is needed",
            err=True,
        )
        sys.exit(EXIT_USAGE)
    run_worker(settings, burst=burst)


@main.command()
def migrate() -> None:
    """Apply database migrations (LEANGUARD_DATABASE_URL, or the embedded SQLite file)."""
    from plugin.storage import Database

    settings = _settings()
    database = Database(settings.effective_database_url())
    database.upgrade()
    click.echo(f"leanguard: database at {database.url.render_as_string()} is up to date")


@main.command()
@click.option(
    "--rules",
    "rules_path",
    type=click.Path(path_type=Path),
    envvar="LEANGUARD_RULES",
    help="A rule-set file or folder (default: the built-in lean preset).",
)
@click.option(
    "--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def check(rules_path: Path | None, output: str, files: tuple[Path, ...]) -> None:
    """Evaluate items in JSON FILES (Jira or Linear payloads, API results, or item lists).

    Exits 0 when nothing fails at error severity, 1 when something does, 2 on bad usage
    or an invalid rules file.
    """
    catalog = _catalog(rules_path)
    try:
        checked = check_files(list(files), catalog)
    except InputError as exc:
        click.echo(f"leanguard check: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    if output == "json":
        click.echo(json.dumps(as_json(checked), indent=2))
    else:
        click.echo(as_text(checked))
    sys.exit(EXIT_FAILURES if has_errors(checked) else EXIT_OK)


@main.group()
def rules() -> None:
    """Work with rule-set files."""


@rules.command("validate")
@click.argument("path", type=click.Path(path_type=Path))
def validate_rules(path: Path) -> None:
    """Lint a rule-set file or folder; print every problem with its path."""
    catalog = _catalog(path)
    for ruleset in catalog.rulesets:
        lineage = f" (extends {' <- '.join(ruleset.lineage)})" if ruleset.lineage else ""
        click.echo(
            f"{ruleset.source}: ok: rule set {ruleset.name!r} version {ruleset.version}, "
            f"{len(ruleset.rules)} rules{lineage}"
        )


def _catalog(path: Path | None) -> RuleCatalog:
    if path is None:
        return RuleCatalog()
    try:
        return load_rules_path(path)
    except RuleSetError as exc:
        click.echo(describe_problems(exc.problems), err=True)
        sys.exit(EXIT_USAGE)


@main.command()
@click.option(
    "--tracker", required=True, type=click.Choice(["jira", "linear"]), help="The tracker."
)
@click.option("--project", required=True, help="Jira project key or Linear team key.")
@click.option("--restart", is_flag=True, help="Start over instead of resuming where it stopped.")
def backfill(tracker: str, project: str, restart: bool) -> None:
    """Import a project's epics with their history, evaluate them and store the results.

    Never writes to the tracker. Resumes an interrupted backfill from its last page.
    """
    from plugin.backfill import Backfiller, BackfillError
    from plugin.runtime import Runtime

    configure_logging()
    runtime = Runtime.from_settings(_settings())
    runtime.database.upgrade()
    backfiller = Backfiller(runtime)
    try:
        tenant = backfiller.tenant_for(tracker)
        record = backfiller.start(tenant, project, requested_by="cli", restart=restart)
        if record.pages_done:
            click.echo(f"leanguard: resuming backfill #{record.id} after {record.pages_done} pages")
        with click.progressbar(
            length=record.items_total or 0,
            label=f"Backfilling {tracker} {project}",
            show_pos=True,
        ) as bar:
            bar.update(record.items_evaluated)
            shown = record.items_evaluated

            def progress(done: int, total: int | None) -> None:
                nonlocal shown
                if total and bar.length != total:
                    bar.length = total
                bar.update(done - shown)
                shown = done

            backfiller.run(tenant, record, progress)
    except BackfillError as exc:
        click.echo(f"\nleanguard backfill: {exc}", err=True)
        sys.exit(EXIT_FAILURES)
    click.echo(f"leanguard: backfill #{record.id} done: {shown} epics evaluated")


@main.command()
@click.option("--tracker", type=click.Choice(["jira", "linear"]), help="Only this tracker.")
@click.option("--project", help="Only this Jira project or Linear team.")
@click.option("--tenant", type=int, help="Only this tenant (its id).")
@click.option("--from", "first", help="First day, YYYY-MM-DD (default: 12 weeks ago).")
@click.option("--to", "last", help="Last day, YYYY-MM-DD (default: today).")
@click.option("--review-days", default=30, show_default=True, help="Days to review an outcome.")
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json", "csv"]),
    default="text",
    show_default=True,
)
def report(
    tracker: str | None,
    project: str | None,
    tenant: int | None,
    first: str | None,
    last: str | None,
    review_days: int,
    output: str,
) -> None:
    """Print the feature-factory health report: outcome versus output."""
    from datetime import UTC, datetime

    from plugin.reports import Options, Scope, health_report, parse_period
    from plugin.reports.render import as_csv, as_text
    from plugin.storage import Database

    database = Database(_settings().effective_database_url())
    database.upgrade()
    try:
        period = parse_period(first, last, today=datetime.now(UTC).date())
    except ValueError as exc:
        click.echo(f"leanguard report: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    result = health_report(
        database,
        Scope(tenant_id=tenant, tracker=tracker, project=project),
        period,
        Options(review_days=review_days),
    )
    if output == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
    elif output == "csv":
        click.echo(as_csv(result), nl=False)
    else:
        click.echo(as_text(result))
