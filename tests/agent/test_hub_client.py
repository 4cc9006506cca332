from __future__ import annotations

import socket

import pytest

from relay_agent.hub import ExtensionsUnsupported, HubClient, HubRejected, HubRequestError, HubUnavailable

from .fakehub import FakeHub


def test_it_sends_the_api_key_and_parses_answers(hub: FakeHub) -> None:
    client = HubClient(hub.url, hub.api_key)

    assert client.verify()["assignmentId"] == hub.relay_id
    command_id = hub.queue("uptime")
    assert [c["_id"] for c in client.list_commands()] == [command_id]
    assert client.claim(command_id)["command"] == "uptime"
    assert client.claim(command_id) is None, "a command that is no longer pending is not an error"
    assert client.post_result({"commandId": command_id, "success": True, "attempt": 1}) == 200


def test_it_keeps_one_connection_alive(hub: FakeHub) -> None:
    client = HubClient(hub.url, hub.api_key)
    for _ in range(3):
        client.heartbeat()

    assert len(hub.requests) == 3
    assert len(hub.client_ports) == 1


def test_a_bad_key_is_rejected_with_its_status(hub: FakeHub) -> None:
    client = HubClient(hub.url, "rly_wrong")

    with pytest.raises(HubRejected) as exc:
        client.heartbeat()
    assert exc.value.status == 401
    assert "rly_wrong" not in str(exc.value)


def test_server_errors_mean_unavailable(hub: FakeHub) -> None:
    hub.down = True

    with pytest.raises(HubUnavailable) as exc:
        HubClient(hub.url, hub.api_key).heartbeat()
    assert exc.value.status == 503


def test_a_refused_connection_means_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    with pytest.raises(HubUnavailable):
        HubClient(f"http://127.0.0.1:{port}", "k", connect_timeout=1).heartbeat()


def test_an_old_hub_lacks_the_extensions(hub: FakeHub) -> None:
    hub.extensions = False
    client = HubClient(hub.url, hub.api_key)

    with pytest.raises(ExtensionsUnsupported):
        client.next_commands(1, 100)
    with pytest.raises(ExtensionsUnsupported):
        client.post_results([])


def test_long_poll_claims_and_returns_attempts(hub: FakeHub) -> None:
    client = HubClient(hub.url, hub.api_key)
    assert client.next_commands(2, 100) == []
    first, second, third = hub.queue("a"), hub.queue("b"), hub.queue("c")

    commands = client.next_commands(2, 100)

    assert [(c["_id"], c["attempt"]) for c in commands] == [(first, 1), (second, 1)]
    assert hub.commands[third]["status"] == "pending"


def test_a_started_command_not_held_by_us_is_a_request_error(hub: FakeHub) -> None:
    with pytest.raises(HubRequestError) as exc:
        HubClient(hub.url, hub.api_key).started("nope", 1)
    assert exc.value.status == 404
