"""The command page follows a running command to its end without a reload: output, status, times, exit code,
duration."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from commands.models import Command
from tests.e2e.processes import wait_for_file

FAST = ("--long-poll-wait", "500", "--heartbeat-interval", "500")
RUN_MS = 15_000
MOMENT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")


def test_the_command_page_fills_in_completed_at_without_a_reload(browser, superuser, hub, e2e_relay, start_agent,
                                                                  tmp_path):
    gate = tmp_path / "gate"
    command = Command.objects.create(machine_id="e2e-machine", command=f"echo start; {wait_for_file(gate)}; echo end",
                                     timeout_ms=120_000, created_by=superuser)
    browser.login("admin")
    browser.goto(f"/admin/commands/command/{command.pk}/change/")
    page = browser.page
    page.evaluate("window.rhSamePage = true")  # gone if the page reloads
    completed = page.locator('.field-live_completed_at [data-live="completed_at"]')
    expect(completed).to_have_text("–")
    expect(page.locator("#rh-completed-at")).to_have_text("–")
    expect(page.locator('[data-live="timeout"]').first).to_have_text("2 min")
    expect(page.locator('.field-live_output_truncated [data-live]')).to_have_text("no")

    start_agent(e2e_relay, hub, *FAST)

    expect(page.locator("#rh-status")).to_have_text("executing", timeout=RUN_MS)
    expect(page.locator("#rh-started-at")).to_have_text(MOMENT)
    expect(page.locator("#rh-stdout")).to_have_text("start\n", timeout=RUN_MS)  # output arrives as it runs
    expect(page.locator("#rh-completed-at")).to_have_text("–")
    browser.screenshot("command-page-live-running")
    gate.touch()
    expect(page.locator("#rh-status")).to_have_text("completed", timeout=RUN_MS)
    expect(page.locator("#rh-completed-at")).to_have_text(MOMENT)
    expect(completed).to_have_text(MOMENT)
    expect(page.locator("#rh-exit-code")).to_have_text("0")
    expect(page.locator("#rh-duration")).to_have_text(re.compile(r"^\d+(\.\d+)? m?s$"))
    expect(page.locator("#rh-stdout")).to_have_text("start\nend\n")
    assert page.evaluate("window.rhSamePage") is True
    browser.screenshot("command-page-live-completed")
    browser.goto("/admin/commands/command/")
    browser.screenshot("command-list")
    browser.goto("/admin/")
    browser.screenshot("dashboard-now")
