"""The demo workspace: real results on first start, clearly marked, no tracker calls."""

from __future__ import annotations

from pathlib import Path

import responses

from plugin.app import create_app
from plugin.demo import load_demo
from plugin.settings import Settings


def test_demo_items_are_evaluated_and_shown_without_calling_a_tracker(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'demo.db'}", secret_key="k")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as tracker:
        app = create_app(settings, start_worker=False)
        runtime = app.extensions["leanguard.runtime"]
        assert load_demo(runtime) == 7
        assert load_demo(runtime) == 7  # loading again refreshes, never duplicates
        client = app.test_client()
        home = client.get("/").get_data(as_text=True)
        assert len(tracker.calls) == 0  # nothing left the process
    assert "SHOP-102" in home and "GRO-12" in home and "onboarding-3f1" in home
    assert "· demo" in home
    page = client.get("/items/jira/SHOP-102")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "This is a demo item" in text
    assert "No success metric found." in text
    assert "Add a description section headed &#34;Success metric&#34;" in text
    assert client.get("/items/jira/NOPE-1").status_code == 404


def test_the_health_report_has_figures_on_first_start(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'demo.db'}", secret_key="k", admin_token="t0ken"
    )
    app = create_app(settings, start_worker=False)
    load_demo(app.extensions["leanguard.runtime"])
    report = (
        app.test_client()
        .get("/api/v1/reports/health", headers={"Authorization": "Bearer t0ken"})
        .get_json()
    )
    # Demo history: three epics started in the last twelve weeks, two of them lean-ready, and
    # one delivered epic whose review says the bet did not pay off.
    assert report["epics_started"] == 3
    assert report["epics_started_lean_ready"] == 2
    assert report["epics_delivered"] == 1
    assert report["hypotheses_invalidated"] == 1
    assert report["health_score"] is not None
