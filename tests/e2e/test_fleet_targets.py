"""SSH targets with the real hub, a real relay-agent and a real sshd: test connection and pinning,
config that reaches an idle relay at once, and no command waiting in silence for an offline relay."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from commands.models import Command
from configpush.models import ConfigPush
from tests.agent.sshd import SSHServer
from tests.e2e.fleet_support import Api, all_acked, keygen_fingerprint, operator_api, share_ssh_key
from tests.e2e.processes import finished, wait_for

FAST = ("--long-poll-wait", "500")


@pytest.fixture
def api(hub) -> Api:
    return operator_api(hub.url)


def ssh_target_pushes(relay) -> list[ConfigPush]:
    return list(ConfigPush.objects.filter(relay=relay, push_type="ssh_targets").order_by("pk"))


def logins(sshd: SSHServer) -> int:
    return (sshd.dir / "sshd.log").read_text().count("Accepted publickey")


def test_test_connection_shows_an_unknown_key_and_pinning_its_fingerprint_makes_it_trusted(
    api, hub, e2e_relay, start_agent, sshd: SSHServer, tmp_path: Path
) -> None:
    relay = e2e_relay.relay
    share_ssh_key(relay, sshd.client_key)
    target = api.create_target(name="lab-1", host=sshd.host, port=sshd.port, username=sshd.user, relays=[relay.pk])
    start_agent(e2e_relay, hub, *FAST, "--known-hosts", str(tmp_path / "no_known_hosts"))
    wait_for(lambda: all_acked(relay), 10, "the credential and ssh_targets pushes to be acked")
    assert ssh_target_pushes(relay)[-1].payload == {"targets": [{"host": sshd.host, "port": sshd.port}]}
    fingerprint = keygen_fingerprint(sshd.dir / "host_ed25519.pub")
    assert fingerprint.startswith("SHA256:")

    # Nothing pinned yet: no test means nothing to pin.
    early = api.post(f"/api/v1/targets/{target['id']}/pin-host-key/", {"fingerprint": fingerprint})
    assert early.status_code == 400 and "test the connection first" in early.text

    first = api.post(f"/api/v1/targets/{target['id']}/test/", {"wait_ms": 15_000})
    assert first.status_code == 200, first.text
    report = first.json()
    assert (report["state"], report["reachable"], report["host_key_status"], report["login"]) == (
        "failed", True, "unknown", None)
    assert (report["host_key"], report["fingerprint"]) == (sshd.host_key, fingerprint)
    assert "no login attempted" in report["error"]
    assert logins(sshd) == 0, "an unknown server is never offered the key"
    assert api.get(f"/api/v1/targets/{target['id']}/").json()["last_test"]["fingerprint"] == fingerprint

    # A fingerprint other than the one the test showed pins nothing.
    pushes_before = len(ssh_target_pushes(relay))
    wrong = api.post(f"/api/v1/targets/{target['id']}/pin-host-key/",
                     {"fingerprint": "SHA256:" + "A" * 43})
    assert wrong.status_code == 400, wrong.text
    assert fingerprint in wrong.json()["fields"]["fingerprint"][0]
    assert api.get(f"/api/v1/targets/{target['id']}/").json()["host_keys"] == ""
    assert len(ssh_target_pushes(relay)) == pushes_before

    pinned = api.post(f"/api/v1/targets/{target['id']}/pin-host-key/", {"fingerprint": fingerprint})
    assert pinned.status_code == 200, pinned.text
    assert pinned.json()["host_keys"] == sshd.host_key
    push = ssh_target_pushes(relay)[-1]
    assert push.payload == {"targets": [{"host": sshd.host, "port": sshd.port, "hostKey": sshd.host_key}]}
    wait_for(lambda: ConfigPush.objects.get(pk=push.pk).status == "acked", 10, "the pinned key's push to be acked")

    second = api.post(f"/api/v1/targets/{target['id']}/test/", {"wait_ms": 15_000})
    assert second.status_code == 200, second.text
    report = second.json()
    assert (report["state"], report["reachable"], report["host_key_status"], report["login"], report["error"]) == (
        "ok", True, "trusted", True, "")
    assert report["fingerprint"] == fingerprint
    assert isinstance(report["rtt_ms"], int) and 0 <= report["rtt_ms"] < 15_000
    assert logins(sshd) == 1
    probe = Command.objects.get(pk=report["command_id"])
    assert (probe.kind, probe.target_name, probe.status, probe.exit_code) == ("probe", "lab-1", "completed", 0)


def test_a_config_push_reaches_a_relay_idle_in_its_long_poll_within_a_second(
    api, hub, e2e_relay, start_agent, tmp_path: Path
) -> None:
    relay = e2e_relay.relay
    # Heartbeat left at its default (30 s); the long-poll is held 20 s, so only a wake-up explains a fast ack.
    agent = start_agent(e2e_relay, hub, "--long-poll-wait", "20000")
    wait_for(lambda: all_acked(relay), 10, "nothing left to fetch")
    time.sleep(1.5)  # the agent is now waiting in its long-poll
    try:
        target = api.create_target(name="far-1", host="127.0.0.1", port=2222, username="ops", relays=[relay.pk])
        [push] = ssh_target_pushes(relay)
        wait_for(lambda: ConfigPush.objects.get(pk=push.pk).status == "acked", 1.5, "the ssh_targets push's ack")
        push.refresh_from_db()
        assert (push.acked_at - push.created_at).total_seconds() < 1.0

        # Again, for a change of an existing target: a second wake-up on the same long-poll loop.
        time.sleep(0.5)
        changed = api.session.patch(f"{hub.url}/api/v1/targets/{target['id']}/", json={"port": 2223}, timeout=30)
        assert changed.status_code == 200, changed.text
        push = ssh_target_pushes(relay)[-1]
        assert push.payload == {"targets": [{"host": "127.0.0.1", "port": 2223}]}
        wait_for(lambda: ConfigPush.objects.get(pk=push.pk).status == "acked", 1.5, "the second push's ack")
        push.refresh_from_db()
        assert (push.acked_at - push.created_at).total_seconds() < 1.0
    finally:
        agent.kill()  # it would otherwise wait out its 20 s long-poll on SIGTERM


def test_a_command_for_a_machine_no_relay_serves_is_refused_unless_queued_on_purpose(
    api, hub, e2e_relay, start_agent
) -> None:
    # e2e-machine has a relay, not yet started: offline.
    refused = api.post("/api/v1/commands/", {"machine_id": "e2e-machine", "command": "echo hi"})
    assert refused.status_code == 400, refused.text
    assert refused.json()["fields"]["machine_id"] == [
        "no relay for machine 'e2e-machine' is online; pass queue_if_offline to queue it until one connects"]
    nobody = api.post("/api/v1/commands/", {"machine_id": "ghost-machine", "command": "echo hi"})
    assert nobody.status_code == 400, nobody.text
    assert "no enabled relay serves machine 'ghost-machine'" in nobody.json()["fields"]["machine_id"][0]
    assert not Command.objects.exists()

    queued = api.post("/api/v1/commands/", {"machine_id": "e2e-machine", "command": "echo hi",
                                            "queue_if_offline": True})
    assert queued.status_code == 201, queued.text
    assert (queued.json()["status"], queued.json()["waiting_for"]) == ("pending", "no relay online")
    assert api.get(f"/api/v1/commands/{queued.json()['id']}/").json()["waiting_for"] == "no relay online"

    # Once the relay connects, the queued command runs, and new ones are taken without asking.
    start_agent(e2e_relay, hub, *FAST)
    command = finished(Command.objects.get(pk=queued.json()["id"]), timeout=20)
    assert (command.status, command.exit_code, command.output) == ("completed", 0, "hi\n")
    direct = api.post("/api/v1/commands/", {"machine_id": "e2e-machine", "command": "true"})
    assert direct.status_code == 201, direct.text
    assert direct.json()["waiting_for"] is None


def test_a_config_push_queued_while_the_agent_starts_up_arrives_within_a_second(
    api, hub, e2e_relay, start_agent
) -> None:
    relay = e2e_relay.relay
    agent = start_agent(e2e_relay, hub, "--long-poll-wait", "20000")  # returns at its first status report
    try:
        api.create_target(name="early-1", host="127.0.0.1", port=2222, username="ops", relays=[relay.pk])
        [push] = ssh_target_pushes(relay)
        wait_for(lambda: ConfigPush.objects.get(pk=push.pk).status == "acked", 1.5, "the ssh_targets push's ack")
    finally:
        agent.kill()
