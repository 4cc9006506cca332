"""The live pages follow over Server-Sent Events, not by polling: a command page opened while the command runs
gets its output and its end pushed, the dashboard's counts change as commands are queued, and a command page
whose stream fails falls back to polling and still follows the command to its end."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from commands.models import Command
from tests.browser.test_command_console import running
from tests.e2e.processes import wait_for, wait_for_file

FAST = ("--long-poll-wait", "500", "--heartbeat-interval", "500")
RUN_MS = 15_000


def polled(browser, command: Command) -> list[str]:
    """Requests to the JSON endpoints that the page polls when it has no stream."""
    endpoints = (f"/api/v1/commands/{command.pk}/output/", f"/admin/commands/command/{command.pk}/state/")
    return [url for url in browser.requests if any(endpoint in url for endpoint in endpoints)]


def test_a_running_command_page_gets_its_output_and_end_over_sse(browser, superuser, hub, e2e_relay, start_agent,
                                                                  tmp_path):
    gate = tmp_path / "gate"
    command = Command.objects.create(machine_id="e2e-machine", timeout_ms=60_000, created_by=superuser,
                                     command=f"echo first; {wait_for_file(gate)}; echo second")
    start_agent(e2e_relay, hub, *FAST)
    wait_for(lambda: Command.objects.get(pk=command.pk).status == "executing", 15, "the command to start")
    browser.login("admin")
    browser.goto(f"/admin/commands/command/{command.pk}/change/")
    page = browser.page
    page.evaluate("window.rhSamePage = true")  # gone if the page reloads
    panel = page.locator("#rh-live")
    expect(panel).to_have_attribute("data-transport", "sse")
    expect(page.locator("#rh-status")).to_have_text("executing")
    expect(page.locator("#rh-stdout")).to_have_text("first\n", timeout=RUN_MS)

    gate.touch()
    expect(page.locator("#rh-stdout")).to_have_text("first\nsecond\n", timeout=RUN_MS)
    expect(page.locator("#rh-status")).to_have_text("completed", timeout=RUN_MS)
    expect(page.locator("#rh-exit-code")).to_have_text("0")
    expect(page.locator("#rh-completed-at")).to_have_text(re.compile(r"UTC$"))
    expect(panel).to_have_attribute("data-finished", "true")
    expect(panel).to_have_attribute("data-transport", "sse")
    assert page.evaluate("window.rhSamePage") is True
    assert polled(browser, command) == []  # everything came over the stream
    assert [url for url in browser.requests if f"/admin/commands/command/{command.pk}/stream/" in url]
    browser.screenshot("live-command-over-sse")


def test_the_dashboard_counts_change_over_sse_as_commands_are_queued(browser, superuser, e2e_relay):
    browser.login("admin")  # lands on the dashboard
    page = browser.page
    page.evaluate("window.rhSamePage = true")
    expect(page.locator(".rh-dashboard")).to_have_attribute("data-transport", "sse")
    expect(page.get_by_test_id("pending-now")).to_have_text("0")
    expect(page.get_by_test_id("oldest-pending")).to_have_text("none waiting")

    # Queued by another process (this one): the hub hears of it through the broker, or at its next look.
    for _ in range(2):
        Command.objects.create(machine_id="e2e-machine", command="true", timeout_ms=60_000, created_by=superuser)
    expect(page.get_by_test_id("pending-now")).to_have_text("2", timeout=RUN_MS)
    expect(page.get_by_test_id("count-pending")).to_have_text("2")
    expect(page.get_by_test_id("commands-24h")).to_have_text("2")
    expect(page.get_by_test_id("oldest-pending")).to_have_text(re.compile(r"^the oldest for \d+ s$"))
    assert page.evaluate("window.rhSamePage") is True
    browser.screenshot("live-dashboard")


def test_a_command_page_whose_stream_fails_falls_back_to_polling(browser, superuser, e2e_relay):
    relay = running(superuser, e2e_relay)
    page = browser.page
    refused = []

    def fail(route) -> None:
        refused.append(route.request.url)
        route.fulfill(status=500, content_type="text/plain", body="stream broken")

    page.route(re.compile(r"/stream/"), fail)
    browser.login("admin")
    browser.goto(f"/admin/commands/command/{relay.command.pk}/change/")
    panel = page.locator("#rh-live")
    expect(panel).to_have_attribute("data-transport", "poll")
    relay.write("polled output\n")
    expect(page.locator("#rh-stdout")).to_have_text("polled output\n", timeout=RUN_MS)
    relay.finish()
    expect(page.locator("#rh-status")).to_have_text("completed", timeout=RUN_MS)
    expect(panel).to_have_attribute("data-finished", "true")
    assert refused and polled(browser, relay.command)
    count = len(polled(browser, relay.command))
    time.sleep(1)
    assert len(polled(browser, relay.command)) == count  # polling stopped with the command
    # The refused stream is the browser's own complaint, expected here; nothing else may be on the console.
    expected = [error for error in browser.console_errors
                if error.startswith("Failed to load resource: the server responded with a status of 500")
                and f"/admin/commands/command/{relay.command.pk}/stream/" in error]
    assert expected
    browser.console_errors[:] = [error for error in browser.console_errors if error not in expected]


def test_a_batch_page_follows_its_targets_over_sse(browser, superuser, e2e_relay):
    from assignments.models import RelayAssignment
    from commands import batches
    from tests.conftest import mark_online

    other = RelayAssignment.issue(machine_id="other-machine", name="other relay").relay
    mark_online(e2e_relay.relay, other)
    batch = batches.create(machine_ids=["e2e-machine", "other-machine"], command="echo hi", timeout_ms=60_000,
                           created_by=superuser)
    copies = {command.machine_id: command for command in batch.commands.all()}
    browser.login("admin")
    browser.goto(f"/admin/commands/commandbatch/{batch.pk}/change/")
    page = browser.page
    panel = page.locator("#rh-batch")
    expect(panel).to_have_attribute("data-transport", "sse")
    expect(page.locator("#rh-batch-status")).to_have_text("running")

    for machine_id, relay, exit_code in (("e2e-machine", e2e_relay.relay, 0), ("other-machine", other, 2)):
        copy = copies[machine_id]
        copy.claim(relay)
        copy.start(relay, 1)
        copy.finish(relay, 1, status="completed" if exit_code == 0 else "failed", exit_code=exit_code,
                    output=f"hi from {machine_id}\n")
        row = page.locator(f'tr[data-machine="{machine_id}"]')
        expect(row.locator('[data-field="exit_code"]')).to_have_text(str(exit_code), timeout=RUN_MS)
        expect(row.locator('[data-field="output"]')).to_have_text(f"hi from {machine_id}\n")
    expect(page.locator("#rh-batch-status")).to_have_text("failed", timeout=RUN_MS)
    expect(page.locator('#rh-batch-counts [data-count="failed_runs"] [data-field="value"]')).to_have_text("1")
    expect(panel).to_have_attribute("data-finished", "true")
    assert not [url for url in browser.requests if "/api/v1/batches/" in url]  # never polled
    browser.screenshot("live-batch-over-sse")
