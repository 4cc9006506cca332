"""SIGTERM to the real relay-agent: running commands get a grace period, results reach the real hub (SPEC §6)."""

from __future__ import annotations

import time
from pathlib import Path

from commands.models import Command
from configpush.models import ConfigPush
from credentials import crypto
from credentials.models import SharedCredential
from tests.e2e.processes import BIN, Process, wait_for

FAST = ("--long-poll-wait", "500")
SECRET_VALUE = "SENTINEL-credential-value-7f3a"


def executing(command: Command) -> bool:
    return Command.objects.get(pk=command.pk).status == "executing"


def test_sigterm_lets_a_running_command_finish(hub, e2e_relay, start_agent) -> None:
    agent = start_agent(e2e_relay, hub, *FAST, "--shutdown-grace", "10")
    command = Command.objects.create(machine_id="e2e-machine", command="sleep 1; echo finished", timeout_ms=10_000)
    wait_for(lambda: executing(command), 10, "the command to be executing")

    assert agent.stop() == 0

    command.refresh_from_db()
    assert (command.status, command.output) == ("completed", "finished\n")


def test_sigterm_kills_what_outlives_the_grace(hub, e2e_relay, start_agent) -> None:
    agent = start_agent(e2e_relay, hub, *FAST, "--shutdown-grace", "0.5")
    command = Command.objects.create(machine_id="e2e-machine", command="sleep 20", timeout_ms=30_000)
    wait_for(lambda: executing(command), 10, "the command to be executing")
    started = time.monotonic()

    assert agent.stop() == 0

    assert time.monotonic() - started < 5
    command.refresh_from_db()
    assert (command.status, command.error) == ("failed", "agent shutting down")


def test_an_agent_configured_by_environment_stops_cleanly_and_logs_no_secrets(hub, e2e_relay, tmp_path: Path) -> None:
    shared = SharedCredential(name="shared", credential_type="password")
    shared.set_value(SECRET_VALUE)
    shared.save()
    shared.assigned_relays.add(e2e_relay.relay)
    push = ConfigPush.objects.create(relay=e2e_relay.relay, push_type="credential", payload={
        "name": "pushed", "credentialType": "api_key",
        "encryptedValue": crypto.encrypt_for_relay(e2e_relay.transport_secret, "pushed-" + SECRET_VALUE)})
    # The key and the secret come from the environment, so they are not even in the arguments.
    agent = Process([str(BIN / "relay-agent"), hub.url, "--store-dir", str(tmp_path / "store"), "--log-level", "debug",
                     "--long-poll-wait", "500"], tmp_path / "agent.log",
                    env={"RELAY_API_KEY": e2e_relay.api_key, "RELAY_SHARED_SECRET": e2e_relay.transport_secret,
                         "PYTHONUNBUFFERED": "1"}).start()
    try:
        command = Command.objects.create(machine_id="e2e-machine", command="echo OUTPUT-SENTINEL-91c2",
                                         timeout_ms=5000)
        wait_for(lambda: Command.objects.get(pk=command.pk).status == "completed", 15, "the command to complete")
        wait_for(lambda: ConfigPush.objects.get(pk=push.pk).status == "acked", 10, "the credential push to be acked")
        started = time.monotonic()

        assert agent.stop() == 0
        assert time.monotonic() - started < 5
    finally:
        agent.stop()

    logs = agent.output
    assert f'event="command finished" commandId={command.pk}' in logs
    assert "event=stopped" in logs
    api_key_secret = e2e_relay.api_key.rsplit("_", 1)[1]
    for secret in (e2e_relay.api_key, api_key_secret, e2e_relay.transport_secret, SECRET_VALUE,
                   "OUTPUT-SENTINEL-91c2"):
        assert secret not in logs
