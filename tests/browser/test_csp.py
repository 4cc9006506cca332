"""The pages operators use run under the Content-Security-Policy without a single violation.

The ``browser`` fixture fails a test on any console error, and reports every
CSP violation as one; the other browser tests therefore check their pages too.
"""

from __future__ import annotations

from playwright.sync_api import expect

from commands.models import Command

PAGES = ["/admin/", "/admin/commands/command/run/", "/admin/commands/command/",
         "/admin/assignments/relayassignment/"]


def assert_policy(response) -> None:
    assert response is not None and response.ok, response and response.status
    header = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in header and "frame-ancestors 'none'" in header, header


def test_operator_pages_and_api_docs_run_without_violations(browser, superuser, e2e_relay) -> None:
    command = Command.objects.create(machine_id="e2e-machine", command="echo hi", timeout_ms=30_000)
    browser.login("admin")
    for path in [*PAGES, f"/admin/commands/command/{command.pk}/change/",
                 f"/admin/assignments/relayassignment/{e2e_relay.relay.pk}/change/"]:
        assert_policy(browser.goto(path))
        browser.page.wait_for_load_state("networkidle")

    assert_policy(browser.goto("/api/docs/"))
    expect(browser.page.locator(".swagger-ui .info .title")).to_contain_text("relayhub API")
    expect(browser.page.locator(".opblock").first).to_be_visible()
    browser.screenshot("api-docs")
    assert browser.console_errors == []


def test_an_injected_inline_script_is_refused_and_reported(browser, superuser) -> None:
    browser.login("admin")
    ran = browser.page.evaluate("""() => {
        window.inlineRan = false;
        const script = document.createElement("script");
        script.textContent = "window.inlineRan = true";
        document.body.appendChild(script);
        return window.inlineRan;
    }""")
    browser.page.wait_for_timeout(200)
    assert ran is False
    violations = [error for error in browser.console_errors if "CSP violation: script-src" in error]
    assert violations, browser.console_errors
    # Expected here; any other console error still fails the test.
    browser.console_errors[:] = [error for error in browser.console_errors
                                 if "script-src" not in error and "Content Security Policy" not in error]
