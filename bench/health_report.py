"""Health-report benchmarks: the JSON report over 100,000 items, and backfill throughput.

Everything runs in a schema of its own on PostgreSQL (``LEANGUARD_BENCH_POSTGRES_URL``, else
``LEANGUARD_TEST_POSTGRES_URL``, else the local test server), loaded with COPY and dropped
afterwards. ``run()`` returns (figure, value, budget, verdict) rows and prints them.
"""

from __future__ import annotations

import io
import os
import random
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from plugin.app import create_app
from plugin.backfill import Backfiller
from plugin.runtime import Runtime
from plugin.settings import Settings
from plugin.storage import Database, Tenant, get_or_create_tenant
from plugin.storage.db import temporary_schema
from plugin.trackers.jira import JiraClient

ITEMS = 100_000
EVALUATIONS_PER_ITEM = 10
PROJECTS = 20
REPORT_RUNS = 5
REPORT_BUDGET_S = 1.0
BACKFILL_EPICS = 5_000
BACKFILL_BUDGET_PER_S = 1_000.0
SITE = "https://bench.atlassian.net"
Row = tuple[str, str, str, str]


def postgres_url() -> str:
    """The server the benchmark uses."""
    return os.environ.get(
        "LEANGUARD_BENCH_POSTGRES_URL",
        os.environ.get(
            "LEANGUARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )


def run() -> list[Row]:
    """Measure both figures and return them as (figure, value, budget, verdict)."""
    rows: list[Row] = []
    server = postgres_url()
    with temporary_schema(server, prefix="leanguard_bench") as url:
        database = Database(url)
        database.upgrade()
        started = time.perf_counter()
        _load(database)
        load_s = time.perf_counter() - started
        rows.append(
            (
                "health: load 100,000 items + 1,000,000 evaluations (COPY)",
                f"{load_s:.1f} s",
                "-",
                "info",
            )
        )
        rows += _report_latency(database, url)
        database.dispose()
    with temporary_schema(server, prefix="leanguard_bench") as url:
        rows += _backfill_throughput(url)
    for row in rows:
        print(f"[health] {row[0]}: {row[1]} (budget {row[2]}) {row[3]}", flush=True)
    return rows


# The report ------------------------------------------------------------------------------------


def _load(database: Database) -> None:
    """Bulk-load a year of history: items, timelines and ten evaluations per item."""
    rng = random.Random(7)
    # Relative to today, so the report's default period (the last 12 weeks) covers real data.
    now = datetime.now(UTC)
    year_ago = now - timedelta(days=365)
    raw = database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(
            "INSERT INTO tenants (id, tracker, site, name, enabled, settings, created_at, "
            "updated_at) VALUES (1, 'jira', %s, '', true, '{}', now(), now()), "
            "(2, 'linear', 'org-bench', '', true, '{}', now(), now())",
            (SITE,),
        )
        items, timelines, evaluations = io.StringIO(), io.StringIO(), io.StringIO()
        evaluation_id = 0
        for item_id in range(1, ITEMS + 1):
            tenant = 1 if item_id % 4 else 2
            tracker = "jira" if tenant == 1 else "linear"
            project = f"P{item_id % PROJECTS}"
            key = f"{project}-{item_id}"
            items.write(
                f"{item_id}\t{tenant}\t{tracker}\t{item_id}\t{key}\t{project}\tepic\t"
                f"Epic {item_id}\t{{}}\t\\N\tf\t{year_ago.isoformat()}\t{now.isoformat()}\n"
            )
            started = year_ago + timedelta(days=rng.uniform(0, 350))
            done = started + timedelta(days=rng.uniform(3, 120))
            done_text = done.isoformat() if done < now and rng.random() < 0.9 else "\\N"
            review = rng.choice(["validated", "invalidated", "inconclusive", "\\N", "\\N"])
            reviewed = (
                (done + timedelta(days=rng.uniform(0, 45))).isoformat()
                if review != "\\N" and done_text != "\\N"
                else "\\N"
            )
            if reviewed == "\\N":
                review = "\\N"
            ready = rng.choice(["t", "f", "\\N"])
            timelines.write(
                f"{item_id}\t{tenant}\t{tracker}\t{project}\t{key}\t{started.isoformat()}\t"
                f"{done_text}\tf\t{ready}\t\t{rng.choice(['t', 'f'])}\t{review}\t{reviewed}\t"
                f"{rng.randint(0, 40)}\t{'t' if rng.random() < 0.7 else 'f'}\tbackfill\t"
                f"{now.isoformat()}\n"
            )
            fixed_after = rng.randint(0, EVALUATIONS_PER_ITEM)
            first = year_ago + timedelta(days=rng.uniform(0, 300))
            for n in range(EVALUATIONS_PER_ITEM):
                evaluation_id += 1
                when = first + timedelta(days=n * rng.uniform(0.5, 6))
                status = "fail" if n < fixed_after else ("waived" if item_id % 13 == 0 else "pass")
                evaluations.write(
                    f"{evaluation_id}\t{item_id}\t{when.isoformat()}\tlean\t1\t{status}\t"
                    f"{1 + item_id % 3 if status == 'fail' else 0}\t[]\t[]\t{{}}\n"
                )
        for table, columns, data in (
            (
                "work_items",
                "id, tenant_id, tracker, item_id, key, project, kind, title, snapshot, "
                "status_category, deleted, first_seen_at, updated_at",
                items,
            ),
            (
                "epic_timelines",
                "work_item_id, tenant_id, tracker, project, key, started_at, done_at, canceled, "
                "lean_ready_at_start, lean_ready_note, metric_at_done, outcome_review, "
                "reviewed_at, child_issues_done, new_value, source, synced_at",
                timelines,
            ),
            (
                "evaluations",
                "id, work_item_id, evaluated_at, ruleset_name, ruleset_version, status, "
                "violations, failing_rules, fields_present, tree",
                evaluations,
            ),
        ):
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                copy.write(data.getvalue())
        cursor.execute("SELECT setval('evaluations_id_seq', %s)", (evaluation_id,))
        cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def _report_latency(database: Database, url: str) -> list[Row]:
    settings = Settings(database_url=url, admin_token="bench", secret_key="bench" * 8)
    runtime = Runtime(settings=settings, database=database)
    app = create_app(settings, runtime=runtime, start_worker=False)
    client = app.test_client()
    headers = {"Authorization": "Bearer bench"}
    # The default request: every tenant and project, the last 12 weeks.
    query = "/api/v1/reports/health"
    started = time.perf_counter()
    first = client.get(query, headers=headers)
    fold_s = time.perf_counter() - started
    if first.status_code != 200:
        raise RuntimeError(f"the report answered {first.status_code}: {first.get_data()[:200]!r}")
    samples = []
    for _ in range(REPORT_RUNS):
        started = time.perf_counter()
        answer = client.get(query, headers=headers)
        samples.append(time.perf_counter() - started)
        if answer.status_code != 200:
            raise RuntimeError(f"the report answered {answer.status_code}")
    median = statistics.median(samples)
    body = answer.get_json()
    return [
        (
            "health: first report (folds 1,000,000 evaluations once)",
            f"{fold_s:.2f} s",
            "-",
            "info",
        ),
        (
            f"health: JSON report, {ITEMS:,} items / {ITEMS * EVALUATIONS_PER_ITEM:,} "
            f"evaluations, median of {REPORT_RUNS}",
            f"{median * 1000:.0f} ms",
            f"< {REPORT_BUDGET_S * 1000:.0f} ms",
            "PASS" if median < REPORT_BUDGET_S else "MISS",
        ),
        (
            "health: report covers",
            f"{len(body['projects'])} projects, {body['epics_delivered']:,} epics delivered",
            "-",
            "info",
        ),
    ]


# Backfill --------------------------------------------------------------------------------------


class InstantJira(JiraClient):
    """A Jira that answers every backfill call at once, from memory."""

    def __init__(self, pages: Sequence[list[dict[str, Any]]]) -> None:
        super().__init__(SITE, email="bench@example.com", api_token="bench")
        self.pages = pages

    def count_issues(self, jql: str) -> int | None:
        return sum(len(page) for page in self.pages)

    def search_epics(
        self,
        jql: str,
        *,
        page_token: str | None,
        max_results: int = 100,
        changelog: bool = False,
        fields: Sequence[str] = ("*all",),
    ) -> tuple[list[dict[str, Any]], str | None]:
        if jql.startswith("parent"):
            return [], None
        index = int(page_token or 0)
        following = str(index + 1) if index + 1 < len(self.pages) else None
        return self.pages[index], following

    def status_categories(self) -> dict[str, str]:
        return {"1": "new", "3": "indeterminate", "10001": "done"}

    def field_names(self) -> dict[str, str]:
        return {"customfield_10050": "Customer problem"}


def _epic(n: int) -> dict[str, Any]:
    description = (
        "h2. Hypothesis\nWe believe one-click upgrades will result in more upgrades; we will "
        "know when upgrades rise.\nh2. Success metric\nUpgrades from 4% to 9% by 2026-06-30.\n"
    )
    return {
        "id": str(50_000 + n),
        "key": f"BF-{n}",
        "fields": {
            "summary": f"Epic {n}",
            "issuetype": {"name": "Epic", "hierarchyLevel": 1},
            "project": {"key": "BF"},
            "status": {"name": "Done", "statusCategory": {"key": "done"}},
            "description": description + ("h2. Outcome\nValidated.\n" if n % 2 else ""),
            "labels": [],
            "customfield_10050": "Admins cannot upgrade without a sales call.",
            "created": "2026-01-05T09:00:00.000+0000",
            "updated": "2026-03-05T10:00:00.000+0000",
        },
        "changelog": {
            "startAt": 0,
            "total": 2,
            "histories": [
                {
                    "created": "2026-02-01T10:00:00.000+0000",
                    "items": [{"field": "status", "fieldtype": "jira", "to": "3"}],
                },
                {
                    "created": "2026-03-01T10:00:00.000+0000",
                    "items": [{"field": "status", "fieldtype": "jira", "to": "10001"}],
                },
            ],
        },
    }


def _backfill_throughput(url: str) -> list[Row]:
    pages = [[_epic(n) for n in range(start, start + 50)] for start in range(0, BACKFILL_EPICS, 50)]
    client = InstantJira(pages)
    settings = Settings(database_url=url, jira_url=SITE, jira_api_token="bench")
    database = Database(url)
    database.upgrade()
    runtime = Runtime(settings=settings, database=database)
    runtime.client_factory = lambda tenant: client
    with database.session() as session:
        tenant: Tenant = get_or_create_tenant(session, tracker="jira", site=SITE)
        session.expunge(tenant)
    backfiller = Backfiller(runtime)
    record = backfiller.start(tenant, "BF")
    started = time.perf_counter()
    backfiller.run(tenant, record)
    elapsed = time.perf_counter() - started
    database.dispose()
    per_s = BACKFILL_EPICS / elapsed
    return [
        (
            f"health: backfill, {BACKFILL_EPICS:,} Jira epics with changelogs, instant tracker",
            f"{per_s:,.0f} items/s",
            f">= {BACKFILL_BUDGET_PER_S:,.0f} items/s",
            "PASS" if per_s >= BACKFILL_BUDGET_PER_S else "MISS",
        )
    ]


if __name__ == "__main__":
    run()
