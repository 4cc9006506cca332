"""Scripts, environment, working directory and run-as with the real hub, relay-agent, sudo and sshd."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from assignments.models import RelayStatus
from commands.models import Command
from configpush.models import ConfigPush
from tests.agent.sshd import SSHServer
from tests.e2e.processes import finished, wait_for
from tests.e2e.test_relay_exec import relay_exec

FAST = ("--long-poll-wait", "500")
SCRIPT = """import os, sys
print(os.getcwd())
print(os.environ["RELEASE"])
print(sys.argv[0].startswith("/tmp/"))
"""


def settled(push: ConfigPush) -> str:
    wait_for(lambda: ConfigPush.objects.get(pk=push.pk).status in ("acked", "failed"), 10, f"push {push.pk}'s ack")
    return ConfigPush.objects.get(pk=push.pk).status


@pytest.fixture
def agent(hub, e2e_relay, start_agent):
    start_agent(e2e_relay, hub, *FAST)
    wait_for(lambda: "run_options" in RelayStatus.objects.get(relay=e2e_relay.relay).capabilities, 15,
             "the agent's run_options capability")
    return e2e_relay


def test_relay_exec_runs_an_uploaded_script_with_env_and_cwd(agent, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    script = tmp_path / "release.py"
    script.write_text(SCRIPT)
    value = f"v2; touch {marker} $(touch {marker})"

    proc = relay_exec("e2e-machine", "--timeout", "20", "--script", str(script), "--interpreter", "python3",
                      "--env", f"RELEASE={value}", "--cwd", str(tmp_path))
    out, errors = proc.communicate(timeout=60)

    assert proc.returncode == 0, errors
    assert out == f"{tmp_path}\n{value}\nTrue\n"
    assert not marker.exists()
    command = Command.objects.get()
    assert (command.command, command.interpreter, command.script) == ("python3 release.py", "python3", SCRIPT)


def test_relay_exec_refuses_options_in_a_bad_shape_before_queueing(transactional_db) -> None:
    proc = relay_exec("m", "--env", "NOEQUALS", "--", "true")
    _, errors = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "--env takes NAME=VALUE" in errors
    assert "Traceback" not in errors and not Command.objects.exists()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("sudo"), reason="run-as needs root and sudo (CI has both)")
def test_run_as_needs_the_relay_policy_then_runs_through_sudo(agent) -> None:
    refused = finished(Command.objects.create(machine_id="e2e-machine", command="id -un", run_as="nobody",
                                              timeout_ms=10_000), timeout=20)
    assert refused.status == "failed" and refused.exit_code is None
    assert refused.error == "run-as user 'nobody' not allowed by this relay's run_as policy"
    assert refused.output == ""

    push = ConfigPush.objects.create(relay=agent.relay, push_type="run_as", payload={"users": ["nobody"]})
    assert settled(push) == "acked"

    proc = relay_exec("e2e-machine", "--timeout", "20", "--run-as", "nobody", "--env", "GREETING=hello there",
                      "--", 'printf "%s|%s" "$(id -un)" "$GREETING"')
    out, errors = proc.communicate(timeout=60)
    assert proc.returncode == 0, errors
    assert out == "nobody|hello there"


def test_a_script_over_ssh_runs_as_a_file_with_its_environment(hub, e2e_relay, start_agent, ssh_key,
                                                               sshd: SSHServer, tmp_path: Path) -> None:
    push = ConfigPush.objects.create(relay=e2e_relay.relay, push_type="ssh_targets", payload={
        "targets": [{"host": sshd.host, "port": sshd.port, "hostKey": sshd.host_key}]})
    start_agent(e2e_relay, hub, *FAST, "--known-hosts", str(tmp_path / "no_known_hosts"))
    assert settled(push) == "acked"
    command = finished(Command.objects.create(
        machine_id="e2e-machine", target_type="ssh", target_host=sshd.host, target_port=sshd.port,
        target_username=sshd.user, command="python3 release.py", script=SCRIPT, interpreter="python3",
        environment={"RELEASE": "$(id)`id`"}, working_directory="/", timeout_ms=20_000), timeout=30)

    assert command.status == "completed", (command.error, command.stderr)
    assert command.output == "/\n$(id)`id`\nTrue\n"
