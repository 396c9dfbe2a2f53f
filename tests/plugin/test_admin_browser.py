"""The rules admin in a real Chromium: log in, edit, see a validation error, preview, save.

Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright without its own browser
download. Outside CI a missing Chromium skips this test with the reason; in CI it fails it.
Screenshots land in ``artifacts/screenshots/``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.rules_admin import ADMIN_TOKEN, epic, make_app, seed
from werkzeug.serving import make_server

CHROMIUM = Path(os.environ.get("LEANGUARD_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
NEW_RULES = """\
version: 1
name: jira-pay
extends: lean
rules:
  - id: success-metric
    mode: {mode}
"""


def missing(reason: str) -> None:
    """Fail in CI, skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def browser() -> Iterator[Any]:
    """Launch Debian's Chromium through Playwright."""
    if not CHROMIUM.exists():
        missing(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def base_url(tmp_path: Path) -> Iterator[str]:
    """Serve the app on a free loopback port, with two stored epics of project PAY."""
    app = make_app(tmp_path)
    seed(app, [epic("PAY-1"), epic("PAY-2", metric=None)])
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"rules-admin-{name}.png"), full_page=True)


def test_a_product_owner_changes_a_projects_rules(browser: Any, base_url: str) -> None:
    from playwright.sync_api import expect

    page = browser.new_page()
    page.set_default_timeout(15_000)

    # The admin page sends a stranger to the login form; the token is typed and sent with Enter.
    page.goto(f"{base_url}/admin")
    expect(page.get_by_label("Admin token")).to_be_focused()
    page.keyboard.type(ADMIN_TOKEN)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Rules per project")).to_be_visible()
    shot(page, "1-projects")

    page.get_by_role("link", name="jira · PAY").click()
    expect(page.get_by_role("heading", name="Jira project PAY")).to_be_visible()
    expect(page.get_by_text("Epics and projects need a success metric.")).to_be_visible()

    # A typo is caught while typing, with the path of the problem.
    editor = page.get_by_label("YAML", exact=False).first
    editor.fill(NEW_RULES.format(mode="later"))
    problems = page.locator("#inline-problems")
    expect(problems).to_contain_text("rules[0].mode")
    expect(problems).to_contain_text("Must be one of: off, dry-run, warn, gate")
    expect(editor).to_have_attribute("aria-invalid", "true")
    shot(page, "2-inline-validation")

    editor.fill(NEW_RULES.format(mode='"off"'))
    expect(problems).to_have_text("The YAML is valid.")
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#preview")
    expect(preview).to_contain_text("1 would stop failing")
    expect(preview.get_by_role("link", name="PAY-2")).to_be_visible()
    shot(page, "3-preview")

    page.get_by_label("Note for the history").fill("Metric agreed with finance next sprint")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#notice")).to_contain_text("Saved version 1.")
    expect(page.locator("#progress-text")).to_contain_text("Done: 2 of 2 items re-checked.")
    version = page.locator("#version-1")
    expect(version).to_contain_text("Metric agreed with finance next sprint")
    version.get_by_text("Diff with nothing").click()
    expect(version.locator("pre.diff")).to_contain_text('mode: "off"')
    shot(page, "4-saved-history")
