"""The real relay-agent applies, enforces and acknowledges config pushes from the real hub (SPEC §6)."""

from __future__ import annotations

from pathlib import Path

from assignments.models import MetricSample
from commands.models import Command
from configpush.models import ConfigPush
from tests.e2e.processes import finished, wait_for

FAST = ("--long-poll-wait", "500")


def settled(push: ConfigPush) -> ConfigPush:
    wait_for(lambda: ConfigPush.objects.get(pk=push.pk).status in ("acked", "failed"), 10, f"push {push.pk}'s ack")
    push.refresh_from_db()
    return push


def test_allowed_commands_are_enforced(hub, e2e_relay, start_agent, tmp_path: Path) -> None:
    push = ConfigPush.objects.create(relay=e2e_relay.relay, push_type="allowed_commands",
                                     payload={"commands": ["echo *", "uptime"]})
    start_agent(e2e_relay, hub, *FAST)
    assert settled(push).status == "acked"
    marker = tmp_path / "ran"

    refused = finished(Command.objects.create(machine_id="e2e-machine", command=f"touch {marker}", timeout_ms=5000))
    allowed = finished(Command.objects.create(machine_id="e2e-machine", command="echo fine", timeout_ms=5000))

    assert (refused.status, refused.error) == (
        "failed", "command not allowed by this relay's allowed_commands policy: no entry matches")
    assert refused.exit_code is None
    assert not marker.exists()
    assert (allowed.status, allowed.output, allowed.exit_code) == ("completed", "fine\n", 0)


def test_a_push_to_a_running_agent_applies_to_later_commands(hub, e2e_relay, start_agent, tmp_path: Path) -> None:
    start_agent(e2e_relay, hub, *FAST, "--heartbeat-interval", "500")
    marker = tmp_path / "ran"
    assert finished(Command.objects.create(machine_id="e2e-machine", command="true", timeout_ms=5000)).status == \
        "completed"

    push = ConfigPush.objects.create(relay=e2e_relay.relay, push_type="allowed_commands",
                                     payload={"commands": ["true"]})
    assert settled(push).status == "acked"
    refused = finished(Command.objects.create(machine_id="e2e-machine", command=f"touch {marker}", timeout_ms=5000))

    assert refused.error == "command not allowed by this relay's allowed_commands policy: no entry matches"
    assert not marker.exists()


def test_ssh_targets_are_enforced(hub, e2e_relay, start_agent) -> None:
    push = ConfigPush.objects.create(relay=e2e_relay.relay, push_type="ssh_targets",
                                     payload={"targets": ["10.9.9.9:22"]})
    start_agent(e2e_relay, hub, *FAST)
    assert settled(push).status == "acked"

    command = finished(Command.objects.create(machine_id="e2e-machine", command="true", target_type="ssh",
                                              target_host="127.0.0.1", target_port=22, target_username="root",
                                              timeout_ms=5000))

    assert (command.status, command.error) == ("failed", "ssh target 127.0.0.1:22 not allowed by ssh_targets policy")


def test_a_push_the_agent_cannot_apply_is_acked_as_failed(hub, e2e_relay, start_agent) -> None:
    # The hub checks the key's shape; only the agent decodes it, and "AAAA" holds no key.
    target = {"host": "10.0.0.1", "port": 22, "hostKey": "ssh-ed25519 AAAA"}
    push = ConfigPush.objects.create(relay=e2e_relay.relay, push_type="ssh_targets", payload={"targets": [target]})
    start_agent(e2e_relay, hub, *FAST)

    assert settled(push).status == "failed"
    assert push.error_message == "hostKey is not valid base64 key data"


def test_a_metrics_interval_push_speeds_up_status_reports(hub, e2e_relay, start_agent) -> None:
    push = ConfigPush.objects.create(relay=e2e_relay.relay, push_type="metrics_interval", payload={"intervalMs": 1000})
    start_agent(e2e_relay, hub, *FAST)
    assert settled(push).status == "acked"
    reports = MetricSample.objects.filter(relay=e2e_relay.relay).count()

    wait_for(lambda: MetricSample.objects.filter(relay=e2e_relay.relay).count() >= reports + 2, 5,
             "two more status reports at the pushed 1 s interval (the default is 60 s)")
