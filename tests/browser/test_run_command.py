"""Run commands on a real agent from the admin form and follow them live on the command page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from assignments.models import RelayAssignment
from commands.models import Command
from tests.e2e.processes import wait_for_file

FAST = ("--long-poll-wait", "500", "--heartbeat-interval", "500")
RUN_MS = 15_000
COMMAND_PAGE = re.compile(r"/admin/commands/command/(\d+)/change/$")


@pytest.fixture
def operator_page(browser, superuser, hub, e2e_relay, start_agent):
    start_agent(e2e_relay, hub, *FAST)
    browser.login("admin")
    return browser


def run(browser, command: str) -> Command:
    page = browser.page
    page.get_by_role("link", name="Run command").first.click()
    page.fill("#rh-filter-machines", "e2e")  # the machines list filters as one types
    page.get_by_label(re.compile("e2e-machine")).check()
    page.fill("#id_command", command)
    page.fill("#id_timeout_s", "90")
    with page.expect_navigation(url=COMMAND_PAGE):
        page.click("#rh-run")
    return Command.objects.get(pk=int(COMMAND_PAGE.search(page.url).group(1)))


def test_echo_hi_shows_its_output_and_completes(operator_page, superuser) -> None:
    page = operator_page.page

    command = run(operator_page, "echo hi")

    expect(page.locator("#rh-stdout")).to_have_text("hi\n", timeout=RUN_MS)
    expect(page.locator("#rh-status")).to_have_text("completed", timeout=RUN_MS)
    expect(page.locator("#rh-exit-code")).to_have_text("0")
    expect(page.locator("#rh-duration")).to_have_text(re.compile(r"^\d+(\.\d+)? m?s$"))
    operator_page.screenshot("command-echo-hi")
    command.refresh_from_db()
    assert (command.status, command.created_by) == ("completed", superuser)


def test_output_arrives_while_the_command_runs(operator_page, tmp_path) -> None:
    page = operator_page.page
    gate = tmp_path / "gate"

    run(operator_page, f"echo first; {wait_for_file(gate)}; echo second")

    expect(page.locator("#rh-stdout")).to_have_text("first\n", timeout=RUN_MS)
    expect(page.locator("#rh-status")).to_have_text("executing")
    operator_page.screenshot("command-streaming")
    gate.touch()
    expect(page.locator("#rh-stdout")).to_have_text("first\nsecond\n", timeout=RUN_MS)
    expect(page.locator("#rh-status")).to_have_text("completed")


def test_a_running_sleep_is_cancelled(operator_page) -> None:
    page = operator_page.page

    command = run(operator_page, "sleep 60")
    expect(page.locator("#rh-status")).to_have_text("executing", timeout=RUN_MS)
    with page.expect_navigation(url=COMMAND_PAGE):
        page.click("#rh-cancel")

    expect(page.locator("#rh-status")).to_have_text("cancelled", timeout=RUN_MS)
    expect(page.locator("#rh-cancel")).to_have_count(0)
    operator_page.screenshot("command-cancelled")
    command.refresh_from_db()
    assert command.status == "cancelled" and command.cancel_requested


def test_several_machines_run_as_a_batch(operator_page) -> None:
    RelayAssignment.issue(machine_id="silent-machine", name="silent relay")
    page = operator_page.page
    page.reload()
    page.get_by_role("link", name="Run command").first.click()
    page.get_by_label(re.compile("e2e-machine")).check()
    page.get_by_label(re.compile("silent-machine")).check()
    page.fill("#id_command", "echo from-batch")
    with page.expect_navigation(url=re.compile(r"/admin/commands/commandbatch/\d+/change/$")):
        page.click("#rh-run")

    done = page.locator('tr[data-machine="e2e-machine"]')
    expect(done.locator('[data-field="status"]')).to_have_text("completed", timeout=RUN_MS)
    expect(done.locator('[data-field="exit_code"]')).to_have_text("0")
    done.locator("summary").click()
    expect(done.locator('[data-field="output"]')).to_have_text("from-batch\n")
    # No relay of silent-machine is online: its copy is recorded as not delivered at once, with the reason.
    silent = page.locator('tr[data-machine="silent-machine"]')
    expect(silent.locator('[data-field="status"]')).to_have_text("undelivered")
    expect(silent.locator('[data-field="error"]')).to_contain_text("no enabled relay is online")
    expect(page.locator('#rh-batch-counts [data-count="not_delivered"] [data-field="value"]')).to_have_text("1")
    expect(page.locator("#rh-batch-status")).to_have_text("incomplete")  # nothing failed; nothing was delivered
    operator_page.screenshot("batch")


def test_an_uploaded_script_runs_with_its_environment_and_working_directory(operator_page, tmp_path) -> None:
    page = operator_page.page
    script = tmp_path / "report.sh"
    script.write_text('echo "release $RELEASE in $(pwd)"\nprintf \'\\033[32mgreen\\033[0m\\n\'\n')

    page.get_by_role("link", name="Run command").first.click()
    page.fill("#rh-filter-machines", "e2e")
    page.get_by_label(re.compile("e2e-machine")).check()
    page.set_input_files("#id_script_file", str(script))
    page.select_option("#id_interpreter", "bash")
    page.fill("#id_working_directory", str(tmp_path))
    page.fill("#id_environment", "RELEASE=2026.12 $(touch pwned)")
    operator_page.screenshot("run-form-script-upload")
    with page.expect_navigation(url=COMMAND_PAGE):
        page.click("#rh-run")

    expect(page.locator("#rh-status")).to_have_text("completed", timeout=RUN_MS)
    expect(page.locator("#rh-stdout")).to_contain_text(f"release 2026.12 $(touch pwned) in {tmp_path}")
    expect(page.locator("#rh-stdout .rh-fg-2")).to_have_text("green")
    expect(page.locator(".field-script_shown pre")).to_contain_text('echo "release $RELEASE in $(pwd)"')
    operator_page.screenshot("command-from-uploaded-script")
    command = Command.objects.get()
    assert command.command == "bash report.sh" and command.script == script.read_text()
    assert not (tmp_path / "pwned").exists()


def test_a_template_is_launched_with_parameters_from_its_form(operator_page, e2e_relay) -> None:
    from runbooks.models import JobTemplate

    e2e_relay.relay.labels = {"role": "e2e"}
    e2e_relay.relay.save()
    JobTemplate.objects.create(
        name="Greet", description="Says hello, safely.", selector="role=e2e",
        command='printf "%s x%s %s\\n" "$RELAYHUB_PARAM_WHO" "$RELAYHUB_PARAM_TIMES" "$RELAYHUB_PARAM_LOUD"',
        parameters=[{"name": "who", "type": "string", "pattern": "[a-z ;$()]+", "required": True},
                    {"name": "times", "type": "integer", "min": 1, "max": 3, "default": 1},
                    {"name": "loud", "type": "boolean"}])
    page = operator_page.page
    page.goto(f"{operator_page.hub.url}/admin/runbooks/jobtemplate/")
    page.get_by_role("link", name="Launch").click()
    expect(page.locator("#rh-target-count")).to_contain_text("1 now")

    page.fill("#id_param_who", "World")
    page.fill("#id_param_times", "5")
    page.click("#rh-launch")
    expect(page.locator(".errornote")).to_be_visible()
    expect(page.locator(".field-param_who")).to_contain_text("must match")

    page.fill("#id_param_who", "world; $(reboot)")
    page.fill("#id_param_times", "2")
    page.check("#id_param_loud")
    operator_page.screenshot("template-launch-form")
    with page.expect_navigation(url=re.compile(r"/admin/commands/commandbatch/\d+/change/$")):
        page.click("#rh-launch")
    row = page.locator('tr[data-machine="e2e-machine"]')
    expect(row.locator('[data-field="status"]')).to_have_text("completed", timeout=RUN_MS)
    row.locator("summary").click()
    expect(row.locator('[data-field="output"]')).to_have_text("world; $(reboot) x2 true\n")
    operator_page.screenshot("template-launch-batch")
