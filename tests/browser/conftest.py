"""Playwright (sync API) on Debian's Chromium against a real uvicorn hub on the test database.

The browser never downloads anything and may talk to 127.0.0.1 only: every
test fails on a console error or on a request to any other host.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connections

from tests.e2e.conftest import e2e_relay, hub, sshd, start_agent, start_hub  # noqa: F401 - shared fixtures
from tests.e2e.processes import ROOT, Hub

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "pw-browser-4711"
STEP_MS = 5_000
# Chromium reports a Content-Security-Policy refusal on the console too; this says which directive,
# and turns it into a console error, which fails the test.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => console.error(
  `CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"} on ${location.pathname}`));
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@dataclass
class Browser:
    page: sync_api.Page
    hub: Hub
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def goto(self, path: str) -> sync_api.Response | None:
        return self.page.goto(f"{self.hub.url}{path}")

    def login(self, username: str, password: str = PASSWORD) -> None:
        self.goto("/admin/login/?next=/admin/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        with self.page.expect_navigation():
            self.page.click("input[type=submit]")
        sync_api.expect(self.page.locator("#user-tools")).to_contain_text(username)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=path, full_page=True)
        return path


@pytest.fixture
def superuser(transactional_db):
    from django.contrib.auth.models import User

    return User.objects.create_superuser("admin", "admin@example.com", PASSWORD)


@pytest.fixture
def browser(hub: Hub, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    # Playwright's sync API keeps an event loop running in this thread, which Django's ORM
    # guard would take for async code; the ORM calls here are plain synchronous test set-up.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        context.add_init_script(REPORT_CSP_VIOLATIONS)
        page = context.new_page()
        page.set_default_timeout(STEP_MS)
        sync_api.expect.set_options(timeout=STEP_MS)
        session = Browser(page, hub)
        page.on("console", lambda message: message.type == "error" and session.console_errors.append(
            f"{message.text} at {message.location}"))
        page.on("pageerror", lambda error: session.console_errors.append(f"uncaught: {error}"))
        page.on("request", lambda req: session.requests.append(req.url))
        try:
            yield session
        finally:
            session.screenshot(f"{request.node.name}-end")
            context.close()
            chromium.close()
            # With the loop running, asgiref gives the test its own DB connections; close them
            # here, or Postgres refuses to drop the test database at the end of the session.
            connections.close_all()
    assert session.console_errors == []
    foreign = [url for url in session.requests
               if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).hostname != "127.0.0.1"]
    assert foreign == []
    assert session.requests, "the browser made no requests at all"
