"""Job templates with the real hub and relay-agent: a script template run locally (relay_exec --template)
and over SSH (the API), its parameters arriving only as inert environment values."""

from __future__ import annotations

from pathlib import Path

import pytest

from assignments.models import RelayStatus
from commands.models import CommandBatch
from runbooks.models import JobTemplate, TargetKind
from tests.agent.sshd import SSHServer
from tests.e2e.fleet_support import Api, all_acked, operator_api, share_ssh_key
from tests.e2e.processes import wait_for
from tests.e2e.test_relay_exec import relay_exec

FAST = ("--long-poll-wait", "500")
SCRIPT = """import os
for name in ("RELAYHUB_PARAM_TARGET", "RELAYHUB_PARAM_COUNT", "RELAYHUB_PARAM_MODE", "RELAYHUB_PARAM_VERBOSE", "WHERE"):
    print(name, repr(os.environ[name]))
"""
PARAMETERS = [{"name": "target", "type": "string"}, {"name": "count", "type": "integer", "min": 1, "max": 9},
              {"name": "mode", "type": "choice", "choices": ["a", "b"]}, {"name": "verbose", "type": "boolean"}]


def expected(target: str) -> str:
    return (f"RELAYHUB_PARAM_TARGET {target!r}\nRELAYHUB_PARAM_COUNT '3'\nRELAYHUB_PARAM_MODE 'b'\n"
            "RELAYHUB_PARAM_VERBOSE 'true'\nWHERE {!r}\n")


def capable(relay) -> None:
    wait_for(lambda: "run_options" in RelayStatus.objects.get(relay=relay).capabilities, 15, "run_options")


def test_a_script_template_runs_locally_with_inert_parameters(hub, e2e_relay, start_agent, tmp_path: Path) -> None:
    e2e_relay.relay.labels = {"role": "e2e"}
    e2e_relay.relay.save()
    JobTemplate.objects.create(name="report", script=SCRIPT, interpreter="python3", parameters=PARAMETERS,
                               selector="role=e2e", environment={"WHERE": "local"})
    start_agent(e2e_relay, hub, *FAST)
    capable(e2e_relay.relay)
    marker = tmp_path / "pwned"
    value = f"x; touch {marker} $(touch {marker}) `touch {marker}`\nnext"

    proc = relay_exec("--template", "report", "-p", f"target={value}", "-p", "count=3", "-p", "mode=b",
                      "-p", "verbose=true", "--timeout", "30")
    out, errors = proc.communicate(timeout=90)

    assert proc.returncode == 0, errors
    body = expected(value).replace("WHERE {!r}", "WHERE 'local'")
    assert out == "".join(f"e2e-machine | {line}\n" for line in body.splitlines()), out
    assert not marker.exists()
    copy = CommandBatch.objects.get().commands.get()
    assert (copy.status, copy.command, copy.interpreter) == ("completed", "python3 report", "python3")


def test_a_bad_parameter_is_refused_before_anything_is_queued(hub, e2e_relay) -> None:
    JobTemplate.objects.create(name="report", script=SCRIPT, interpreter="python3", parameters=PARAMETERS,
                               selector="role=e2e")
    proc = relay_exec("--template", "report", "-p", "count=12")
    _, errors = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "count: must be at most 9" in errors
    assert "Traceback" not in errors and not CommandBatch.objects.exists()


@pytest.fixture
def api(hub) -> Api:
    return operator_api(hub.url)


def test_a_script_template_runs_over_ssh(api, hub, e2e_relay, start_agent, sshd: SSHServer, tmp_path: Path) -> None:
    relay = e2e_relay.relay
    share_ssh_key(relay, sshd.client_key)
    api.create_target(name="lab-1", host=sshd.host, port=sshd.port, username=sshd.user, relays=[relay.pk],
                      host_keys=sshd.host_key, labels={"tier": "lab"})
    template = JobTemplate.objects.create(name="ssh report", script=SCRIPT, interpreter="python3",
                                          parameters=PARAMETERS, selector="tier=lab",
                                          target_kind=TargetKind.SSH_TARGETS, environment={"WHERE": "ssh"})
    start_agent(e2e_relay, hub, *FAST, "--known-hosts", str(tmp_path / "no_known_hosts"))
    wait_for(lambda: all_acked(relay), 10, "the credential and ssh_targets pushes to be acked")
    capable(relay)

    value = "$(id) ; `id` 'quoted'"
    response = api.post(f"/api/v1/templates/{template.pk}/launch/",
                        {"parameters": {"target": value, "count": 3, "mode": "b", "verbose": True}})
    assert response.status_code == 201, response.text
    batch = api.finished_batch(response.json()["batch"]["id"])

    [target] = batch["targets"]
    assert (target["name"], target["status"]) == ("lab-1", "completed"), target
    assert target["output"] == expected(value).replace("WHERE {!r}", "WHERE 'ssh'")
