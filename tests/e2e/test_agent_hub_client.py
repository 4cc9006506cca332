"""The agent's HubClient against the real hub process."""

from __future__ import annotations

import psutil
import pytest
from relay_agent.hub import HubClient, HubRejected, HubRequestError, HubUnavailable

from commands.models import Command
from tests.e2e.processes import Hub, free_port


def client_ports(hub: Hub) -> set[int]:
    """The remote ports of the connections the hub holds open, seen from the hub's side."""
    return {c.raddr.port for c in psutil.Process(hub.proc.pid).net_connections("tcp")
            if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == hub.port}


def test_it_sends_the_api_key_and_parses_answers(hub, e2e_relay) -> None:
    client = HubClient(hub.url, e2e_relay.api_key)

    assert client.verify()["assignmentId"] == str(e2e_relay.relay.pk)
    command = Command.objects.create(machine_id="e2e-machine", command="uptime", timeout_ms=5000)
    assert [c["_id"] for c in client.list_commands()] == [str(command.pk)]
    assert client.claim(str(command.pk))["command"] == "uptime"
    assert client.claim(str(command.pk)) is None, "a command that is no longer pending is not an error"
    assert client.post_result({"commandId": str(command.pk), "success": True, "output": "up\n", "exitCode": 0,
                               "attempt": 1}) == 200
    command.refresh_from_db()
    assert (command.status, command.output) == ("completed", "up\n")


def test_it_keeps_one_connection_alive(hub, e2e_relay) -> None:
    client = HubClient(hub.url, e2e_relay.api_key)
    seen = set()
    for _ in range(3):
        client.heartbeat()
        seen |= client_ports(hub)

    assert len(seen) == 1


def test_a_bad_key_is_rejected_with_its_status(hub) -> None:
    client = HubClient(hub.url, "rly_wrong")

    with pytest.raises(HubRejected) as exc:
        client.heartbeat()
    assert exc.value.status == 401
    assert "rly_wrong" not in str(exc.value)


def test_server_errors_mean_unavailable(start_hub, e2e_relay, tmp_path) -> None:
    broken = start_hub(env={"DATABASE_URL": f"sqlite:///{tmp_path}/missing/hub.sqlite3"})

    with pytest.raises(HubUnavailable) as exc:
        HubClient(broken.url, e2e_relay.api_key).heartbeat()
    assert exc.value.status == 500


def test_a_refused_connection_means_unavailable() -> None:
    with pytest.raises(HubUnavailable):
        HubClient(f"http://127.0.0.1:{free_port()}", "k", connect_timeout=1).heartbeat()


def test_long_poll_claims_and_returns_attempts(hub, e2e_relay) -> None:
    client = HubClient(hub.url, e2e_relay.api_key)
    assert client.next_commands(2, 100) == []
    first, second, third = (Command.objects.create(machine_id="e2e-machine", command=text, timeout_ms=5000)
                            for text in ("a", "b", "c"))

    commands = client.next_commands(2, 100)

    assert [(c["_id"], c["attempt"]) for c in commands] == [(str(first.pk), 1), (str(second.pk), 1)]
    third.refresh_from_db()
    assert third.status == "pending"
    # Not yet started, but ours already: only the third is new.
    assert [c["_id"] for c in client.next_commands(2, 100, holding=[str(first.pk), str(second.pk)])] == [
        str(third.pk)]


def test_a_started_command_not_held_by_us_is_a_request_error(hub, e2e_relay) -> None:
    with pytest.raises(HubRequestError) as exc:
        HubClient(hub.url, e2e_relay.api_key).started("12345", 1)
    assert exc.value.status == 404


def test_several_commands_are_announced_in_one_request(hub, e2e_relay) -> None:
    client = HubClient(hub.url, e2e_relay.api_key)
    for text in ("a", "b", "c"):
        Command.objects.create(machine_id="e2e-machine", command=text, timeout_ms=5000)
    first, second, third = client.next_commands(3, 100)
    Command.objects.get(pk=third["_id"]).cancel()

    accepted = client.started_many([(first["_id"], 1), (second["_id"], 7), (third["_id"], 1)])

    # The stale attempt is left out: that command is not ours to run.
    assert accepted == {first["_id"]: False, third["_id"]: True}
    assert Command.objects.get(pk=first["_id"]).status == "executing"
    assert Command.objects.get(pk=second["_id"]).status == "claimed"
