"""Four eyes in the browser: one operator queues on a relay that requires approval, a second approves it in the
admin, and the command then runs on a real agent and completes."""

from __future__ import annotations

import re
import time

from django.contrib.auth.models import User
from guardian.shortcuts import assign_perm
from playwright.sync_api import expect

from assignments.models import RelayAssignment
from commands.models import Command
from tests.browser.conftest import PASSWORD

FAST = ("--long-poll-wait", "500", "--heartbeat-interval", "500")
RUN_MS = 15_000
COMMAND_PAGE = re.compile(r"/admin/commands/command/(\d+)/change/$")


def operator(name: str, relay: RelayAssignment, *perms: str) -> User:
    user = User.objects.create_user(name, password=PASSWORD, is_staff=True)
    for perm in ("view_relay", *perms):
        assign_perm(f"assignments.{perm}", user, relay)
    return user


def test_a_second_person_approves_in_the_admin_and_the_command_runs(browser, hub, e2e_relay, start_agent) -> None:
    relay = e2e_relay.relay
    RelayAssignment.objects.filter(pk=relay.pk).update(requires_approval=True)
    operator("runner", relay, "run_command")
    approver = operator("approver", relay, "approve_command")
    start_agent(e2e_relay, hub, *FAST)
    page = browser.page

    # The runner queues it: it waits, and the agent polling all along does not get it.
    browser.login("runner")
    page.get_by_role("link", name="Run command").first.click()
    page.get_by_label(re.compile("e2e-machine")).check()
    page.fill("#id_command", "echo approved-run")
    with page.expect_navigation(url=COMMAND_PAGE):
        page.click("#rh-run")
    command = Command.objects.get(pk=int(COMMAND_PAGE.search(page.url).group(1)))
    expect(page.locator("#rh-status")).to_have_text("awaiting_approval")
    expect(page.locator("#rh-approval-text")).to_contain_text("Awaiting approval: requested by runner")
    expect(page.locator("#rh-approval-link")).to_have_text("See the approval")
    browser.screenshot("approval-awaiting-runner")
    time.sleep(1.5)  # three long-polls of the agent
    command.refresh_from_db()
    assert command.status == "awaiting_approval" and command.attempt == 0

    # The approver finds it from the dashboard, sees what will run, and approves it.
    page.context.clear_cookies()
    browser.login("approver")
    expect(page.get_by_test_id("approvals-waiting")).to_have_text("1")
    page.click("#rh-approvals-waiting")
    page.get_by_role("link", name="echo approved-run").click()
    expect(page.locator("#rh-plan-command")).to_have_text("echo approved-run")
    expect(page.locator("#rh-plan-target-count")).to_have_text("1")
    expect(page.locator("#rh-plan-targets")).to_contain_text("e2e-machine")
    expect(page.locator("#rh-approval-reasons")).to_have_text("relay 'e2e relay' requires approval")
    page.fill("#rh-reason", "looks right")
    browser.screenshot("approval-page")
    with page.expect_navigation(url=COMMAND_PAGE):
        page.click("#rh-approve")

    expect(page.locator("#rh-stdout")).to_have_text("approved-run\n", timeout=RUN_MS)
    expect(page.locator("#rh-status")).to_have_text("completed", timeout=RUN_MS)
    expect(page.locator("#rh-approval-text")).to_contain_text("Approved by approver at")
    expect(page.locator("#rh-approval-text")).to_contain_text("looks right (requested by runner")
    browser.screenshot("approval-approved-and-run")
    command.refresh_from_db()
    assert (command.status, command.exit_code, command.created_by.username) == ("completed", 0, "runner")
    assert (command.approval.state, command.approval.decided_by) == ("approved", approver)
