"""allowed_commands cannot be bypassed with shell syntax: the real hub, the real relay-agent, a real sshd (SPEC §7).

Under the entry `echo *`, `echo x; touch FILE` used to run both commands, locally and over SSH.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from commands.models import Command
from configpush.models import ConfigPush
from credentials.models import SharedCredential
from tests.agent.sshd import SSHServer
from tests.e2e.processes import finished, wait_for

FAST = ("--long-poll-wait", "500")
REFUSED = "command not allowed by this relay's allowed_commands policy"


def settled(push: ConfigPush) -> ConfigPush:
    wait_for(lambda: ConfigPush.objects.get(pk=push.pk).status in ("acked", "failed"), 10, f"push {push.pk}'s ack")
    push.refresh_from_db()
    return push


@pytest.fixture
def agent_with_allow_list(hub, e2e_relay, start_agent, sshd: SSHServer, tmp_path: Path) -> dict:
    """An agent allowing only `echo *` and `printf '{%s}\\n' * *`, able to reach the test sshd; the ssh target."""
    credential = SharedCredential(name="sshd-key", credential_type="ssh_key", target_host=f"{sshd.host}:{sshd.port}")
    credential.set_value(sshd.client_key)
    credential.save()
    credential.assigned_relays.add(e2e_relay.relay)
    pushes = [
        ConfigPush.objects.create(relay=e2e_relay.relay, push_type="allowed_commands",
                                  payload={"commands": ["echo *", "printf '{%s}\\n' * *"]}),
        ConfigPush.objects.create(relay=e2e_relay.relay, push_type="ssh_targets", payload={
            "targets": [{"host": sshd.host, "port": sshd.port, "hostKey": sshd.host_key}]}),
    ]
    start_agent(e2e_relay, hub, *FAST, "--known-hosts", str(tmp_path / "no_known_hosts"))
    assert [settled(push).status for push in pushes] == ["acked", "acked"]
    return {"target_type": "ssh", "target_host": sshd.host, "target_port": sshd.port, "target_username": sshd.user}


ATTACKS = [
    ("echo x; touch {marker}", "';'"),
    ("echo x && touch {marker}", "'&'"),
    ("echo x | touch {marker}", "'|'"),
    ("echo x\ntouch {marker}", "'\\n'"),
    ("echo $(touch {marker})", "'$'"),
    ("echo `touch {marker}`", "'`'"),
    ("echo x > {marker}", "'>'"),
]


def test_shell_syntax_never_runs_locally_or_over_ssh(agent_with_allow_list: dict, tmp_path: Path) -> None:
    queued = []
    for where, target in (("local", {}), ("ssh", agent_with_allow_list)):
        for index, (attack, syntax) in enumerate(ATTACKS):
            marker = tmp_path / f"{where}-{index}"
            command = Command.objects.create(machine_id="e2e-machine", command=attack.format(marker=marker),
                                             timeout_ms=10_000, **target)
            queued.append((command, syntax, marker))

    for command, syntax, marker in queued:
        command = finished(command, timeout=20)
        assert (command.status, command.exit_code) == ("failed", None), command.command
        assert command.error == f"{REFUSED}: shell syntax {syntax} is not allowed"
        assert not marker.exists(), command.command


def test_quoted_arguments_reach_the_program_whole_and_unexpanded(agent_with_allow_list: dict) -> None:
    for target in ({}, agent_with_allow_list):
        command = finished(Command.objects.create(machine_id="e2e-machine", command="printf '{%s}\\n' 'two words' ~",
                                                  timeout_ms=10_000, **target), timeout=20)

        assert (command.status, command.exit_code, command.output) == ("completed", 0, "{two words}\n{~}\n")
